"""What a notification says, and which transitions are chosen."""

from __future__ import annotations

from delivery.machine import Reason
from delivery.ops.notify import DEFAULT_REASONS, NotifyConfig, message_of, slack_text
from delivery.report import EventNote

ROLLOUT = {"kind": "Rollout", "metadata": {"namespace": "shop", "name": "web"}}
STATUS = {"phase": "Aborted", "canaryRevision": "7c9d", "stableRevision": "5d8f", "currentStepIndex": 2}


def test_reasons_come_from_a_comma_list_and_star_means_all() -> None:
    chosen = NotifyConfig.from_flags([], [], "RolloutPaused, RolloutAborted,", 10)
    assert chosen.reasons == {"RolloutPaused", "RolloutAborted"}
    assert chosen.wanted(Reason.PAUSED)
    assert not chosen.wanted(Reason.STEP_COMPLETED)
    assert NotifyConfig.from_flags([], [], "*", 10).wanted(Reason.STEP_COMPLETED)


def test_by_default_only_ends_and_failures_are_told() -> None:
    assert Reason.ABORTED in DEFAULT_REASONS
    assert Reason.STEP_COMPLETED not in DEFAULT_REASONS
    assert NotifyConfig().wanted(Reason.PROMOTED)


def test_the_json_message_says_what_happened_and_where_the_rollout_stands() -> None:
    message = message_of(
        ROLLOUT, STATUS, EventNote("AnalysisRunFailed", "error rate 0.3 > 0.05", warning=True)
    )
    assert {key: message[key] for key in message if key != "time"} == {
        "kind": "Rollout",
        "namespace": "shop",
        "name": "web",
        "reason": "AnalysisRunFailed",
        "message": "error rate 0.3 > 0.05",
        "type": "Warning",
        "phase": "Aborted",
        "revision": "7c9d",
        "stableRevision": "5d8f",
        "step": 2,
    }


def test_the_slack_form_is_one_line_of_text() -> None:
    message = message_of(ROLLOUT, STATUS, EventNote("RolloutAborted", "aborted by a person", warning=True))
    assert slack_text(message) == {
        "text": ":warning: Rollout shop/web: *RolloutAborted* aborted by a person"
        " (phase Aborted, revision 7c9d)"
    }
