"""HTTPRoute rules get the canary beside the stable backend, weights summing to 100."""

from __future__ import annotations

import pytest

from delivery.traffic.gatewayapi import canary_weight, weighted_rules
from delivery.traffic.route import Match, Route

OWNER = {"apiVersion": "delivery.luojilab.com/v1alpha1", "kind": "Rollout", "name": "web", "uid": "u1"}
ROUTE = Route("shop", "web-stable", "web-canary", OWNER)
RULES = [
    {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [{"name": "web-stable", "port": 80}],
    },
    {
        "matches": [{"path": {"type": "PathPrefix", "value": "/docs"}}],
        "backendRefs": [{"name": "docs", "port": 80}],
    },
]


@pytest.mark.parametrize("weight", [0, 1, 20, 50, 100])
def test_weights_split_100_and_read_back(weight: int) -> None:
    rules = weighted_rules(RULES, ROUTE, weight)
    refs = rules[0]["backendRefs"]
    assert refs == [
        {"name": "web-stable", "port": 80, "weight": 100 - weight},
        {"name": "web-canary", "port": 80, "weight": weight},
    ]
    assert rules[1] == RULES[1]
    assert canary_weight(rules, ROUTE) == weight


def test_setting_a_weight_twice_changes_nothing_more() -> None:
    once = weighted_rules(RULES, ROUTE, 30)
    assert weighted_rules(once, ROUTE, 30) == once
    assert weighted_rules(once, ROUTE, 0)[0]["backendRefs"][1]["weight"] == 0


def test_a_header_match_adds_one_canary_only_rule() -> None:
    route = Route("shop", "web-stable", "web-canary", OWNER, Match(header="X-Canary", header_value="yes"))
    rules = weighted_rules(RULES, route, 10)
    assert rules[0] == {
        "matches": [{"headers": [{"name": "X-Canary", "value": "yes"}]}],
        "backendRefs": [{"name": "web-canary", "port": 80, "weight": 1}],
    }
    assert len(weighted_rules(rules, route, 10)) == len(rules) == 3
    assert canary_weight(rules, route) == 10


def test_no_stable_backend_means_no_canary_weight() -> None:
    assert canary_weight([RULES[1]], ROUTE) == 0
