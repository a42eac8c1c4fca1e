"""`kubectl delivery`: act on a Rollout the way a person or a pipeline does, speaking kubectl.

Where: `-n/--namespace`, else the namespace of the kubeconfig's current context (or of
`--context NAME`), else `default`, read as kubectl reads them (`delivery.cli.kubeconfig`); these
options go before or after the command. promote, abort, retry and pause set the command
annotations the controller consumes, so the plugin needs no more rights than `kubectl annotate`.
`status` prints the phase and exits with a code a pipeline can branch on: 0 Healthy, 1 Aborted or
Degraded, 2 still in flight (after --timeout when given); `wait ROLLOUT --for STATE` waits for one
state (0 reached, 1 stopped in another, 2 timed out). `get rollout NAME [--watch]` shows the
Rollout as a tree of revisions; `list` every Rollout of the namespace (or of the cluster, -A).
`set image`, `undo` and `restart` change the Rollout as Argo Rollouts' plugin does: the pod
template's images, an earlier revision's template written back, `spec.restartAt`. `lint FILE...`
checks objects before they are applied, `convert -f FILE` rewrites Argo Rollouts' and Flagger's as
ours; `plan component` diffs what new templates would change; `completion bash|zsh` prints a
completion script; `dashboard` serves a live web page of the Rollouts and Components with the same
credentials and annotations (docs/dashboard.md). A kubectl further than one minor from the server
is warned of on stderr (`delivery.cli.skew`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import shtab
from kubernetes.aio.config.config_exception import ConfigException
from rich.console import Console
from rich.live import Live

from delivery.api.durations import seconds
from delivery.cli import convert, gate
from delivery.cli.commands import (
    LIST_COLUMNS,
    CommandError,
    Goal,
    Outcome,
    TemplateOwner,
    format_restart_at,
    guarded,
    image_patch,
    list_row,
    parse_assignments,
    reached,
    revision_of,
    table,
    template_owner,
    undo_target,
    written_template,
)
from delivery.cli.kubeconfig import KubeconfigError, client_for, target
from delivery.cli.lint import lint_files
from delivery.cli.live import follow
from delivery.cli.skew import warn_skew
from delivery.cli.tree import rollout_tree
from delivery.component.plan import EXIT_ERROR as EXIT_PLAN_ERROR
from delivery.component.plan import show_plan
from delivery.component.scope import rendered
from delivery.dashboard.server import serve, serve_forever
from delivery.dashboard.store import Store
from delivery.kube.api import JSON_PATCH, Kube, KubeError, Object
from delivery.kube.kinds import COMPONENT, REPLICA_SET, ROLLOUT
from delivery.rollout.decide import ABORT, PAUSE, PROMOTE, RETRY
from delivery.rollout.revision import ROLLOUT_LABEL, template_hash

EXIT_HEALTHY, EXIT_FAILED, EXIT_IN_FLIGHT = 0, 1, 2
FAILED_PHASES = ("Aborted", "Degraded")
ACTIONS = {
    "promote": (PROMOTE, "step"),
    "abort": (ABORT, "true"),
    "retry": (RETRY, "true"),
    "pause": (PAUSE, "true"),
}


def _where(parser: argparse.ArgumentParser) -> None:
    """The options saying where to act. Given to the root and to every command (defaults
    suppressed, so a value given before the command is not reset after it), so that
    `kubectl delivery -n shop get rollout web` and `kubectl delivery get rollout web -n shop` agree."""
    parser.add_argument(
        "--kubeconfig",
        default=argparse.SUPPRESS,
        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)",
    )
    parser.add_argument("--context", default=argparse.SUPPRESS, help="the kubeconfig context to use")
    parser.add_argument(
        "-n",
        "--namespace",
        default=argparse.SUPPRESS,
        help="default: the context's namespace, else 'default'",
    )


def _rollout_name(command: argparse.ArgumentParser) -> None:
    command.add_argument("name", metavar="ROLLOUT")


def _dashboard_options(dashboard: argparse.ArgumentParser) -> None:
    dashboard.add_argument("--address", default="127.0.0.1", help="listen here (default: 127.0.0.1)")
    dashboard.add_argument("--port", type=int, default=3100, help="listen on this port (default: 3100)")
    dashboard.add_argument(
        "-A", "--all-namespaces", action="store_true", help="every namespace (default: the one chosen)"
    )
    dashboard.add_argument(
        "--read-only", action="store_true", help="no promote/abort/retry/pause buttons; actions refused"
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="kubectl delivery", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _where(root)
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        added = commands.add_parser(name, help=help_text, description=help_text)
        _where(added)
        return added

    for name, help_text in (
        ("promote", "go to the next step (--full: skip every remaining step)"),
        ("abort", "send traffic back to stable and scale the new revision down"),
        ("retry", "start an aborted release again from its first step"),
        ("pause", "hold the release where it is until promoted"),
    ):
        action = command(name, help_text)
        _rollout_name(action)
        if name == "promote":
            action.add_argument("--full", action="store_true")
    status = command("status", "print the phase; exit 0 healthy, 1 aborted/degraded, 2 in flight")
    _rollout_name(status)
    status.add_argument(
        "--timeout", type=float, default=0, help="wait up to this many seconds for an outcome"
    )
    get = command("get", "show a rollout's revisions, weights, step and analysis")
    get.add_argument("kind", choices=["rollout", "ro"])
    _rollout_name(get)
    get.add_argument("-w", "--watch", action="store_true", help="keep showing it as it changes")
    listing = command("list", "the rollouts with phase, step, weight, revisions and age")
    listing.add_argument("kind", nargs="?", choices=["rollouts", "rollout", "ro"], default="rollouts")
    listing.add_argument(
        "-A", "--all-namespaces", action="store_true", help="the rollouts of every namespace"
    )
    setting = command("set", "change a rollout's pod template")
    what = setting.add_subparsers(dest="what", required=True, metavar="WHAT")
    image = what.add_parser("image", help="set container images: a new revision, released by the strategy")
    _where(image)
    _rollout_name(image)
    image.add_argument("images", nargs="+", metavar="CONTAINER=IMAGE", help="'*=IMAGE': every container")
    undo = command("undo", "write an earlier revision's pod template back: released like any change")
    _rollout_name(undo)
    undo.add_argument(
        "--to-revision",
        metavar="REVISION",
        help="the revision (pod-template hash, as get and list show it); default: the stable one during "
        "a release, else the newest other one",
    )
    restart = command(
        "restart", "replace every pod, a few at a time, without a new revision (spec.restartAt)"
    )
    _rollout_name(restart)
    restart.add_argument(
        "--in", dest="delay", default="0s", metavar="DURATION", help="from now, e.g. 30s, 5m"
    )
    wait = command(
        "wait", "wait for a state; exit 0 reached, 1 another end state or no such rollout, 2 timeout"
    )
    _rollout_name(wait)
    wait.add_argument("--for", dest="goal", required=True, choices=[goal.value for goal in Goal])
    wait.add_argument("--timeout", default="0s", metavar="DURATION", help="e.g. 5m; 0s (default): no limit")
    convert.add_parser(command)
    lint = command("lint", "check Rollouts, Components and analysis templates in files; exit 1 on a problem")
    lint.add_argument("files", nargs="+", type=Path, metavar="FILE")
    _plan_options(
        command(
            "plan",
            "diff of what new templates or a new ClusterProfile would change; exit 0 none, 1 some, 2 error",
        )
    )
    gate.add_parser(command, _where)
    _dashboard_options(command("dashboard", "serve a live web page of the rollouts and components"))
    completion = command(
        "completion", "print a shell completion script: source <(kubectl delivery completion bash)"
    )
    completion.add_argument("shell", choices=["bash", "zsh"])
    return root


def _plan_options(plan: argparse.ArgumentParser) -> None:
    plan.add_argument("kind", nargs="?", choices=["component", "comp"])
    plan.add_argument("name", nargs="?")
    which = plan.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every Component of the namespace")
    which.add_argument("-A", "--all-namespaces", action="store_true", help="every Component of the cluster")
    plan.add_argument("--profile", type=Path, help="the proposed ClusterProfile (a YAML file)")
    plan.add_argument("--templates", type=Path, help="the proposed templates ConfigMap's files (a directory)")


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


async def plan(kube: Kube, namespace: str, args: argparse.Namespace) -> int:
    many = args.all or args.all_namespaces
    if many == bool(args.name):
        print("kubectl delivery plan: name one Component (component NAME), --all or -A", file=sys.stderr)
        return EXIT_PLAN_ERROR
    if many:
        listed = await kube.list(COMPONENT, None if args.all_namespaces else namespace)
        components = [component for component in listed if rendered(component)]
    else:
        component = await kube.get(COMPONENT, namespace, args.name)
        if component is None:
            print(f"component {namespace}/{args.name} not found", file=sys.stderr)
            return EXIT_PLAN_ERROR
        components = [component]
    return await show_plan(kube, components, profile=args.profile, templates=args.templates)


async def list_rollouts(kube: Kube, namespace: str, every: bool) -> int:
    rollouts = await kube.list(ROLLOUT, None if every else namespace)
    if not rollouts:
        print(f"No rollouts found{'' if every else f' in {namespace} namespace'}.", file=sys.stderr)
        return 0
    now = datetime.datetime.now(datetime.UTC)
    ordered = sorted(rollouts, key=lambda r: (r["metadata"]["namespace"], r["metadata"]["name"]))
    rows = [list_row(rollout, now) for rollout in ordered]
    if every:
        rows = [(rollout["metadata"]["namespace"], *row) for rollout, row in zip(ordered, rows, strict=True)]
    print(table(("NAMESPACE", *LIST_COLUMNS) if every else LIST_COLUMNS, rows))
    return 0


async def _rollout(kube: Kube, namespace: str, name: str) -> Object:
    rollout = await kube.get(ROLLOUT, namespace, name)
    if rollout is None:
        raise CommandError(f"rollout {namespace}/{name} not found")
    return rollout


async def _template_owner(kube: Kube, rollout: Object) -> tuple[TemplateOwner, Object]:
    """Where the Rollout's pod template is written, and that object as it is now."""
    owner = template_owner(rollout)
    namespace = rollout["metadata"]["namespace"]
    body = rollout if owner.kind is ROLLOUT else await kube.get(owner.kind, namespace, owner.name)
    if body is None:
        raise CommandError(f"{owner.kind.kind} {namespace}/{owner.name} not found")
    return owner, body


async def _patch_template(kube: Kube, owner: TemplateOwner, body: Object, operations: list[Object]) -> None:
    """A JSON patch of the owner's pod template, refused (409: try again) if it changed since read."""
    try:
        await kube.patch(
            owner.kind,
            body["metadata"]["namespace"],
            owner.name,
            guarded(body, operations),
            content_type=JSON_PATCH,
        )
    except KubeError as error:
        if error.status in (409, 422):  # a failed `test`: changed meanwhile
            raise CommandError(
                f"{owner.kind.kind} {owner.name} changed while being written; try again"
            ) from error
        raise


def _not_watched(owner: TemplateOwner) -> str:
    """What a person should know when the template written is a workloadRef Deployment's."""
    if owner.kind is ROLLOUT:
        return ""
    return "; released at the Rollout's next reconcile (its Deployment's changes are not watched)"


async def set_image(kube: Kube, namespace: str, name: str, images: list[str]) -> int:
    rollout = await _rollout(kube, namespace, name)
    owner, body = await _template_owner(kube, rollout)
    operations = image_patch(body["spec"]["template"], parse_assignments(images))
    where = f"{owner.kind.kind.lower()} {namespace}/{owner.name}"
    if not operations:
        print(f"{where}: images unchanged")
        return 0
    await _patch_template(kube, owner, body, operations)
    print(f"{where}: image updated ({', '.join(images)}){_not_watched(owner)}")
    return 0


async def undo(kube: Kube, namespace: str, name: str, to: str | None) -> int:
    rollout = await _rollout(kube, namespace, name)
    owner, body = await _template_owner(kube, rollout)
    replicasets = await kube.list(REPLICA_SET, namespace, f"{ROLLOUT_LABEL}={name}")
    current = body["spec"]["template"]
    target = undo_target(current, rollout.get("status") or {}, replicasets, to)
    revision = revision_of(target)
    if revision == template_hash(current):
        print(f"rollout {namespace}/{name}: already at revision {revision}")
        return 0
    await _patch_template(
        kube, owner, body, [{"op": "replace", "path": "/spec/template", "value": written_template(target)}]
    )
    went = f"back to revision {revision} (from {template_hash(current)})"
    print(f"rollout {namespace}/{name}: {went}{_not_watched(owner)}")
    return 0


async def restart(kube: Kube, namespace: str, name: str, delay: str) -> int:
    await _rollout(kube, namespace, name)
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds(delay))
    at = format_restart_at(moment)
    await kube.patch(ROLLOUT, namespace, name, {"spec": {"restartAt": at}})
    print(f"rollout {namespace}/{name}: restart at {at}")
    return 0


async def wait_for(kube: Kube, namespace: str, name: str, goal: Goal, timeout: float) -> int:
    """Watch until the Rollout reaches `goal` (0), stops in another state (1), or `timeout` (2)."""
    said = ""
    try:
        async with asyncio.timeout(timeout or None):
            async for snapshot in follow(kube, namespace, name):
                if snapshot.rollout is None:
                    print(f"rollout {namespace}/{name} not found", file=sys.stderr)
                    return Outcome.OTHER
                status = snapshot.rollout.get("status") or {}
                line = f"{name}: {status.get('phase', 'Unknown')} - {status.get('message', '')}"
                if line != said:
                    print(line, flush=True)
                    said = line
                outcome = reached(snapshot.rollout, goal)
                if outcome is not None:
                    if outcome is Outcome.OTHER:
                        print(f"rollout {namespace}/{name} will not become {goal} by itself", file=sys.stderr)
                    return outcome
    except TimeoutError:
        print(f"rollout {namespace}/{name}: not {goal} after {timeout:g}s", file=sys.stderr)
    return Outcome.TIMEOUT


def completion(shell: str) -> int:
    """The script for the `kubectl-delivery` command, from this parser (shtab walks it, so every
    command, option and choice is in it). Named for the executable: a script for `kubectl delivery`
    would take over the completion of kubectl itself."""
    root = parser()
    root.prog = "kubectl-delivery"
    print(shtab.complete(root, shell=shell))
    return 0


async def request_action(kube: Kube, namespace: str, name: str, command: str, full: bool) -> None:
    """Ask the controller for promote (`full`: every remaining step), abort, retry or pause: the
    command annotation it consumes. The dashboard's buttons call this too."""
    key, value = ACTIONS[command]
    if command == "promote" and full:
        value = "full"
    await annotate(kube, namespace, name, key, value)


async def dashboard(kube: Kube, namespace: str, args: argparse.Namespace) -> int:
    """Serve the dashboard until interrupted, over this Kube (the user's credentials)."""
    where = None if args.all_namespaces else namespace
    store = Store(kube, () if where is None else (where,))

    async def act(namespace: str, name: str, command: str, full: bool) -> None:
        await request_action(kube, namespace, name, command, full)

    served = await serve(
        store,
        args.address,
        args.port,
        act=None if args.read_only else act,
        local=True,
        scope=where or "all namespaces",
    )
    shown = f"[{args.address}]" if ":" in args.address else args.address
    print(f"dashboard of {where or 'all namespaces'}: http://{shown}:{served.port}/", flush=True)
    await serve_forever(served)
    return 0


Handler = Callable[[Kube, str, argparse.Namespace], Awaitable[int]]
HANDLERS: dict[str, Handler] = {
    "status": lambda kube, namespace, args: wait_status(kube, namespace, args.name, args.timeout),
    "get": lambda kube, namespace, args: show(kube, namespace, args.name, args.watch),
    "list": lambda kube, namespace, args: list_rollouts(kube, namespace, args.all_namespaces),
    "plan": plan,
    "set": lambda kube, namespace, args: set_image(kube, namespace, args.name, args.images),
    "undo": lambda kube, namespace, args: undo(kube, namespace, args.name, args.to_revision),
    "restart": lambda kube, namespace, args: restart(kube, namespace, args.name, args.delay),
    "wait": lambda kube, namespace, args: wait_for(
        kube, namespace, args.name, Goal(args.goal), seconds(args.timeout)
    ),
    "gate": gate.run,
    "dashboard": dashboard,
}
"""The commands that talk to the cluster, by name; each is given the Kube and the namespace chosen."""


async def _action(kube: Kube, namespace: str, args: argparse.Namespace) -> int:
    await request_action(kube, namespace, args.name, args.command, getattr(args, "full", False))
    print(f"rollout {namespace}/{args.name}: {args.command} requested")
    return 0


async def run(args: argparse.Namespace) -> int:
    if args.command == "lint":
        return lint_files(args.files)
    if args.command == "convert":
        return convert.run(args.files, args.output, only_revisions=args.revisions)
    if args.command == "completion":
        return completion(args.shell)
    try:
        where = target(
            getattr(args, "kubeconfig", None),
            getattr(args, "context", None),
            getattr(args, "namespace", None),
        )
        client = await client_for(where)
    except (KubeconfigError, ConfigException) as error:
        print(f"kubectl delivery: {error}", file=sys.stderr)
        return EXIT_FAILED
    kube = Kube(client, field_manager="kubectl-delivery")
    try:
        await warn_skew(kube)
        return await HANDLERS.get(args.command, _action)(kube, where.namespace, args)
    except (KubeError, CommandError, ValueError) as error:
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
