"""The demo path end to end: simulated traffic scraped by the real Prometheus, the controller,
a release promoted by its analysis and one rolled back by it."""

from __future__ import annotations

import json

from demo import flow
from sandbox.cluster import Sandbox
from tests.controller import Controller


def test_the_demo_promotes_a_good_release_and_rolls_back_a_bad_one(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    good, bad = flow.run(sandbox, namespace, start_controller=False)
    assert (good, bad) == ("Healthy", "Aborted")

    rollout = json.loads(sandbox.kubectl_run("get", "rollout", flow.NAME, "-n", namespace, "-o", "json"))
    history = rollout["status"]["analysisHistory"]
    assert history[-1]["phase"] == "Failed"
    assert any(record["phase"] == "Successful" for record in history)
    replicas = json.loads(sandbox.kubectl_run("get", "rs", "-n", namespace, "-o", "json"))["items"]
    running = {
        rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["spec"]["replicas"] for rs in replicas
    }
    assert running == {"demo:1": 0, "demo:2": 5, "demo:3-bad": 0}
