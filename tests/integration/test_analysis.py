"""Analysis against the sandbox's real Prometheus, scraping a loopback exporter the test controls:
a healthy canary passes every gate, a canary whose errors rise is aborted at the next measurement,
a Prometheus outage pauses the release (and it resumes by itself), so does a Prometheus answering
500s or too slowly (through a fault-injecting proxy in front of the real one), a missing template
pauses it."""

from __future__ import annotations

import datetime
import itertools
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from delivery.machine import Reason
from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox
from tests import analysis_egress
from tests.controller import Controller
from tests.integration.analysis_traffic import ERROR_RATE_QUERY, LATENCY_QUERY, Exporter, export, wait_scraped
from tests.loopback import serving
from tests.rollouts import PROMOTE, apply, events, get, in_shard, rollout, service, status, wait_for
from tests.waiting import eventually

GROUP = "delivery.luojilab.com/v1alpha1"
TIMEOUT = 120  # generous: the machine is shared, and a run spans several measurement intervals


@pytest.fixture
def exporter(sandbox: Sandbox, namespace: str) -> Iterator[Exporter]:
    running = export(sandbox, job=namespace)
    yield running
    running.stop()
    assert sandbox.prometheus is not None
    sandbox.prometheus.remove_target(namespace)


def error_rate(name: str = "error-rate", **metric: Any) -> dict[str, Any]:
    return {
        "name": name,
        "initialDelay": "3s",
        "successCondition": "result[0] < 0.05",
        "provider": {"prometheus": {"address": "{{args.prometheus}}", "query": ERROR_RATE_QUERY}},
        **metric,
    }


def latency_judge(**judge: Any) -> dict[str, Any]:
    return {
        "name": "latency",
        "initialDelay": "10s",
        "provider": {
            "judge": {
                "address": "{{args.prometheus}}",
                "canaryQuery": LATENCY_QUERY % "canary-hash",
                "stableQuery": LATENCY_QUERY % "stable-hash",
                "minSamples": 6,
                "step": "1s",
                "tolerance": 0.2,
                **judge,
            }
        },
    }


def template(namespace: str, name: str, *metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": GROUP,
        "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"args": [{"name": "prometheus"}, {"name": "job"}], "metrics": list(metrics)},
    }


def analysis(sandbox: Sandbox, namespace: str, *templates: str) -> dict[str, Any]:
    return {
        "templates": [{"templateName": name} for name in templates],
        "args": [
            {"name": "prometheus", "value": sandbox.prometheus_url},
            {"name": "job", "value": namespace},
        ],
    }


def canary(steps: list[dict[str, Any]], background: dict[str, Any] | None = None) -> dict[str, Any]:
    strategy: dict[str, Any] = {"steps": steps, "scaleDownDelaySeconds": 0, "abortScaleDownDelaySeconds": 0}
    if background is not None:
        strategy["analysis"] = background
    return {"canary": strategy}


def release(
    sandbox: Sandbox, namespace: str, exporter: Exporter, strategy: dict[str, Any], error_ratio: float = 0.001
) -> tuple[str, str]:
    """The first revision made stable, then the second applied: their hashes, the exporter serving both."""
    first = rollout("web", namespace, "web:1", strategy, replicas=2)
    stable = template_hash(first["spec"]["template"])
    exporter.traffic.set(stable, error_ratio=0.001)
    apply(sandbox, first)
    wait_for(sandbox, "web", namespace, phase="Healthy", stableRevision=stable)
    second = rollout("web", namespace, "web:2", strategy, replicas=2)
    canary_hash = template_hash(second["spec"]["template"])
    exporter.traffic.set(canary_hash, error_ratio=error_ratio)
    apply(sandbox, second)
    return stable, canary_hash


def history(sandbox: Sandbox, namespace: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = status(sandbox, "web", namespace).get("analysisHistory") or []
    return found


@pytest.mark.matrix
def test_a_healthy_canary_passes_every_gate_and_is_promoted(
    sandbox: Sandbox, namespace: str, controller: Controller, exporter: Exporter
) -> None:
    apply(
        sandbox,
        template(namespace, "error-rate", error_rate(interval="2s", count=2)),
        template(namespace, "latency", latency_judge()),
        template(namespace, "errors-background", error_rate(interval="3s")),
    )
    gates = analysis(sandbox, namespace, "error-rate", "latency")
    strategy = canary(
        [{"setWeight": 50}, {"analysis": gates}, {"setWeight": 100}],
        background=analysis(sandbox, namespace, "errors-background"),
    )
    _, canary_hash = release(sandbox, namespace, exporter, strategy)

    wait_for(sandbox, "web", namespace, TIMEOUT, phase="Healthy", stableRevision=canary_hash)
    runs = {(run["kind"], run.get("stepIndex")): run for run in history(sandbox, namespace)}
    step = runs["Step", 1]
    assert step["phase"] == "Successful"
    assert step["name"] == "error-rate, latency"
    metrics = {metric["name"]: metric for metric in step["metrics"]}
    assert (metrics["error-rate"]["count"], metrics["error-rate"]["successful"]) == (2, 2)
    assert metrics["latency"]["phase"] == "Successful"  # the judge: same distribution passes
    assert "samples)" in metrics["latency"]["measurements"][-1]["message"]  # "(p=…, 9 vs 9 samples)"
    background = runs["Background", None]
    assert background["phase"] == "Successful"  # stopped at promotion: nothing failed
    assert background["metrics"][0]["count"] >= 1
    reasons = [reason for reason, _ in events(sandbox, "web", namespace)]
    assert Reason.ANALYSIS_STARTED in reasons
    assert Reason.ANALYSIS_SUCCESSFUL in reasons
    assert Reason.ANALYSIS_FAILED not in reasons


@pytest.mark.matrix
def test_a_canary_whose_errors_rise_is_aborted_at_the_next_measurement(
    sandbox: Sandbox, namespace: str, controller: Controller, exporter: Exporter
) -> None:
    interval = 3
    apply(sandbox, template(namespace, "errors", error_rate(interval=f"{interval}s")))
    strategy = canary([{"setWeight": 50}, {"pause": {}}], background=analysis(sandbox, namespace, "errors"))
    stable, canary_hash = release(sandbox, namespace, exporter, strategy)
    wait_for(sandbox, "web", namespace, TIMEOUT, phase="Paused", currentStepIndex=1)
    eventually(
        lambda: any(m["successful"] >= 2 for run in history(sandbox, namespace) for m in run["metrics"]),
        timeout=TIMEOUT,
        what="the background analysis measuring a healthy canary",
    )

    rose = datetime.datetime.now(datetime.UTC)
    exporter.traffic.set(canary_hash, error_ratio=0.5)
    aborted = wait_for(sandbox, "web", namespace, TIMEOUT, phase="Aborted", state="aborted")

    run = aborted["analysisHistory"][-1]
    assert (run["kind"], run["phase"]) == ("Background", "Failed")
    failing = run["metrics"][0]["measurements"][-1]
    assert failing["phase"] == "Failed"
    assert "successCondition `result[0] < 0.05` does not hold" in failing["message"]
    # The first measurement that could see the new rate failed: within one interval, plus the
    # scrape and `rate()` lag (2s), plus a second of timestamp truncation. The abort was decided
    # in the very reconcile that took it (the status carries both).
    seen = datetime.datetime.fromisoformat(failing["finishedAt"])
    assert (seen - rose).total_seconds() <= interval + 3
    said = dict(events(sandbox, "web", namespace))
    message = said[Reason.ANALYSIS_FAILED]
    assert "metric error-rate failed" in message
    assert f"value {failing['value']}" in message
    measurement = said[Reason.MEASUREMENT_FAILED]  # the measurement has an Event of its own
    assert f"metric error-rate: value {failing['value']}: successCondition" in measurement
    assert "successCondition `result[0] < 0.05` does not hold" in message
    assert aborted["stableRevision"] == stable


@pytest.mark.faults
def test_prometheus_stopped_mid_analysis_pauses_and_the_release_resumes_when_it_returns(
    sandbox: Sandbox, namespace: str, controller: Controller, exporter: Exporter
) -> None:
    apply(
        sandbox,
        # Long enough to be still measuring when Prometheus is gone, however slow the shared machine.
        template(namespace, "errors", error_rate(interval="2s", count=20, consecutiveErrorLimit=1)),
    )
    strategy = canary([{"setWeight": 50}, {"analysis": analysis(sandbox, namespace, "errors")}])
    _, canary_hash = release(sandbox, namespace, exporter, strategy)
    eventually(
        lambda: any(m["successful"] >= 1 for run in history(sandbox, namespace) for m in run["metrics"]),
        timeout=TIMEOUT,
        what="the step's analysis measuring",
    )

    sandbox.stop_prometheus()
    try:
        paused = wait_for(
            sandbox, "web", namespace, TIMEOUT, phase="Paused", reason=Reason.ANALYSIS_INCONCLUSIVE
        )
        assert "errors in a row" in paused["message"]
        assert "unreachable" in paused["message"] or "did not answer" in paused["message"]
        assert "resumes by itself" in paused["message"]
        assert paused["currentStepIndex"] == 1
        assert paused["analysisHistory"][-1]["phase"] == "Error"
    finally:
        sandbox.start_prometheus()

    done = wait_for(sandbox, "web", namespace, TIMEOUT, phase="Healthy", stableRevision=canary_hash)
    run = done["analysisHistory"][-1]
    assert run["phase"] == "Successful"
    metric = run["metrics"][0]
    assert metric["error"] >= 2  # the outage is on the record
    assert (metric["count"], metric["successful"]) == (20, 20)  # and the analysis went on, not cut short
    said = events(sandbox, "web", namespace)
    reasons = [reason for reason, _ in said]
    assert reasons.index(Reason.ANALYSIS_INCONCLUSIVE) < reasons.index(Reason.RESUMED)
    outage = [message for reason, message in said if reason == Reason.MEASUREMENT_ERROR]
    assert outage  # the first error of each streak has an Event
    # Prometheus gone; then, maybe, back without fresh samples yet (`result[0]` of an empty vector).
    assert any("metric error-rate: no value: prometheus at" in message for message in outage)


def test_a_missing_template_pauses_with_a_message_until_it_exists(
    sandbox: Sandbox, namespace: str, controller: Controller, exporter: Exporter
) -> None:
    strategy = canary([{"setWeight": 50}, {"analysis": analysis(sandbox, namespace, "not-yet")}])
    release(sandbox, namespace, exporter, strategy)
    paused = wait_for(sandbox, "web", namespace, TIMEOUT, phase="Paused", reason=Reason.ANALYSIS_INCONCLUSIVE)
    assert "AnalysisTemplate not-yet not found" in paused["message"]

    apply(sandbox, template(namespace, "not-yet", error_rate()))
    wait_for(sandbox, "web", namespace, TIMEOUT, phase="Healthy")


def test_the_judge_aborts_a_canary_slower_than_stable(
    sandbox: Sandbox, namespace: str, controller: Controller, exporter: Exporter
) -> None:
    apply(sandbox, template(namespace, "latency", latency_judge()))
    strategy = canary([{"setWeight": 50}, {"analysis": analysis(sandbox, namespace, "latency")}])
    stable, canary_hash = release(sandbox, namespace, exporter, strategy)
    exporter.traffic.set(canary_hash, latency=0.2)  # twice the stable's 0.1s

    aborted = wait_for(sandbox, "web", namespace, TIMEOUT, phase="Aborted", state="aborted")
    assert aborted["stableRevision"] == stable
    message = dict(events(sandbox, "web", namespace))[Reason.ANALYSIS_FAILED]
    assert "metric latency failed" in message
    assert "higher than stable" in message


def test_blue_green_post_promotion_failure_switches_back_to_the_old_revision(
    sandbox: Sandbox, namespace: str, controller: Controller, exporter: Exporter
) -> None:
    apply(
        sandbox,
        service("web", namespace, "web"),
        template(namespace, "before", error_rate()),
        template(namespace, "after", error_rate(initialDelay="6s", interval="2s", count=3)),
    )
    strategy = {
        "blueGreen": {
            "activeService": "web",
            "scaleDownDelaySeconds": 0,
            "prePromotionAnalysis": analysis(sandbox, namespace, "before"),
            "postPromotionAnalysis": analysis(sandbox, namespace, "after"),
        }
    }
    blue, green = release(sandbox, namespace, exporter, strategy)

    def pre_promotion_passed() -> bool:
        return any(
            run["kind"] == "PrePromotion" and run["phase"] == "Successful"
            for run in history(sandbox, namespace)
        )

    eventually(pre_promotion_passed, timeout=TIMEOUT, what="the pre-promotion analysis passed")
    exporter.traffic.set(green, error_ratio=0.5)  # production traffic reaches green: it fails

    aborted = wait_for(sandbox, "web", namespace, TIMEOUT, phase="Aborted", state="aborted")
    assert aborted["stableRevision"] == blue
    selector = get(sandbox, "service", "web", namespace)["spec"]["selector"]
    assert selector["delivery.luojilab.com/pod-template-hash"] == blue
    run = aborted["analysisHistory"][-1]
    assert (run["kind"], run["phase"]) == ("PostPromotion", "Failed")
    reasons = [reason for reason, _ in events(sandbox, "web", namespace)]
    assert reasons.index(Reason.PROMOTED) < reasons.index(Reason.ANALYSIS_FAILED)


@pytest.mark.faults
def test_a_controller_killed_mid_analysis_takes_each_measurement_once(
    sandbox: Sandbox, namespace: str, crds: None, exporter: Exporter, tmp_path: Path
) -> None:
    """SIGKILL eight times during an analysis: it ends with exactly its count of measurements,
    an interval apart, and the same transitions as an uninterrupted release."""
    chaos = Controller.of_shard(sandbox, tmp_path / "delivery.log", "analysis", analysis_egress.FLAG)
    chaos.start()
    apply(sandbox, template(namespace, "errors", error_rate(interval="2s", count=6)))
    strategy = canary([{"setWeight": 50}, {"analysis": analysis(sandbox, namespace, "errors")}])

    try:
        first = in_shard(rollout("web", namespace, "web:1", strategy, replicas=2), "analysis")
        exporter.traffic.set(template_hash(first["spec"]["template"]), error_ratio=0.001)
        apply(sandbox, first)
        wait_for(sandbox, "web", namespace, TIMEOUT, phase="Healthy")
        second = in_shard(rollout("web", namespace, "web:2", strategy, replicas=2), "analysis")
        canary_hash = template_hash(second["spec"]["template"])
        exporter.traffic.set(canary_hash, error_ratio=0.001)
        wait_scraped(sandbox, namespace, canary_hash)
        apply(sandbox, second)
        wait_for(sandbox, "web", namespace, TIMEOUT, state="analysing")
        schedule = random.Random(5)
        for _ in range(8):
            time.sleep(schedule.uniform(0.5, 2.0))  # the kill schedule, not a wait for a condition
            chaos.kill()
            chaos.start()
        done = wait_for(sandbox, "web", namespace, TIMEOUT, phase="Healthy", stableRevision=canary_hash)
    finally:
        chaos.stop()
    metric = done["analysisHistory"][-1]["metrics"][0]
    said = events(sandbox, "web", namespace)
    assert (metric["count"], metric["successful"], metric["error"]) == (6, 6, 0), said
    times = [datetime.datetime.fromisoformat(m["finishedAt"]) for m in metric["measurements"]]
    assert all((later - earlier).total_seconds() >= 2 for earlier, later in itertools.pairwise(times))
    assert [reason for reason, _ in said] == [
        Reason.ROLLOUT_UPDATED,
        Reason.COMPLETED,
        Reason.ROLLOUT_UPDATED,
        Reason.STEP_COMPLETED,
        Reason.ANALYSIS_STARTED,
        Reason.ANALYSIS_SUCCESSFUL,
        Reason.PROMOTED,
        Reason.COMPLETED,
    ]


def test_an_inconclusive_analysis_waits_for_a_person_who_promotes(
    sandbox: Sandbox, namespace: str, controller: Controller, exporter: Exporter
) -> None:
    between = error_rate(failureCondition="result[0] > 0.1")  # 7% errors: neither passes nor fails
    apply(sandbox, template(namespace, "errors", between))
    strategy = canary([{"setWeight": 50}, {"analysis": analysis(sandbox, namespace, "errors")}])
    _, canary_hash = release(sandbox, namespace, exporter, strategy, error_ratio=0.07)

    paused = wait_for(sandbox, "web", namespace, TIMEOUT, phase="Paused", reason=Reason.ANALYSIS_INCONCLUSIVE)
    assert "metric error-rate inconclusive" in paused["message"]
    assert "neither condition holds" in paused["message"]
    assert "promote to go on, abort to roll back" in paused["message"]
    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=step")
    wait_for(sandbox, "web", namespace, TIMEOUT, phase="Healthy", stableRevision=canary_hash)


SLOW = 15.0  # seconds a slow answer takes: past the Prometheus deadline (10 s)


@dataclass
class Faults:
    """What the proxy does to each request: "pass", "500" or "slow"."""

    upstream: str
    mode: str = "pass"
    released: threading.Event = field(default_factory=threading.Event)
    url: str = ""


@pytest.fixture
def faulty(sandbox: Sandbox) -> Iterator[Faults]:
    faults = Faults(sandbox.prometheus_url)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            return

        def do_GET(self) -> None:
            self._answer(None)

        def do_POST(self) -> None:
            self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def _answer(self, body: bytes | None) -> None:
            if faults.mode == "slow":
                faults.released.wait(SLOW)
            if faults.mode == "500":
                self.send_response(500)
                self.end_headers()
                self.wfile.write(b"injected fault")
                return
            headers = {"Content-Type": self.headers.get("Content-Type", "")} if body is not None else {}
            answer = httpx.request(
                self.command, faults.upstream + self.path, content=body, headers=headers, timeout=10
            )
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

    with serving(Handler) as url:
        faults.url = url
        yield faults
        faults.released.set()


@pytest.mark.faults
@pytest.mark.usefixtures("controller")
@pytest.mark.parametrize("fault", [("500", "500"), ("slow", "did not answer")], ids=["500", "slow"])
def test_prometheus_failing_pauses_the_release_which_resumes_when_it_answers_again(
    sandbox: Sandbox,
    namespace: str,
    exporter: Exporter,
    faulty: Faults,
    fault: tuple[str, str],
) -> None:
    mode, said = fault
    apply(
        sandbox, template(namespace, "errors", error_rate(interval="2s", count=12, consecutiveErrorLimit=1))
    )
    gate = analysis(sandbox, namespace, "errors")
    gate["args"][0]["value"] = faulty.url  # Prometheus, through the proxy
    steps: list[dict[str, Any]] = [{"setWeight": 50}, {"analysis": gate}]
    _, canary_hash = release(sandbox, namespace, exporter, canary(steps))
    wait_for(sandbox, "web", namespace, TIMEOUT, currentStepIndex=1)

    faulty.mode = mode
    paused = wait_for(sandbox, "web", namespace, TIMEOUT, phase="Paused", reason=Reason.ANALYSIS_INCONCLUSIVE)
    assert said in paused["message"]
    assert paused["currentStepIndex"] == 1  # held at the analysis, not promoted past it
    assert paused["stableRevision"] != canary_hash

    faulty.mode = "pass"
    faulty.released.set()
    done = wait_for(sandbox, "web", namespace, TIMEOUT, phase="Healthy", stableRevision=canary_hash)
    metric = done["analysisHistory"][-1]["metrics"][0]
    assert metric["error"] >= 2  # the fault is on the record
    assert metric["successful"] == metric["count"] == 12  # and the analysis went on to its end
    reasons = [reason for reason, _ in events(sandbox, "web", namespace)]
    assert reasons.index(Reason.ANALYSIS_INCONCLUSIVE) < reasons.index(Reason.RESUMED)
