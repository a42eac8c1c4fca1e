"""What the scale subresource shows an HPA: the pods it measures (status.selector) and their count."""

from __future__ import annotations

from delivery.rollout.plan import plan_of, selector_string
from delivery.rollout.revision import HASH_LABEL
from delivery.rollout.status import scale_target
from strategies import ReplicaSetState


def test_a_selector_string_keeps_every_requirement() -> None:
    selector = {
        "matchLabels": {"tier": "web", "app": "shop"},
        "matchExpressions": [
            {"key": "track", "operator": "In", "values": ["b", "a"]},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "owner", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    assert selector_string(selector) == "app=shop,tier=web,track in (a,b),env notin (dev),owner,!legacy"


def test_a_selector_of_expressions_alone_is_not_every_pod_of_the_namespace() -> None:
    plan = plan_of(
        {
            "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}},
            "strategy": {"rolling": {}},
        }
    )
    assert plan.pod_selector == "app in (web)"


def test_a_canary_is_measured_whole_and_counted_up_to_spec_replicas() -> None:
    routed = (ReplicaSetState("s", 10, 10), ReplicaSetState("c", 5, 5))  # stable full, canary beside it
    assert scale_target("app=web", routed, 10, None) == ("app=web", 10)
    basic = (ReplicaSetState("s", 5, 5), ReplicaSetState("c", 5, 5))  # pods are the weight
    assert scale_target("app=web", basic, 10, None) == ("app=web", 10)
    growing = (ReplicaSetState("s", 5, 5), ReplicaSetState("c", 3, 0))  # an HPA raised it to 12
    assert scale_target("app=web", growing, 12, None) == ("app=web", 8)


def test_blue_green_is_measured_on_the_active_revision_alone() -> None:
    previewing = (ReplicaSetState("s", 4, 4), ReplicaSetState("n", 4, 4))
    assert scale_target("app=web", previewing, 4, "s") == (f"app=web,{HASH_LABEL}=s", 4)
    switched = (ReplicaSetState("s", 4, 4), ReplicaSetState("n", 6, 6))  # old one within its delay
    assert scale_target("app=web", switched, 6, "n") == (f"app=web,{HASH_LABEL}=n", 6)
    assert scale_target("app=web", (), 3, "n") == (f"app=web,{HASH_LABEL}=n", 0)
