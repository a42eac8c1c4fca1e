"""`delivery`: run the controller."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from delivery.operator import Options, run


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="delivery", description="Progressive delivery for Kubernetes.")
    commands = root.add_subparsers(dest="command", required=True)
    controller = commands.add_parser("run", help="run the controller")
    controller.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then in-cluster)")
    controller.add_argument("--namespace", action="append", default=[], help="watch only this namespace")
    controller.add_argument("--controller-id", help="handle only objects labelled with this controller id")
    controller.add_argument("--workers", type=int, default=8, help="reconciles running at once")
    controller.add_argument(
        "--webhook",
        default="local",
        help="conversion webhook: 'local' (127.0.0.1, for the sandbox), 'off', or a Service NAMESPACE/NAME",
    )
    controller.add_argument(
        "--webhook-port", type=int, default=0, help="webhook port (default: any free one)"
    )
    controller.add_argument("--log-level", default="INFO")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per watch event and per machine callback is noise; our transitions are logged instead.
    for chatty in ("kopf.objects", "transitions"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    options = Options(
        kubeconfig=args.kubeconfig,
        namespaces=tuple(args.namespace),
        controller_id=args.controller_id,
        workers=args.workers,
        webhook=args.webhook,
        webhook_port=args.webhook_port,
    )
    try:
        asyncio.run(run(options))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
