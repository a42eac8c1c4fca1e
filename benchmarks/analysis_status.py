"""How big the analysis history makes a Rollout's status, and how long a decision over it takes.

The measurements live in the status (so a restarted controller resumes them), which etcd stores
in one object of at most 1.5 MiB. Figures for a typical history (ten analyses of three metrics)
and the worst the schema allows (ten analyses of 128 metrics, every text at its maximum length):
the history as read, the history the decision writes back (bounded), and the time of each.

    .venv/bin/python -m benchmarks.analysis_status
"""

from __future__ import annotations

import datetime
import json
import statistics
import time
from collections.abc import Callable

from benchmarks.record import record
from delivery.analysis.runner import (
    MESSAGE_LENGTH,
    VALUE_LENGTH,
    Measurement,
    MetricState,
    Phase,
    Run,
    runs_from_status,
)
from delivery.api.rollout import (
    ANALYSIS_HISTORY_LIMIT,
    MEASUREMENT_HISTORY_LIMIT,
    AnalysisKind,
    MachineState,
    RolloutStatus,
)
from delivery.rollout.decide import Memory, Observed, decide
from delivery.rollout.plan import plan_of
from strategies import ReplicaSetState

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def history(metrics: int, text: int) -> list[Run]:
    measurements = tuple(
        Measurement(Phase.SUCCESSFUL, T0, "v" * min(text, VALUE_LENGTH), "m" * text)
        for _ in range(MEASUREMENT_HISTORY_LIMIT)
    )
    states = tuple(
        MetricState(f"metric-{i}", Phase.SUCCESSFUL, "m" * text, 5, 5, measurements=measurements)
        for i in range(metrics)
    )
    return [
        Run(AnalysisKind.STEP, "abc", (f"t{index}",), T0, index, Phase.SUCCESSFUL, "m" * text, T0, states)
        for index in range(ANALYSIS_HISTORY_LIMIT)
    ]


def timed(action: Callable[[], object], rounds: int = 20) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def figures(metrics: int, text: int) -> dict[str, float]:
    runs = history(metrics, text)
    status = {"analysisHistory": [run.to_status() for run in runs]}
    RolloutStatus.model_validate(status)  # the schema accepts it
    steps = [{"analysis": {"templates": [{"templateName": "t"}]}}] * ANALYSIS_HISTORY_LIMIT
    spec = {
        "replicas": 4,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a"}]}},
        "strategy": {"canary": {"steps": steps}},
    }
    observed = Observed(
        plan=plan_of(spec),
        revision="abc",
        memory=Memory(state=MachineState.ANALYSING, stable="old", revision="abc", index=9),
        replicasets=(ReplicaSetState("old", 4, 4), ReplicaSetState("abc", 4, 4)),
        applied_weight=0,
        applied_selectors={},
        commands={},
        now=T0,
        runs=tuple(runs),
    )
    written = {"analysisHistory": [run.to_status() for run in decide(observed).runs]}
    return {
        "history_in_kib": round(len(json.dumps(status)) / 1024, 1),
        "history_written_kib": round(len(json.dumps(written)) / 1024, 1),
        "read_ms": round(timed(lambda: runs_from_status(status)) * 1000, 2),
        "decide_ms": round(timed(lambda: decide(observed)) * 1000, 2),
    }


def main() -> None:
    results = {
        "typical (10 analyses x 3 metrics, 100-character texts)": figures(3, 100),
        "worst (10 analyses x 128 metrics, texts at their maximum)": figures(128, MESSAGE_LENGTH),
    }
    for name, numbers in results.items():
        print(f"{name}: {numbers}")
    record("analysis_status", {"results": results})


if __name__ == "__main__":
    main()
