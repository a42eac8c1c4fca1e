"""The autoscaler benchmark's counting, pure: writes by identity within the window, per hour."""

from __future__ import annotations

from typing import Any

from benchmarks.component_hpa import per_hour, writes_by_user


def audited(audit_id: str, user: str, verb: str, at: str, subresource: str = "") -> dict[str, Any]:
    ref = {"resource": "deployments", **({"subresource": subresource} if subresource else {})}
    return {
        "auditID": audit_id,
        "user": {"username": user},
        "verb": verb,
        "objectRef": ref,
        "requestReceivedTimestamp": at,
    }


def test_writes_are_counted_once_by_identity_within_the_window_reads_aside() -> None:
    start = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    events = [
        audited("a", "hpa-driver", "patch", "2027-01-15T08:00:01Z", "scale"),
        audited("a", "hpa-driver", "patch", "2027-01-15T08:00:01Z", "scale"),  # its second stage
        audited("b", "delivery-controller", "patch", "2027-01-15T08:00:02Z"),
        audited("c", "delivery-controller", "get", "2027-01-15T08:00:02Z"),
        audited("d", "delivery-controller", "patch", "2027-01-15T07:59:59Z"),  # before the window
        audited("e", "hpa-driver", "patch", "2027-01-15T08:05:00Z", "scale"),  # at its end: after
    ]
    assert writes_by_user(events, start, start + 300) == {
        "hpa-driver": {"patch deployments/scale": 1},
        "delivery-controller": {"patch deployments": 1},
    }
    assert per_hour({"hpa-driver": 10, "delivery-controller": 0}, 300) == {
        "hpa-driver": 120.0,
        "delivery-controller": 0.0,
    }
