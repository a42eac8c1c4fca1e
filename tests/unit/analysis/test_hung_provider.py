"""A provider that never answers cannot promote: through the analyst (template read, measured,
recorded, concluded) and the Rollout's decision, its errors hold the step, then pause the release
once they pass consecutiveErrorLimit, each reconcile's measuring ending at the metric's deadline."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest

from delivery.analysis.run import Analyst, Subject
from delivery.analysis.runner import Phase, Run
from delivery.api.rollout import AnalysisKind
from delivery.api.rollout import MachineState as State
from delivery.kube.api import Kind, Kube, Object
from delivery.kube.kinds import ANALYSIS_TEMPLATE
from delivery.machine import Reason
from delivery.rollout.decide import Memory, Observed, decide
from delivery.rollout.plan import plan_of
from strategies import ReplicaSetState
from tests.analysis_egress import POLICY
from tests.unit.analysis.conftest import Loopback

pytestmark = pytest.mark.faults

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
SLACK = 1.0  # seconds past the deadline a loaded machine may take to report it


class _Templates(Kube):
    """The apiserver as the analyst reads it: the one AnalysisTemplate, nothing else."""

    def __init__(self, template: Object) -> None:  # no connection: nothing else is asked
        self.template = template

    async def get(self, kind: Kind, namespace: str | None, name: str) -> Object | None:
        return self.template if kind == ANALYSIS_TEMPLATE and name == "health" else None


def _template(url: str) -> dict[str, Any]:
    metric = {
        "name": "healthy",
        "interval": "1s",
        "consecutiveErrorLimit": 1,
        "successCondition": "result == true",
        "provider": {"web": {"url": url, "timeoutSeconds": 1}},
    }
    return {"metadata": {"name": "health", "namespace": "ns"}, "spec": {"metrics": [metric]}}


SPEC = {
    "replicas": 4,
    "selector": {"matchLabels": {"app": "web"}},
    "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "web:2"}]},
    },
    "strategy": {
        "canary": {
            "steps": [{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "health"}]}}],
            "scaleDownDelaySeconds": 0,
        }
    },
}


async def test_a_provider_that_never_answers_pauses_the_release_and_never_promotes(
    loopback: Loopback,
) -> None:
    analyst = Analyst(_Templates(_template(f"{loopback.url}/hang")), egress=POLICY)
    plan = plan_of(SPEC)
    memory = Memory(state=State.ANALYSING, stable="old", revision="new", index=1, progressed=T0, ready=4)
    runs: tuple[Run, ...] = (Run(AnalysisKind.STEP, "new", ("health",), T0, 1),)
    now = T0
    decisions = []
    for _ in range(2):
        started = time.monotonic()
        advanced = await analyst.advance(runs, plan, "new", Subject("ns", {}), now)
        assert time.monotonic() - started < 1 + SLACK
        runs = advanced.runs
        (taken,) = advanced.taken
        assert taken.measurement.phase is Phase.ERROR
        assert "did not answer in full within 1s" in taken.measurement.message
        observed = Observed(
            plan=plan,
            revision="new",
            memory=memory,
            replicasets=(ReplicaSetState("old", 2, 2), ReplicaSetState("new", 2, 2)),
            applied_weight=50,
            applied_selectors={},
            commands={},
            now=now,
            runs=runs,
        )
        decisions.append(decide(observed))
        assert advanced.next_check is not None
        now = advanced.next_check

    tolerated, paused = decisions
    assert runs[0].phase is Phase.ERROR  # not final: still measured, resumes when it answers
    assert tolerated.transition is None  # the first error, within the limit, holds the step
    assert paused.transition is not None
    assert (paused.transition.reason, paused.transition.dest) == (Reason.ANALYSIS_INCONCLUSIVE, State.PAUSED)
    assert "did not answer in full within 1s" in paused.transition.message
    assert all(decision.memory.index == 1 for decision in decisions)  # never past the analysis step
    assert len(loopback.seen) == 2  # one request a measurement, no retries of its own
