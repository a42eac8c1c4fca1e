"""What `kubectl delivery <TAB>` offers, from the plugin's own parser."""

from __future__ import annotations

import pytest

from delivery.cli.complete import Need, candidates, main
from delivery.cli.plugin import parser

COMMANDS = [
    "promote",
    "abort",
    "retry",
    "pause",
    "status",
    "get",
    "list",
    "set",
    "undo",
    "restart",
    "wait",
    "convert",
    "lint",
    "plan",
    "gate",
    "dashboard",
    "completion",
]


@pytest.mark.parametrize(
    ("words", "offered", "need"),
    [
        ([""], set(COMMANDS), Need.NOTHING),
        (["re"], {"retry", "restart"}, Need.NOTHING),
        (["set", ""], {"image"}, Need.NOTHING),
        (["set", "image", ""], set(), Need.ROLLOUT),
        (["set", "image", "web", ""], set(), Need.NOTHING),  # CONTAINER=IMAGE: nothing to offer
        (["get", ""], {"rollout", "ro"}, Need.NOTHING),
        (["get", "rollout", ""], set(), Need.ROLLOUT),
        (["-n", "shop", "wait", ""], set(), Need.ROLLOUT),
        (["wait", "web", "--for", ""], {"healthy", "paused", "completed", "aborted"}, Need.NOTHING),
        (["wait", "web", "--for", "p"], {"paused"}, Need.NOTHING),
        (["undo", "web", "--to"], {"--to-revision"}, Need.NOTHING),
        (["list", "-n", ""], set(), Need.NAMESPACE),
        (["--context", ""], set(), Need.CONTEXT),
        (["lint", ""], set(), Need.FILE),
        (["lint", "a.yaml", ""], set(), Need.FILE),  # FILE...: more files
        (["convert", "-f", ""], set(), Need.FILE),
        (["completion", ""], {"bash", "zsh"}, Need.NOTHING),
    ],
)
def test_offered(words: list[str], offered: set[str], need: Need) -> None:
    completion = candidates(parser(), words)
    assert set(completion.words) == offered
    assert completion.need is need


def test_the_options_typed_say_where_to_look() -> None:
    completion = candidates(parser(), ["--context=other", "get", "rollout", "-n", "shop", ""])
    assert dict(completion.options) == {"context": "other", "namespace": "shop"}


def test_the_answer_is_cobras(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wait", "web", "--for", "a"]) == 0
    assert capsys.readouterr().out == "aborted\n:4\n"
    assert main(["lint", ""]) == 0
    assert capsys.readouterr().out == ":0\n"  # the shell completes file names
