"""`kubectl delivery`: act on a Rollout the way a person or a pipeline does.

promote, abort, retry and pause set the command annotations the controller consumes, so the
plugin needs no more rights than `kubectl annotate`. `status` prints the phase and exits with a
code a pipeline can branch on: 0 Healthy, 1 Aborted or Degraded, 2 still in flight (after
--timeout when given). `get rollout NAME [--watch]` shows the Rollout as a tree of revisions,
redrawn in place from a watch in a terminal, printed anew on each change when piped.
`plan component NAME | --all | -A [--profile FILE] [--templates DIR]` prints the diff that new
templates or a new ClusterProfile would make to the live objects, before they are applied.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from delivery.cli import gate
from delivery.cli.live import follow
from delivery.cli.tree import rollout_tree
from delivery.component.plan import EXIT_ERROR as EXIT_PLAN_ERROR
from delivery.component.plan import show_plan
from delivery.component.scope import rendered
from delivery.kube.api import Kube, KubeError
from delivery.kube.kinds import COMPONENT, ROLLOUT
from delivery.operator import api_client
from delivery.rollout.decide import ABORT, PAUSE, PROMOTE, RETRY

EXIT_HEALTHY, EXIT_FAILED, EXIT_IN_FLIGHT = 0, 1, 2
FAILED_PHASES = ("Aborted", "Degraded")
ACTIONS = {
    "promote": (PROMOTE, "step"),
    "abort": (ABORT, "true"),
    "retry": (RETRY, "true"),
    "pause": (PAUSE, "true"),
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="kubectl delivery", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    root.add_argument("-n", "--namespace", default="default")
    commands = root.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("promote", "go to the next step (--full: skip every remaining step)"),
        ("abort", "send traffic back to stable and scale the new revision down"),
        ("retry", "start an aborted release again from its first step"),
        ("pause", "hold the release where it is until promoted"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("name")
        if name == "promote":
            command.add_argument("--full", action="store_true")
    status = commands.add_parser(
        "status", help="print the phase; exit 0 healthy, 1 aborted/degraded, 2 in flight"
    )
    status.add_argument("name")
    status.add_argument(
        "--timeout", type=float, default=0, help="wait up to this many seconds for an outcome"
    )
    get = commands.add_parser("get", help="show a rollout's revisions, weights, step and analysis")
    get.add_argument("kind", choices=["rollout", "ro"])
    get.add_argument("name")
    get.add_argument("-w", "--watch", action="store_true", help="keep showing it as it changes")
    plan = commands.add_parser(
        "plan",
        help="diff of what new templates or a new ClusterProfile would change; exit 0 none, 1 some, 2 error",
    )
    plan.add_argument("kind", nargs="?", choices=["component", "comp"])
    plan.add_argument("name", nargs="?")
    which = plan.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every Component of the namespace")
    which.add_argument("-A", "--all-namespaces", action="store_true", help="every Component of the cluster")
    plan.add_argument("--profile", type=Path, help="the proposed ClusterProfile (a YAML file)")
    plan.add_argument("--templates", type=Path, help="the proposed templates ConfigMap's files (a directory)")
    gate.add_parser(commands)
    return root


async def show(kube: Kube, namespace: str, name: str, watch: bool) -> int:
    console = Console(highlight=False)
    with contextlib.ExitStack() as stack:
        live = (
            stack.enter_context(Live(console=console, auto_refresh=False))
            if watch and console.is_terminal
            else None
        )
        async for snapshot in follow(kube, namespace, name):
            if snapshot.rollout is None:
                print(f"rollout {namespace}/{name} not found", file=sys.stderr)
                if not watch:
                    return EXIT_FAILED
                continue
            tree = rollout_tree(snapshot.rollout, snapshot.replicasets)
            if live is not None:
                live.update(tree, refresh=True)
            else:
                console.print(tree)
                if not watch:
                    return 0
                console.print()
    return 0


def exit_code(status: dict[str, Any], generation: int) -> int:
    if status.get("observedGeneration") != generation:
        return EXIT_IN_FLIGHT  # the controller has not seen the latest spec yet
    if status.get("phase") in FAILED_PHASES:
        return EXIT_FAILED
    completed = any(c["type"] == "Completed" and c["status"] == "True" for c in status.get("conditions", []))
    return EXIT_HEALTHY if completed else EXIT_IN_FLIGHT


async def annotate(kube: Kube, namespace: str, name: str, key: str, value: str) -> None:
    await kube.patch(ROLLOUT, namespace, name, {"metadata": {"annotations": {key: value}}})


async def wait_status(kube: Kube, namespace: str, name: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        rollout = await kube.get(ROLLOUT, namespace, name)
        if rollout is None:
            print(f"rollout {namespace}/{name} not found", file=sys.stderr)
            return EXIT_FAILED
        status = rollout.get("status") or {}
        code = exit_code(status, rollout["metadata"].get("generation", 1))
        if code != EXIT_IN_FLIGHT or time.monotonic() >= deadline:
            print(f"{name}: {status.get('phase', 'Unknown')} - {status.get('message', '')}")
            return code
        await asyncio.sleep(1)


async def plan(kube: Kube, args: argparse.Namespace) -> int:
    many = args.all or args.all_namespaces
    if many == bool(args.name):
        print("kubectl delivery plan: name one Component (component NAME), --all or -A", file=sys.stderr)
        return EXIT_PLAN_ERROR
    if many:
        listed = await kube.list(COMPONENT, None if args.all_namespaces else args.namespace)
        components = [component for component in listed if rendered(component)]
    else:
        component = await kube.get(COMPONENT, args.namespace, args.name)
        if component is None:
            print(f"component {args.namespace}/{args.name} not found", file=sys.stderr)
            return EXIT_PLAN_ERROR
        components = [component]
    return await show_plan(kube, components, profile=args.profile, templates=args.templates)


async def run(args: argparse.Namespace) -> int:
    client = await api_client(args.kubeconfig)
    kube = Kube(client, field_manager="kubectl-delivery")
    try:
        if args.command == "status":
            return await wait_status(kube, args.namespace, args.name, args.timeout)
        if args.command == "get":
            return await show(kube, args.namespace, args.name, args.watch)
        if args.command == "plan":
            return await plan(kube, args)
        if args.command == "gate":
            return await gate.run(kube, args)
        key, value = ACTIONS[args.command]
        if args.command == "promote" and args.full:
            value = "full"
        await annotate(kube, args.namespace, args.name, key, value)
        print(f"rollout {args.namespace}/{args.name}: {args.command} requested")
        return 0
    except KubeError as error:
        print(f"kubectl delivery {args.command}: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await client.close()  # type: ignore[no-untyped-call]  # untyped in kubernetes.aio


def main(argv: list[str] | None = None) -> int:
    try:
        return asyncio.run(run(parser().parse_args(argv)))
    except KeyboardInterrupt:
        return 0  # the way out of --watch


if __name__ == "__main__":
    sys.exit(main())
