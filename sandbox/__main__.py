"""`python -m sandbox build|up|down|env|status`: the local control plane from a shell."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from sandbox import build, versions
from sandbox.cluster import Sandbox, default_root
from sandbox.processes import ComponentFailed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("command", choices=["build", "up", "down", "env", "status"])
    parser.add_argument(
        "--root", type=Path, default=default_root(), help="state directory (default ./.sandbox)"
    )
    parser.add_argument("--nodes", type=int, default=3, help="kwok nodes to create (up)")
    parser.add_argument(
        "--kubernetes",
        metavar="VERSION",
        help=f"the Kubernetes release to build or start, a minor or a version (build, up; default "
        f"${versions.ENV}, else {versions.DEFAULT.kubernetes.version}; one of "
        f"{', '.join(known.kubernetes.version for known in versions.KNOWN)})",
    )
    parser.add_argument(
        "--all", action="store_true", help="build every release of the matrix and the upgrade test's (build)"
    )
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    try:
        release = versions.release(args.kubernetes) if args.kubernetes else versions.selected()
        if args.command == "build":
            for each in versions.KNOWN if args.all else (release,):
                build.build_all(each)
        elif args.command == "up":
            sandbox = Sandbox(root=root, detached=True, nodes=args.nodes, release=release)
            sandbox.up()
            print(f"sandbox up (Kubernetes {release.kubernetes.version}): {', '.join(sandbox.alive())}")
            print(f"  kubectl --kubeconfig {sandbox.kubeconfig} get nodes")
            print(f'  eval "$(python -m sandbox env --root {root})"')
        elif args.command == "down":
            Sandbox.load(root).down()
            print("sandbox down")
        elif args.command == "env":
            for key, value in Sandbox.load(root).env().items():
                print(f"export {key}={shlex.quote(value)}")
        else:
            sandbox = Sandbox.load(root)
            if not sandbox.processes:
                print(f"no sandbox running under {root}")
            for process in sandbox.processes:
                state = "running" if process.alive() else "stopped"
                print(f"{process.name:<24} pid {process.pid:<8} {state}")
            return 0 if sandbox.processes and len(sandbox.alive()) == len(sandbox.processes) else 1
    except (ComponentFailed, RuntimeError, ValueError) as error:
        print(f"sandbox {args.command} failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
