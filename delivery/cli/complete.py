"""`kubectl_complete-delivery`: completion of `kubectl delivery ...` inside kubectl's own completion.

kubectl (1.26 on) completes a plugin's arguments by running `kubectl_complete-<plugin>` from PATH
with the words typed after the plugin's name, the last one the word being completed, and reads
cobra's answer: one candidate a line, then `:DIRECTIVE` (4: no file names; 0: the shell's own file
completion). So `source <(kubectl completion bash)` is all a user needs: commands, options and
their choices come from the plugin's parser (`candidates`, pure), and Rollout names, namespaces
and contexts from the cluster and the kubeconfig the words name.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from delivery.cli import kubeconfig
from delivery.cli.plugin import parser
from delivery.kube.api import Kind, Kube
from delivery.kube.kinds import ROLLOUT

NAMESPACE = Kind("v1", "Namespace", "namespaces", namespaced=False)
NO_FILES, FILES = 4, 0  # cobra's ShellCompDirectiveNoFileComp and ShellCompDirectiveDefault
LOOKUP_SECONDS = 3.0  # a completion that waits longer for the cluster gives no names instead


class Need(enum.Enum):
    """What the word being completed names, beyond the parser's own words."""

    NOTHING = "nothing"
    ROLLOUT = "rollout"
    NAMESPACE = "namespace"
    CONTEXT = "context"
    FILE = "file"


@dataclass(frozen=True)
class Completion:
    words: tuple[str, ...]  # from the parser, already matched to the word typed
    need: Need = Need.NOTHING
    options: tuple[tuple[str, str], ...] = ()  # where the words typed say to look (--namespace...)


def _need(action: argparse.Action) -> Need:
    if action.dest == "namespace":
        return Need.NAMESPACE
    if action.dest == "context":
        return Need.CONTEXT
    if action.dest == "kubeconfig" or action.type is Path:
        return Need.FILE
    if action.metavar == "ROLLOUT":
        return Need.ROLLOUT
    return Need.NOTHING


def _subcommands(command: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in command._actions:  # argparse has no public walk of its tree (shtab reads it too)
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _positionals(command: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        action
        for action in command._actions
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction)
    ]


def candidates(root: argparse.ArgumentParser, words: Sequence[str]) -> Completion:
    """What may come at the last of `words` (the one being typed, maybe empty)."""
    command, chosen, index = root, False, 0
    expecting: argparse.Action | None = None
    options: list[tuple[str, str]] = []
    for word in words[:-1]:
        if expecting is not None:
            options.append((expecting.dest, word))
            expecting = None
            continue
        if word.startswith("-") and word != "-":
            name, equals, value = word.partition("=")
            action = command._option_string_actions.get(name)
            if action is not None and action.nargs != 0:
                if equals:
                    options.append((action.dest, value))
                else:
                    expecting = action
            continue
        subcommands = _subcommands(command)
        if subcommands and not chosen and word in subcommands:
            command, index = subcommands[word], 0
            chosen = not _subcommands(command)  # `set` has commands of its own
            continue
        index += 1
    typed = words[-1] if words else ""
    found: list[str]
    need = Need.NOTHING
    if expecting is not None:
        found, need = list(expecting.choices or ()), _need(expecting)
    elif typed.startswith("-"):
        found = [o for action in command._actions for o in action.option_strings]
    elif (subcommands := _subcommands(command)) and not chosen:
        found = list(subcommands)
    else:
        positionals = _positionals(command)
        open_ended = [a for a in positionals if a.nargs in ("+", "*")]
        action = positionals[index] if index < len(positionals) else (open_ended[-1] if open_ended else None)
        found, need = ([], Need.NOTHING) if action is None else (list(action.choices or ()), _need(action))
    return Completion(tuple(word for word in found if word.startswith(typed)), need, tuple(options))


async def _names(need: Need, options: dict[str, str], typed: str) -> list[str]:
    """Rollout or namespace names from the cluster, contexts from the kubeconfig."""
    where = kubeconfig.target(options.get("kubeconfig"), options.get("context"), options.get("namespace"))
    if need is Need.CONTEXT:
        documents = [kubeconfig.load(path) for path in where.files]
        names = [item.get("name", "") for d in documents for item in d.get("contexts") or []]
        return [name for name in dict.fromkeys(names) if name.startswith(typed)]
    client = await kubeconfig.client_for(where)
    try:
        kube = Kube(client)
        kind, namespace = (ROLLOUT, where.namespace) if need is Need.ROLLOUT else (NAMESPACE, None)
        listed = await asyncio.wait_for(kube.list(kind, namespace), LOOKUP_SECONDS)
    finally:
        await client.close()  # type: ignore[no-untyped-call]  # untyped in kubernetes.aio
    return sorted(o["metadata"]["name"] for o in listed if o["metadata"]["name"].startswith(typed))


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv) or [""]
    completion = candidates(parser(), words)
    found = list(completion.words)
    if completion.need in (Need.ROLLOUT, Need.NAMESPACE, Need.CONTEXT):
        # No cluster, no kubeconfig, no rights: no names, never an error in the user's shell.
        with contextlib.suppress(Exception):
            found += asyncio.run(_names(completion.need, dict(completion.options), words[-1]))
    for word in found:
        print(word)
    print(f":{FILES if completion.need is Need.FILE else NO_FILES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
