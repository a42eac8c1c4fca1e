"""`kubectl delivery gate open ROLLOUT HOOK`: a person opens a gate the release is held at.

It sets the open-gate annotation the controller consumes (so it needs no more rights than
`kubectl annotate`), only when the Rollout's status says the release is held at that gate: an
annotation for a gate not holding the release would be consumed and ignored, so a pipeline is
told at once (exit 1) rather than waiting for a release that was never let through.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from delivery.kube.api import Kube
from delivery.kube.kinds import ROLLOUT
from delivery.rollout.decide import OPEN_GATE

EXIT_OPENED, EXIT_REFUSED = 0, 1


def add_parser(
    command: Callable[[str, str], argparse.ArgumentParser], where: Callable[[argparse.ArgumentParser], None]
) -> None:
    """The `gate` command, made by the plugin's `command` factory; `where` gives `open` the options
    saying where to act, so they may follow its arguments as they may every other command's."""
    gate = command("gate", "open a gate (spec.hooks) the release is held at")
    actions = gate.add_subparsers(dest="gate_action", required=True)
    opening = actions.add_parser("open", help="let the release through the gate HOOK holds it at")
    where(opening)
    opening.add_argument("name", help="the Rollout")
    opening.add_argument("hook", help="the hook's name in spec.hooks")


def held_at(rollout: dict[str, Any]) -> list[str]:
    """The gates the release is held at, by hook name, from the Rollout's status."""
    gates = (rollout.get("status") or {}).get("gates") or {}
    return [waiting["name"] for waiting in gates.get("waiting") or ()]


async def run(kube: Kube, namespace: str, args: argparse.Namespace) -> int:
    rollout = await kube.get(ROLLOUT, namespace, args.name)
    if rollout is None:
        print(f"rollout {namespace}/{args.name} not found", file=sys.stderr)
        return EXIT_REFUSED
    held = held_at(rollout)
    if args.hook not in held:
        where = ", ".join(held) if held else "no gate"
        print(f"rollout {namespace}/{args.name} is held at {where}, not at {args.hook}", file=sys.stderr)
        return EXIT_REFUSED
    await kube.patch(ROLLOUT, namespace, args.name, {"metadata": {"annotations": {OPEN_GATE: args.hook}}})
    print(f"rollout {namespace}/{args.name}: gate {args.hook} opened")
    return EXIT_OPENED
