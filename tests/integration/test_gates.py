"""Release gates and hooks against real HTTP servers on loopback that say yes, no, hang and fail:
a gate that says no holds the release (the Gated condition, one Event per change) with no pod of the
new revision; a person opens a gate (`kubectl delivery gate open`) and the release goes on; a
pre-rollout no aborts; event hooks receive every transition once; and a controller killed at each
write after a gate was opened neither forgets the opening nor tells a transition twice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from delivery.analysis.run import SECRET_CONSENT_LABEL
from delivery.kube.failpoints import ENVIRONMENT
from delivery.machine import Reason
from delivery.rollout import gates
from delivery.rollout.decide import OPEN_GATE
from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox
from tests import analysis_egress
from tests.controller import Controller
from tests.integration.test_plugin import plugin
from tests.loopback import Quiet, serving
from tests.rollouts import (
    apply,
    event_objects,
    events,
    get,
    in_shard,
    replicas_by_revision,
    rollout,
    status,
    wait_for,
)
from tests.waiting import eventually

SHARD = "gates"
STEPS = [{"setWeight": 50}, {"pause": {"duration": "1s"}}]


@dataclass
class Hooks:
    """What each path answers (`yes`, `no`, `hang`, or `fail:N`: 503 to the first N calls, then
    yes) and the JSON bodies each received, in order."""

    answers: dict[str, str] = field(default_factory=dict)
    bodies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def answer(self, path: str, how: str) -> None:
        with self.lock:
            self.answers[path] = how

    def seen(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.bodies.get(path, ()))


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    received = Hooks()

    class Handler(Quiet):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with received.lock:
                calls = received.bodies.setdefault(self.path, [])
                calls.append(body)
                how = received.answers.get(self.path, "yes")
            if how == "hang":
                time.sleep(30)
                return
            code = 200
            if how == "no":
                code = 403
            elif how.startswith("fail:"):
                code = 503 if len(calls) <= int(how.partition(":")[2]) else 200
            with received.lock:
                received.statuses.setdefault(self.path, []).append(code)
            answer = b"refused by the test\n" if code == 403 else b""
            self.send_response(code)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    with serving(Handler) as url:
        received.url = url
        yield received


def hook(hooks: Hooks, name: str, kind: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "url": f"{hooks.url}/{name}", "interval": "1s", **more}


def gated_rollout(
    namespace: str, image: str, hook_specs: list[dict[str, Any]], name: str = "web"
) -> dict[str, Any]:
    body = rollout(
        name, namespace, image, {"canary": {"steps": STEPS, "scaleDownDelaySeconds": 0}}, replicas=2
    )
    body["spec"]["hooks"] = hook_specs
    return in_shard(body, SHARD)


def controller_for(
    sandbox: Sandbox, tmp_path: Path, namespace: str, name: str = "delivery", **env: str
) -> Controller:
    return Controller.of_shard(
        sandbox, tmp_path / f"{name}.log", SHARD, analysis_egress.FLAG, namespace=namespace, env=env
    )


def condition(current: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in current.get("conditions") or () if c["type"] == kind), None)


def gated_with(
    sandbox: Sandbox, name: str, namespace: str, reason: str, timeout: float = 60
) -> dict[str, Any]:
    def held() -> dict[str, Any] | None:
        found = condition(status(sandbox, name, namespace), "Gated")
        return found if found and found["status"] == "True" and found["reason"] == reason else None

    return eventually(held, timeout=timeout, what=f"{name} Gated {reason}")


def gate_events(sandbox: Sandbox, name: str, namespace: str) -> list[tuple[str, str]]:
    return [
        (e["reason"], e["message"])
        for e in event_objects(sandbox, name, namespace)
        if e["reason"] in (gates.GATE_HELD, gates.GATE_OPENED)
    ]


def released(sandbox: Sandbox, namespace: str, body: dict[str, Any], image: str) -> str:
    """Apply `body` with `image`; the new revision."""
    body["spec"]["template"]["spec"]["containers"][0]["image"] = image
    apply(sandbox, body)
    return template_hash(body["spec"]["template"])


def test_gates_hold_until_yes_or_opened_and_event_hooks_hear_every_transition_once(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path, hooks: Hooks
) -> None:
    hooks.answer("/approve", "no")
    hooks.answer("/smoke", "fail:1")
    hooks.answer("/ship", "no")
    specs = [
        hook(hooks, "approve", "confirm-rollout"),
        hook(hooks, "smoke", "pre-rollout", retries=2),
        hook(hooks, "load", "rollout", metadata={"cmd": "hey -z 1m http://web-canary/"}),
        hook(hooks, "ship", "confirm-promotion"),
        hook(hooks, "all", "event"),
        hook(hooks, "after", "post-rollout"),
    ]
    controller = controller_for(sandbox, tmp_path, namespace)
    controller.start()
    try:
        web = gated_rollout(namespace, "web:1", specs)
        apply(sandbox, web)
        wait_for(sandbox, "web", namespace, timeout=60, phase="Healthy")  # a first revision: no gates
        assert hooks.seen("/approve") == []
        new = released(sandbox, namespace, web, "web:2")

        held = gated_with(sandbox, "web", namespace, "ConfirmRolloutRefused")
        assert held["message"] == "approve: HTTP 403: refused by the test"
        eventually(lambda: len(hooks.seen("/approve")) >= 3, timeout=30, what="approve asked again")
        assert replicas_by_revision(sandbox, "web", namespace).get(new, 0) == 0  # no canary pod
        assert gate_events(sandbox, "web", namespace) == [
            (gates.GATE_HELD, "held at approve: HTTP 403: refused by the test")
        ]  # one Event for the hold, however often it was asked
        asked = hooks.seen("/approve")[-1]
        assert (asked["name"], asked["namespace"], asked["revision"], asked["type"]) == (
            "web",
            namespace,
            new,
            "confirm-rollout",
        )

        hooks.answer("/approve", "yes")
        gated_with(sandbox, "web", namespace, "ConfirmPromotionRefused", timeout=90)
        assert hooks.statuses["/smoke"][:2] == [503, 200]  # retried within its call, then passed
        assert hooks.seen("/load")[0]["metadata"] == {"cmd": "hey -z 1m http://web-canary/"}

        opened = plugin(sandbox, namespace, "gate", "open", "web", "ship")
        assert opened.returncode == 0, opened.stderr
        wait_for(sandbox, "web", namespace, timeout=60, phase="Healthy", stableRevision=new)
        refused = plugin(sandbox, namespace, "gate", "open", "web", "ship")
        assert refused.returncode == 1  # held nowhere now: said, not annotated
        assert "is held at no gate" in refused.stderr

        final = status(sandbox, "web", namespace)
        assert final["gates"]["opened"] == [
            {"name": "approve", "by": "Hook"},
            {"name": "smoke", "by": "Hook"},
            {"name": "ship", "by": "Person"},
        ]
        gated = condition(final, "Gated")
        assert gated is not None
        assert (gated["status"], gated["reason"]) == ("False", gates.OPEN)
        assert OPEN_GATE not in (
            get(sandbox, "rollout", "web", namespace)["metadata"].get("annotations") or {}
        )

        transitions = [
            e["reason"] for e in event_objects(sandbox, "web", namespace) if e["reason"] in set(Reason)
        ]
        eventually(lambda: len(hooks.seen("/all")) == len(transitions), timeout=30, what="every transition")
        # Each is sent on its own, so two close transitions may land in either order: the number says.
        told = sorted(hooks.seen("/all"), key=lambda body: int(body["transition"]))
        assert [body["reason"] for body in told] == transitions
        assert [body["transition"] for body in told] == list(range(1, len(transitions) + 1))
        after = eventually(lambda: hooks.seen("/after") or None, timeout=30, what="post-rollout")
        assert [(body["reason"], body["revision"]) for body in after] == [(Reason.COMPLETED, new)]
        # Done, its gates in the status: nothing more is written (the status settles, no write loop).
        version = get(sandbox, "rollout", "web", namespace)["metadata"]["resourceVersion"]
        time.sleep(3)
        assert get(sandbox, "rollout", "web", namespace)["metadata"]["resourceVersion"] == version
    finally:
        controller.stop()


def test_a_pre_rollout_no_aborts_a_hanging_gate_holds_with_its_deadline_and_secrets_need_consent(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path, hooks: Hooks
) -> None:
    hooks.answer("/deny", "no")
    hooks.answer("/stuck", "hang")
    denied = gated_rollout(namespace, "web:1", [hook(hooks, "deny", "pre-rollout")], name="denied")
    token = {"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "approvals", "key": "token"}}}
    unconsented = gated_rollout(
        namespace, "web:1", [hook(hooks, "approve", "confirm-rollout", headers=[token])], name="unconsented"
    )
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "approvals", "namespace": namespace},  # not labelled: no consent
        "stringData": {"token": "Bearer s3cret"},
    }
    stuck = gated_rollout(
        namespace, "web:1", [hook(hooks, "stuck", "confirm-rollout", timeout="1s")], name="stuck"
    )
    controller = controller_for(sandbox, tmp_path, namespace)
    controller.start()
    try:
        apply(sandbox, secret, denied, stuck, unconsented)
        for name in ("denied", "stuck", "unconsented"):
            wait_for(sandbox, name, namespace, timeout=60, phase="Healthy")
        released(sandbox, namespace, denied, "web:2")
        new = released(sandbox, namespace, stuck, "web:2")
        released(sandbox, namespace, unconsented, "web:2")

        wait_for(sandbox, "denied", namespace, timeout=60, phase="Aborted", state="aborted")
        assert (Reason.ABORTED, "pre-rollout hook deny said no: HTTP 403: refused by the test") in events(
            sandbox, "denied", namespace
        )
        held = gated_with(sandbox, "stuck", namespace, "ConfirmRolloutRefused")
        assert (
            held["message"] == "stuck: hook stuck (" + hooks.url + "/stuck) did not answer in full within 1s"
        )
        assert replicas_by_revision(sandbox, "stuck", namespace).get(new, 0) == 0
        assert status(sandbox, "stuck", namespace)["phase"] == "Progressing"  # held, not degraded
        # Headers from Secrets with the consent analysis asks for: without the label, a no that says so.
        refused = gated_with(sandbox, "unconsented", namespace, "ConfirmRolloutRefused")
        assert refused["message"] == (
            "approve: header Authorization: Secret approvals is not labelled "
            f"{SECRET_CONSENT_LABEL}=true, so analysis may not read it (label it to consent)"
        )
        assert hooks.seen("/approve") == []  # nothing was sent without it
    finally:
        controller.stop()


WRITES_AFTER_OPENING = 12
"""Writes of the rest of the release after a person's opening, and beyond (a kill not reached
is a release completed by the first controller, which must hold the same promises)."""


@pytest.mark.faults
@pytest.mark.usefixtures("crds")
@pytest.mark.parametrize("write", range(1, WRITES_AFTER_OPENING + 1))
def test_a_controller_killed_after_a_gate_opened_neither_forgets_it_nor_tells_twice(
    sandbox: Sandbox, namespace: str, tmp_path: Path, hooks: Hooks, write: int
) -> None:
    """The release is held at confirm-promotion (its hook says no throughout), a person opens the
    gate with no controller running, and the next controller is killed right after its `write`-th
    write. It opens and promotes in one reconcile, so its first writes are the new revision's
    scale-up, the promotion's Event, the opening's Event, the status recording both, then the
    annotation's removal; the later ones scale the old revision down and complete the release,
    when the post-rollout hook is due. The restarted controller completes the release (the opening
    is in the status, or the annotation still there to open it again); no transition reaches the
    event hook twice, nor the post-rollout hook more than once, and a kill loses at most the one
    transition's calls it fell between."""
    hooks.answer("/ship", "no")
    specs = [
        hook(hooks, "ship", "confirm-promotion"),
        hook(hooks, "all", "event"),
        hook(hooks, "after", "post-rollout"),
    ]
    setup = controller_for(sandbox, tmp_path, namespace, "setup")
    setup.start()
    try:
        web = gated_rollout(namespace, "web:1", specs)
        apply(sandbox, web)
        wait_for(sandbox, "web", namespace, timeout=60, phase="Healthy")
        new = released(sandbox, namespace, web, "web:2")
        gated_with(sandbox, "web", namespace, "ConfirmPromotionRefused", timeout=90)
        count = status(sandbox, "web", namespace)["transitionCount"]
        eventually(lambda: len(hooks.seen("/all")) == count or None, timeout=30, what="the setup's told")
    finally:
        setup.stop()
    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{OPEN_GATE}=ship")

    killed = controller_for(sandbox, tmp_path, namespace, "killed", **{ENVIRONMENT: f"written:{write}=kill"})
    killed.start()

    def died_or_done() -> bool | None:
        if f"failpoint written:{write}=kill" in killed.log.read_text():
            return True
        current = status(sandbox, "web", namespace)
        return True if current.get("phase") == "Healthy" and current.get("stableRevision") == new else None

    try:
        eventually(died_or_done, timeout=60, what=f"the kill after write {write}, or the release done")
    finally:
        killed.stop()
    restarted = controller_for(sandbox, tmp_path, namespace, "restarted")
    restarted.start()
    try:
        final = wait_for(sandbox, "web", namespace, timeout=60, phase="Healthy", stableRevision=new)
        assert {"name": "ship", "by": "Person"} in final["gates"]["opened"]
        assert OPEN_GATE not in (
            get(sandbox, "rollout", "web", namespace)["metadata"].get("annotations") or {}
        )
        opened = [e for e in gate_events(sandbox, "web", namespace) if e[0] == gates.GATE_OPENED]
        assert opened == [(gates.GATE_OPENED, "ship opened by a person")]
        time.sleep(2)  # anything still on its way
        last = final["transitionCount"]
        numbers = [body["transition"] for body in hooks.seen("/all")]
        assert len(numbers) == len(set(numbers)), numbers  # never twice
        assert set(numbers) <= set(range(1, last + 1))
        assert len(set(range(1, last + 1)) - set(numbers)) <= 1, numbers  # only the kill's own
        after = hooks.seen("/after")
        assert len(after) <= 1
        if last in numbers:  # the completion was told, so its post-rollout call was sent with it
            assert [(body["reason"], body["revision"]) for body in after] == [(Reason.COMPLETED, new)]
    finally:
        restarted.stop()
