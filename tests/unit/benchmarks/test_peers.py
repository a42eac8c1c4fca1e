"""The peer benchmark's manifests and arithmetic: both controllers are asked the same, in words each
one's schema accepts, and the figures mean what the benchmark prints."""

from __future__ import annotations

import datetime
import math
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml

from benchmarks.peers import __main__ as peers
from benchmarks.peers import argo_build, contenders, scenario
from benchmarks.peers.measure import (
    anchored,
    audit_kept_from,
    cpu_cores,
    first_write_for,
    next_write_after,
    percentiles,
    requests_by,
    rss_growth,
)
from benchmarks.peers.release import release_figures
from delivery.api.analysis import ClusterAnalysisTemplate
from delivery.api.rollout import Rollout
from delivery.kube import shard

PLAN = scenario.Scenario("peers", rollouts=7, namespaces=3)


def _argo_crd(name: str) -> dict[str, Any]:
    """The openAPIV3Schema of one of Argo's CRDs, from the newest Argo module in the Go module cache."""
    cache = Path(
        os.environ.get("GOMODCACHE") or Path(os.environ.get("GOPATH") or Path.home() / "go") / "pkg/mod"
    )
    found = sorted(cache.glob(f"github.com/argoproj/argo-rollouts@v*/manifests/crds/{name}-crd.yaml"))
    if not found:
        pytest.skip(
            "Argo Rollouts' module is not in the Go module cache (python -m benchmarks.peers fetches it)"
        )
    crd = yaml.safe_load(found[-1].read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """The field names in `value` that `schema` does not declare (structurally; no types or rules)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict) and "properties" in schema:
        unknown = []
        for key, item in value.items():
            if key not in schema["properties"]:
                unknown.append(f"{path}.{key}")
            else:
                unknown += _unknown_fields(item, schema["properties"][key], f"{path}.{key}")
        return unknown
    if isinstance(value, list) and "items" in schema:
        return [field for item in value for field in _unknown_fields(item, schema["items"], f"{path}[]")]
    return []


def test_the_scenario_places_every_rollout_once_across_its_namespaces() -> None:
    placements = PLAN.placements()
    assert len(set(placements)) == 7
    assert {ns for ns, _ in placements} == set(PLAN.namespace_names()) == {"peers-0", "peers-1", "peers-2"}


@pytest.mark.parametrize("steps", [scenario.STEPS, scenario.SOAK_STEPS])
def test_both_controllers_are_asked_the_same_release(steps: list[dict[str, Any]]) -> None:
    ours = scenario.rollouts("delivery", PLAN, "app:2", steps)
    argo = scenario.rollouts("argo", PLAN, "app:2", steps)
    for mine, theirs in zip(ours, argo, strict=True):
        assert mine["metadata"] == theirs["metadata"]
        for field in ("replicas", "selector", "template"):
            assert mine["spec"][field] == theirs["spec"][field]
        assert mine["spec"]["strategy"]["canary"]["steps"] == theirs["spec"]["strategy"]["canary"]["steps"]
        assert mine["spec"]["template"]["spec"]["containers"][0]["image"] == "app:2"


@pytest.mark.parametrize("steps", [scenario.STEPS, scenario.SOAK_STEPS])
def test_ours_are_valid_delivery_rollouts(steps: list[dict[str, Any]]) -> None:
    for manifest in scenario.rollouts("delivery", PLAN, "app:1", steps):
        assert Rollout.model_validate(manifest).to_wire()["spec"]["strategy"]["canary"]["steps"] == steps
    ClusterAnalysisTemplate.model_validate(scenario.analysis_template("delivery", "http://127.0.0.1:9090"))


@pytest.mark.parametrize("steps", [scenario.STEPS, scenario.SOAK_STEPS])
def test_argos_use_only_fields_of_argos_crd(steps: list[dict[str, Any]]) -> None:
    schema = _argo_crd("rollout")
    for manifest in scenario.rollouts("argo", PLAN, "app:1", steps):
        assert _unknown_fields(manifest, schema) == []
    template = scenario.analysis_template("argo", "http://127.0.0.1:9090")
    assert _unknown_fields(template, _argo_crd("cluster-analysis-template")) == []


def test_the_soaks_history_limit_is_asked_of_both_in_each_ones_schema() -> None:
    ours = scenario.rollouts("delivery", PLAN, "app:3", scenario.SOAK_STEPS, history=scenario.SOAK_HISTORY)
    argo = scenario.rollouts("argo", PLAN, "app:3", scenario.SOAK_STEPS, history=scenario.SOAK_HISTORY)
    for mine, theirs in zip(ours, argo, strict=True):
        assert mine["spec"]["revisionHistoryLimit"] == theirs["spec"]["revisionHistoryLimit"] == 1
        assert Rollout.model_validate(mine).spec.revision_history_limit == 1
    assert "revisionHistoryLimit" not in scenario.rollouts("delivery", PLAN, "app:1")[0]["spec"]
    assert scenario.SOAK_WARM_IMAGE not in (scenario.FIRST_IMAGE, "app:3")
    schema = _argo_crd("rollout")
    assert all(_unknown_fields(manifest, schema) == [] for manifest in argo)


def test_a_field_argo_lacks_is_caught() -> None:
    manifest = scenario.rollouts("argo", PLAN, "app:1")[0]
    manifest["spec"]["strategy"]["canary"]["noSuchField"] = 1
    assert _unknown_fields(manifest, _argo_crd("rollout")) == [".spec.strategy.canary.noSuchField"]


GOMOD = """module github.com/argoproj/argo-rollouts

go 1.26.10

require k8s.io/api v0.34.5

replace github.com/single => github.com/other v1.0.0 // why

replace (
\tk8s.io/api => k8s.io/api v0.34.5
\t// a comment line
\tk8s.io/client-go => k8s.io/client-go v0.34.5
)
"""


def test_the_wrapper_module_carries_the_versions_replace_directives() -> None:
    replaces = argo_build.replace_directives(GOMOD)
    assert replaces == [
        "github.com/single => github.com/other v1.0.0",
        "k8s.io/api => k8s.io/api v0.34.5",
        "k8s.io/client-go => k8s.io/client-go v0.34.5",
    ]
    wrapper = argo_build.wrapper_gomod("v1.10.2", argo_build.go_directive(GOMOD), replaces)
    assert "go 1.26.10\n" in wrapper
    assert "require github.com/argoproj/argo-rollouts v1.10.2\n" in wrapper
    assert argo_build.replace_directives(wrapper) == replaces


def test_the_toolchain_line_wins_over_the_go_line() -> None:
    assert argo_build.go_directive("module m\n\ngo 1.25.0\n\ntoolchain go1.26.3\n") == "1.26.3"


def test_the_newest_release_ignores_pre_releases() -> None:
    assert argo_build.newest_release(["v1.9.3", "v1.10.2", "v1.10.10", "v1.11.0-rc1"]) == "v1.10.10"


def _event(audit_id: str, user: str, verb: str, received: str, answered: str | None = None) -> dict[str, Any]:
    return {
        "auditID": audit_id,
        "user": {"username": user},
        "verb": verb,
        "requestReceivedTimestamp": received,
        "stageTimestamp": answered or received,
    }


def test_a_watch_audited_at_start_and_end_is_one_request() -> None:
    events = [
        _event("a", "argo", "watch", "2026-12-01T10:00:00.000000Z"),
        _event("a", "argo", "watch", "2026-12-01T10:00:00.000000Z", "2026-12-01T10:00:30.000000Z"),
        _event("b", "argo", "patch", "2026-12-01T10:00:01.000000Z"),
        _event("c", "delivery", "patch", "2026-12-01T10:00:01.000000Z"),
        _event("d", "argo", "get", "2026-12-01T10:00:09.000000Z"),
    ]
    start = 1796119200.0  # 2026-12-01T10:00:00Z
    assert requests_by(events, "argo", start, start + 5) == {"total": 2, "writes": 1}


def test_the_first_write_for_a_rollout_is_its_own_or_a_replicasets_named_for_it() -> None:
    def on(name: str, user: str, verb: str, at: str) -> dict[str, Any]:
        return {**_event(name + at, user, verb, at), "objectRef": {"namespace": "ns", "name": name}}

    events = [
        on("web-7f9c", "argo", "get", "2026-12-01T10:00:01.000000Z"),  # a read
        on("webby-1", "argo", "create", "2026-12-01T10:00:02.000000Z"),  # another Rollout's
        on("web", "delivery", "patch", "2026-12-01T10:00:02.500000Z"),  # another controller
        on("web-7f9c", "argo", "create", "2026-12-01T10:00:04.000000Z"),
        on("web", "argo", "patch", "2026-12-01T10:00:03.000000Z"),
        on("web", "argo", "patch", "2026-12-01T09:59:59.000000Z"),  # before the start
    ]
    start = 1796119200.0
    assert first_write_for(events, "argo", ("ns", "web"), start) == pytest.approx(start + 3)
    assert first_write_for(events, "argo", ("other", "web"), start) is None


def test_rss_growth_leaves_out_the_first_ten_minutes_and_is_a_share_of_the_size_then() -> None:
    start = 1000.0
    filling = [(start + t, 0.0, 50.0 + t) for t in range(0, 600, 60)]  # caches filling: not growth
    steady = [(start + 600 + t, 0.0, 200.0 + t / 360) for t in range(0, 3600, 60)]  # 10 MiB an hour
    figures = rss_growth(filling + steady, start + 600, start + 4200)
    assert figures["rss_mib_at_10_minutes"] == 200.0
    assert figures["rss_growth_mib_per_hour"] == pytest.approx(10.0, abs=0.1)
    assert figures["rss_growth_percent_per_hour"] == pytest.approx(5.0, abs=0.05)


def test_cpu_cores_are_cpu_seconds_per_second_within_the_window() -> None:
    samples = [(0.0, 1.0, 100.0), (600.0, 10.0, 100.0), (1200.0, 40.0, 100.0), (1800.0, 70.0, 100.0)]
    assert cpu_cores(samples, 600.0, 1800.0) == pytest.approx(0.05)
    assert math.isnan(cpu_cores(samples, 601.0, 1199.0))


def test_a_condition_dates_from_the_write_that_made_it_and_the_reaction_from_the_next_write() -> None:
    writes = [
        _event("a", "kcm", "update", "2026-12-01T10:00:00.100000Z", "2026-12-01T10:00:00.200000Z"),
        _event("b", "kcm", "update", "2026-12-01T10:00:01.100000Z", "2026-12-01T10:00:01.200000Z"),
    ]
    start = 1796119200.0
    assert anchored(start + 1.0, writes) == pytest.approx(start + 0.2)
    assert anchored(start + 0.1, writes) == start + 0.1  # nothing answered before: the time seen
    assert next_write_after(start + 0.2, writes) == pytest.approx(start + 1.1)
    assert next_write_after(start + 2, writes) is None


def test_percentiles_are_nearest_rank() -> None:
    assert percentiles([float(value) for value in range(1, 101)]) == {
        "p50": 50.5,
        "p99": 99.0,
        "samples": 100,
    }
    assert percentiles([])["samples"] == 0


def _argo_at(image: str, generation: int, observed: str, phase: str, stable: str) -> dict[str, Any]:
    manifest = scenario.rollouts("argo", PLAN, image)[0]
    manifest["metadata"]["generation"] = generation
    status = {"observedGeneration": observed, "phase": phase, "stableRS": stable, "currentPodHash": "new"}
    return {**manifest, "status": status}


def test_argo_is_complete_only_at_the_released_spec_with_the_new_hash_stable() -> None:
    # Argo writes its Rollout's spec on the first reconcile: generation 3 is the first release.
    assert contenders.argo_complete(_argo_at("app:2", 3, "3", "Healthy", "new"), "app:2")
    assert not contenders.argo_complete(_argo_at("app:2", 3, "2", "Healthy", "new"), "app:2")
    assert not contenders.argo_complete(_argo_at("app:2", 3, "3", "Healthy", "old"), "app:2")
    assert not contenders.argo_complete(_argo_at("app:2", 3, "3", "Progressing", "new"), "app:2")
    assert not contenders.argo_complete(_argo_at("app:1", 2, "2", "Healthy", "new"), "app:2")


def test_ours_is_complete_only_when_the_released_revision_is_stable() -> None:
    manifest = scenario.rollouts("delivery", PLAN, "app:2")[0]
    manifest["metadata"]["generation"] = 2
    status = {"observedGeneration": 2, "phase": "Healthy", "stableRevision": "b", "canaryRevision": "b"}
    assert contenders.delivery_complete({**manifest, "status": status}, "app:2")
    assert not contenders.delivery_complete(
        {**manifest, "status": {**status, "stableRevision": "a"}}, "app:2"
    )
    assert not contenders.delivery_complete(
        {**manifest, "status": {**status, "observedGeneration": 1}}, "app:2"
    )


T0 = 1796119200.0  # 2026-12-01T10:00:00Z


def _at(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(T0 + seconds, datetime.UTC).isoformat().replace("+00:00", "Z")


def _write(user: str, resource: str, name: str, at: float, subresource: str | None = None) -> dict[str, Any]:
    ref = {"resource": resource, "namespace": "peers-0", "name": name, "apiGroup": "argoproj.io"}
    if subresource:
        ref["subresource"] = subresource
    return {
        **_event(f"{user}-{resource}-{name}-{at}", user, "patch", _at(at), _at(at + 0.005)),
        "objectRef": ref,
        "responseStatus": {"code": 200},
    }


def _replicaset(name: str, created: float, replicas: int, available: int) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "peers-0",
            "name": name,
            "creationTimestamp": _at(created).split(".")[0] + "Z",
            "ownerReferences": [{"kind": "Rollout", "name": "ro-00000"}],
        },
        "spec": {"replicas": replicas},
        "status": {"availableReplicas": available},
    }


def _argo_release() -> tuple[list[dict[str, Any]], list[tuple[float, str, dict[str, Any]]]]:
    """One Argo Rollout's release, audited and watched: image change at 1 s, canary ready at 2 s,
    pause from 2 s (Argo's whole second) to 4 s, full canary ready at 5 s, complete at 5.3 s; Argo
    reacts 0.1, 0.2 and 0.3 s late."""
    rollout = _argo_at("app:2", 3, "3", "Healthy", "new")
    pausing = {**rollout, "status": {"pauseConditions": [{"startTime": _at(2.1).split(".")[0] + "Z"}]}}
    events = [
        _write("admin", "rollouts", "ro-00000", 1.0),
        _write("replicaset-controller", "replicasets", "ro-00000-new", 2.0, "status"),
        _write("argo", "rollouts", "ro-00000", 2.1, "status"),  # to the pause step
        _write("argo", "replicasets", "ro-00000-new", 4.2),  # the pause over: scaled to 2
        _write("replicaset-controller", "replicasets", "ro-00000-new", 5.0, "status"),
        _write("argo", "rollouts", "ro-00000", 5.3, "status"),  # complete
    ]
    observed = [
        (T0 + 2.05, "rs", _replicaset("ro-00000-new", 1.2, 1, 1)),
        (T0 + 2.2, "ro", pausing),
        (T0 + 5.1, "rs", _replicaset("ro-00000-new", 1.2, 2, 2)),
        (T0 + 5.4, "ro", rollout),
    ]
    return events, observed


def test_a_release_is_timed_from_the_audit_log() -> None:
    """The release of `_argo_release`, timed as the release scenario does."""
    events, observed = _argo_release()
    figures = release_figures(
        contenders.ARGO, events, observed, {("peers-0", "ro-00000")}, since=T0 + 0.5, image="app:2"
    )
    assert figures["wall_seconds"] == pytest.approx(5.305 - 1.0, abs=0.01)
    assert figures["overhead_beyond_pause_seconds"]["p50"] == pytest.approx(2.305, abs=0.01)
    delays = figures["reaction_delay_seconds"]
    assert delays["samples"] == 3
    assert delays["p50"] == pytest.approx(0.2, abs=0.01)  # 2.1 - 2.005, 4.2 - 4.0, 5.3 - 5.005
    assert figures["requests"] == {"total": 3, "writes": 3}


def test_a_soaks_release_before_the_kept_audit_log_is_not_timed() -> None:
    """The apiserver rotated away the writes before 0.8 s: the release begun at 0.5 s would be timed
    against writes that are gone (its next write found a later release's), so it is counted as not
    timed; the one at 1 s is timed as in the release scenario."""
    timed, observed = _argo_release()
    # the first kept write: the earlier ones went with the rotated log
    events = [_write("argo", "rollouts", "ro-00001", 0.8, "status"), *timed]
    assert audit_kept_from(events) == pytest.approx(T0 + 0.8)
    assert audit_kept_from([]) == math.inf
    running = SimpleNamespace(
        watcher=SimpleNamespace(snapshot=lambda since: [o for o in observed if o[0] >= since]),
        sampler=SimpleNamespace(samples=[]),
    )
    key = ("peers-0", "ro-00000")
    released = [(T0 + 0.5, ("peers-1", "ro-00001"), "app:2"), (T0 + 0.99, key, "app:2")]
    figures = peers.soak_figures(
        contenders.ARGO, events, cast("Any", running), released, since=T0, end=T0 + 10
    )
    assert figures["releases"] == 2
    assert figures["releases_untimed"] == 1
    window = figures["windows"][0]["reaction_delay_seconds"]
    assert window["samples"] == 3
    assert window["p50"] == pytest.approx(0.2, abs=0.01)


def test_the_idle_scenarios_rollouts_have_one_replica_in_both_apis() -> None:
    for controller in ("delivery", "argo"):
        idle = scenario.rollouts(controller, PLAN, "app:1", replicas=scenario.IDLE_REPLICAS)
        assert {manifest["spec"]["replicas"] for manifest in idle} == {1}
        released = scenario.rollouts(controller, PLAN, "app:1")
        assert {manifest["spec"]["replicas"] for manifest in released} == {scenario.REPLICAS}


def test_two_shards_split_the_rollouts_round_robin_and_label_ours_only() -> None:
    shards = scenario.shard_ids(2)
    assert shards == ("shard-0", "shard-1")
    items = scenario.sharded(scenario.rollouts("delivery", PLAN, "app:1"), shards)
    labels = [item["metadata"]["labels"][shard.LABEL] for item in items]
    assert labels == ["shard-0", "shard-1"] * 3 + ["shard-0"]
    groups = scenario.by_shard(PLAN, shards)
    assert {group: len(keys) for group, keys in groups.items()} == {"shard-0": 4, "shard-1": 3}
    assert set().union(*groups.values()) == set(PLAN.placements())
    for item in items:  # each Rollout in the group of the shard it is labelled with
        key = (item["metadata"]["namespace"], item["metadata"]["name"])
        assert key in groups[item["metadata"]["labels"][shard.LABEL]]
        Rollout.model_validate(item)
    assert scenario.sharded(scenario.rollouts("delivery", PLAN, "app:1"), ()) == scenario.rollouts(
        "delivery", PLAN, "app:1"
    )
    assert scenario.by_shard(PLAN, ()) == {None: set(PLAN.placements())}


def test_each_shard_runs_under_its_own_identity_with_its_id() -> None:
    argv = contenders.DELIVERY.argv(Path("k"), None, "shard-1")
    assert "--controller-id=shard-1" in argv
    assert not any(arg.startswith("--controller-id") for arg in contenders.DELIVERY.argv(Path("k"), None))
    assert peers.identities([contenders.DELIVERY], ("shard-0", "shard-1")) == [
        "delivery-shard-0",
        "delivery-shard-1",
    ]
    assert peers.identities([contenders.DELIVERY, contenders.ARGO], ()) == ["delivery", "argo"]
    with pytest.raises(ValueError, match="only delivery"):
        contenders.ARGO.argv(Path("k"), Path("argo"), "shard-0")


def test_the_shards_figures_add_up_and_the_slowest_decides_the_time_to_ready() -> None:
    def figures(ready: float, requests: int, cpu: float, rss: float) -> dict[str, Any]:
        return {
            "time_to_ready_seconds": ready,
            "requests_to_ready": {"total": requests, "writes": 1},
            "idle": {"seconds": 20, "requests": {"total": requests // 10, "writes": 0}, "cpu_seconds": cpu},
            "rss_mib_idle_end": rss,
            "peak_rss_mib": rss + 10,
        }

    total = peers.summed([figures(12.0, 100, 0.5, 60.0), figures(15.5, 80, 0.25, 55.0)])
    assert total["time_to_ready_seconds"] == 15.5
    assert total["requests_to_ready"] == {"total": 180, "writes": 2}
    assert total["idle"] == {"seconds": 20, "requests": {"total": 18, "writes": 0}, "cpu_seconds": 0.75}
    assert total["rss_mib_idle_end"] == 115.0
    assert total["peak_rss_mib"] == 135.0
    # as the table reads it, with the restart of one shard beside it (idle_round adds it)
    restart = {
        "first_write_seconds": 1.0,
        "probe_complete_seconds": 2.0,
        "requests": {"total": 5, "writes": 2},
    }
    read = peers.median_of_rounds([{**total, "restart": {**restart, "peak_rss_mib": 50.0}}], peers.IDLE_ROWS)
    assert read["peak RSS (MiB)"] == 135.0
    assert read["restart: peak RSS (MiB)"] == 50.0
