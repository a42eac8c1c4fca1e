"""The canary experiment step on the sandbox, written as Argo Rollouts' documentation writes it (only
the apiVersion changed): ReplicaSets of the stable and canary templates run side by side, owned by
the Rollout, under hashes of their own; the judge compares the two (baseline against canary, equal
in size) from the sandbox's real Prometheus, scraping a loopback exporter keyed by those hashes. A
judge that passes lets the release go on, one that fails aborts it; an abort mid-way ends the
experiment; in every case the experiment's ReplicaSets are deleted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from delivery.machine import Reason
from delivery.rollout.experiment import EXPERIMENT_LABEL
from delivery.rollout.revision import HASH_LABEL, template_hash
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.integration.analysis_traffic import Exporter, export
from tests.rollouts import ABORT, apply, events, get, rollout, status, wait_for
from tests.waiting import eventually

TIMEOUT = 120  # the machine is shared; a judge needs its samples
QUERY = 'app_latency_seconds{job="{{args.job}}",revision="{{args.%s}}"}'


@pytest.fixture
def exporter(sandbox: Sandbox, namespace: str) -> Iterator[Exporter]:
    running = export(sandbox, job=namespace)
    yield running
    running.stop()
    assert sandbox.prometheus is not None
    sandbox.prometheus.remove_target(namespace)


def judge(namespace: str) -> dict[str, Any]:
    """Argo's `mann-whitney` of the experiment docs, as our judge: baseline against canary."""
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "mann-whitney", "namespace": namespace},
        "spec": {
            "args": [
                {"name": "prometheus"},
                {"name": "job"},
                {"name": "baseline-hash"},
                {"name": "canary-hash"},
            ],
            "metrics": [
                {
                    "name": "latency",
                    "initialDelay": "10s",
                    "provider": {
                        "judge": {
                            "address": "{{args.prometheus}}",
                            "canaryQuery": QUERY % "canary-hash",
                            "stableQuery": QUERY % "baseline-hash",
                            "minSamples": 6,
                            "step": "1s",
                            "tolerance": 0.2,
                        }
                    },
                }
            ],
        },
    }


def experiment_step(**step: Any) -> dict[str, Any]:
    """The documented step: `baseline` from the stable, `canary` from the canary, two replicas each."""
    body: dict[str, Any] = {
        "templates": [
            {"name": "baseline", "specRef": "stable", "replicas": 2},
            {"name": "canary", "specRef": "canary", "replicas": 2},
        ],
        **step,
    }
    return {"experiment": body}


def compared(sandbox: Sandbox, namespace: str) -> dict[str, Any]:
    return {
        "analyses": [
            {
                "name": "mann-whitney",
                "templateName": "mann-whitney",
                "requiredForCompletion": True,
                "args": [
                    {"name": "prometheus", "value": sandbox.prometheus_url},
                    {"name": "job", "value": namespace},
                    {"name": "baseline-hash", "value": "{{templates.baseline.podTemplateHash}}"},
                    {"name": "canary-hash", "value": "{{templates.canary.podTemplateHash}}"},
                ],
            }
        ]
    }


def served(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with its container serving on 8080 (an experiment's Service takes the pods' ports)."""
    body["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    return body


def release(sandbox: Sandbox, namespace: str, step: dict[str, Any]) -> tuple[str, str]:
    strategy = {
        "canary": {"steps": [{"setWeight": 25}, step, {"setWeight": 50}], "abortScaleDownDelaySeconds": 0}
    }
    first = served(rollout("web", namespace, "web:1", strategy))
    apply(sandbox, first)
    stable = template_hash(first["spec"]["template"])
    wait_for(sandbox, "web", namespace, phase="Healthy", stableRevision=stable)
    second = served(rollout("web", namespace, "web:2", strategy))
    apply(sandbox, second)
    return stable, template_hash(second["spec"]["template"])


def experiment_replicasets(sandbox: Sandbox, namespace: str) -> list[dict[str, Any]]:
    listed = sandbox.kubectl_run("get", "rs", "-n", namespace, "-l", EXPERIMENT_LABEL, "-o", "json")
    items: list[dict[str, Any]] = json.loads(listed)["items"]
    return items


def running(sandbox: Sandbox, namespace: str) -> dict[str, Any]:
    """The status once the experiment runs (every ReplicaSet available)."""

    def probe() -> dict[str, Any] | None:
        current = status(sandbox, "web", namespace)
        return current if (current.get("experiment") or {}).get("phase") == "Running" else None

    return eventually(probe, timeout=TIMEOUT, what="the experiment running")


def gone(sandbox: Sandbox, namespace: str) -> None:
    eventually(
        lambda: not experiment_replicasets(sandbox, namespace),
        timeout=60,
        what="the experiment's ReplicaSets deleted",
    )


def test_an_experiment_whose_judge_passes_lets_the_release_go_on(
    sandbox: Sandbox, namespace: str, controller: Controller, exporter: Exporter
) -> None:
    apply(sandbox, judge(namespace))
    _, canary = release(sandbox, namespace, experiment_step(**compared(sandbox, namespace)))
    status = running(sandbox, namespace)
    templates = {t["name"]: t for t in status["experiment"]["templates"]}
    for template in templates.values():  # both alike: the judge must find no difference
        exporter.traffic.set(template["podTemplateHash"], latency=0.1)
    made = {
        rs["metadata"]["labels"][EXPERIMENT_LABEL]: rs for rs in experiment_replicasets(sandbox, namespace)
    }
    assert {name: rs["spec"]["replicas"] for name, rs in made.items()} == {"baseline": 2, "canary": 2}
    assert made["baseline"]["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"
    assert made["canary"]["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2"
    owner = made["canary"]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Rollout", "web")
    assert templates["canary"]["podTemplateHash"] != canary  # its own pods, not the canary revision's

    wait_for(sandbox, "web", namespace, TIMEOUT, phase="Healthy", stableRevision=canary)
    gone(sandbox, namespace)
    final = wait_for(sandbox, "web", namespace, phase="Healthy")
    assert final["experiment"]["phase"] == "Successful"
    run = next(r for r in final["analysisHistory"] if r["kind"] == "Experiment")
    assert (run["analysis"], run["phase"]) == ("mann-whitney", "Successful")
    assert "samples)" in run["metrics"][0]["measurements"][-1]["message"]  # judged: "(p=…, n vs m samples)"
    reasons = [reason for reason, _ in events(sandbox, "web", namespace)]
    assert reasons.index(Reason.EXPERIMENT_STARTED) < reasons.index(Reason.EXPERIMENT_SUCCESSFUL)


def test_an_experiment_whose_judge_fails_aborts_the_release(
    sandbox: Sandbox, namespace: str, controller: Controller, exporter: Exporter
) -> None:
    apply(sandbox, judge(namespace))
    stable, _ = release(
        sandbox,
        namespace,
        experiment_step(duration="10m", **compared(sandbox, namespace)),
    )
    templates = {t["name"]: t for t in running(sandbox, namespace)["experiment"]["templates"]}
    exporter.traffic.set(templates["baseline"]["podTemplateHash"], latency=0.1)
    exporter.traffic.set(templates["canary"]["podTemplateHash"], latency=0.2)  # twice the baseline's

    aborted = wait_for(sandbox, "web", namespace, TIMEOUT, phase="Aborted", state="aborted")
    assert aborted["stableRevision"] == stable
    assert aborted["experiment"]["phase"] == "Failed"
    gone(sandbox, namespace)
    message = dict(events(sandbox, "web", namespace))[Reason.EXPERIMENT_FAILED]
    assert "analysis mann-whitney" in message
    assert "higher than stable" in message
    condition = next(c for c in aborted["conditions"] if c["type"] == "Experiment")
    assert (condition["status"], condition["reason"]) == ("False", "ExperimentFailed")


def test_an_experiment_for_its_duration_alone_lets_the_release_go_on(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    _, canary = release(sandbox, namespace, experiment_step(duration=3))
    running(sandbox, namespace)
    wait_for(sandbox, "web", namespace, TIMEOUT, phase="Healthy", stableRevision=canary)
    gone(sandbox, namespace)


def test_an_abort_mid_experiment_deletes_its_replicasets(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    step = experiment_step(duration="1h")
    step["experiment"]["templates"][1]["service"] = {"name": "web-experiment"}
    stable, _ = release(sandbox, namespace, step)
    running(sandbox, namespace)
    assert len(experiment_replicasets(sandbox, namespace)) == 2
    made = get(sandbox, "service", "web-experiment", namespace)
    canary = next(
        t for t in status(sandbox, "web", namespace)["experiment"]["templates"] if t["name"] == "canary"
    )
    assert made["spec"]["selector"][HASH_LABEL] == canary["podTemplateHash"]  # its pods only
    assert [p["port"] for p in made["spec"]["ports"]] == [8080]

    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{ABORT}=true")
    aborted = wait_for(sandbox, "web", namespace, 60, phase="Aborted", state="aborted")
    assert aborted["stableRevision"] == stable
    assert aborted["experiment"]["phase"] == "Terminated"
    gone(sandbox, namespace)
    eventually(
        lambda: "web-experiment" not in sandbox.kubectl_run("get", "services", "-n", namespace, "-o", "name"),
        timeout=60,
        what="the experiment's Service deleted",
    )


def test_a_rollout_deleted_mid_experiment_takes_its_replicasets_with_it(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    release(sandbox, namespace, experiment_step(duration="1h"))
    running(sandbox, namespace)
    sandbox.kubectl_run("delete", "rollout", "web", "-n", namespace, "--wait=false")
    gone(sandbox, namespace)  # the garbage collector follows their owner references
