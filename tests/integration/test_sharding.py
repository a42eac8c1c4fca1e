"""Sharding: controllers with different --controller-id on one cluster never write the same object,
and each receives only its own objects, because the label selector is on the watch itself."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox, free_port
from tests.controller import Controller
from tests.rollouts import apply, in_shard, rollout, wait_for
from tests.waiting import eventually

STRATEGY = {
    "canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "1s"}}], "scaleDownDelaySeconds": 0}
}


def shard(sandbox: Sandbox, namespace: str, log: Path, controller_id: str | None, port: int) -> Controller:
    sharding = (f"--controller-id={controller_id}",) if controller_id else ()
    return Controller(
        sandbox,
        log,
        args=(
            *sharding,
            f"--namespace={namespace}",
            "--webhook=off",
            f"--identity={controller_id or 'unsharded'}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={port}",
        ),
    )


def cached_rollouts(port: int) -> set[str]:
    """The Rollouts in a controller's cache: exactly what its watch delivered (nothing is dropped after)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        sample.labels["name"]
        for family in text_string_to_metric_families(text)
        if family.name == "delivery_rollout_phase"
        for sample in family.samples
    }


def writers(sandbox: Sandbox, namespace: str) -> dict[str, set[str]]:
    """Which controller instances wrote Events about each Rollout."""
    listing = json.loads(sandbox.kubectl_run("get", "events", "-n", namespace, "-o", "json"))
    found: dict[str, set[str]] = {}
    for event in listing["items"]:
        if event["involvedObject"]["kind"] == "Rollout":
            found.setdefault(event["involvedObject"]["name"], set()).add(event.get("reportingInstance", ""))
    return found


def test_controllers_with_different_ids_never_touch_each_others_rollouts(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    ports = {name: free_port() for name in ("shard-a", "shard-b", "unsharded")}
    controllers = {
        "shard-a": shard(sandbox, namespace, tmp_path / "a.log", "shard-a", ports["shard-a"]),
        "shard-b": shard(sandbox, namespace, tmp_path / "b.log", "shard-b", ports["shard-b"]),
        "unsharded": shard(sandbox, namespace, tmp_path / "none.log", None, ports["unsharded"]),
    }
    try:
        for running in controllers.values():
            running.start()
        for image in ("web:1", "web:2"):  # a release and an update: several writes each
            bodies = [
                in_shard(rollout("web-a", namespace, image, STRATEGY), "shard-a"),
                in_shard(rollout("web-b", namespace, image, STRATEGY), "shard-b"),
                rollout("web-none", namespace, image, STRATEGY),
            ]
            apply(sandbox, *bodies)
            for body in bodies:
                revision = template_hash(body["spec"]["template"])
                wait_for(
                    sandbox,
                    body["metadata"]["name"],
                    namespace,
                    timeout=90,
                    phase="Healthy",
                    stableRevision=revision,
                )

        assert eventually(lambda: cached_rollouts(ports["shard-a"]), timeout=10) == {"web-a"}
        assert eventually(lambda: cached_rollouts(ports["shard-b"]), timeout=10) == {"web-b"}
        assert eventually(lambda: cached_rollouts(ports["unsharded"]), timeout=10) == {"web-none"}
        wrote = writers(sandbox, namespace)
        assert wrote["web-a"] == {"shard-a"}
        assert wrote["web-b"] == {"shard-b"}
        # web-none is written by an unsharded controller: this one, or the session's own when it runs
        # (two unsharded controllers on one cluster race; which wins is not the point here)
        assert wrote["web-none"]
        assert not wrote["web-none"] & {"shard-a", "shard-b"}
    finally:
        for running in controllers.values():
            running.stop()
