"""`delivery`: run the controller."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from delivery.analysis.egress import Egress
from delivery.cli.lint import lint_files
from delivery.component.templating import TEMPLATES_CONFIGMAP, TEMPLATES_NAMESPACE
from delivery.operator import Options, run
from delivery.ops import logs
from delivery.ops.leader import LeaseConfig, default_identity, lease_name
from delivery.ops.notify import DEFAULT_REASONS, NotifyConfig


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="delivery", description="Progressive delivery for Kubernetes.")
    commands = root.add_subparsers(dest="command", required=True)
    checking = commands.add_parser(
        "check",
        help="check Rollouts, Components and analysis templates in YAML files before applying them "
        "(exit 1 on a problem; also `kubectl delivery lint`)",
    )
    checking.add_argument("files", nargs="+", type=Path)
    controller = commands.add_parser("run", help="run the controller")
    controller.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then in-cluster)")
    controller.add_argument("--namespace", action="append", default=[], help="watch only this namespace")
    controller.add_argument("--controller-id", help="handle only objects labelled with this controller id")
    controller.add_argument(
        "--workers",
        type=int,
        default=32,
        help="reconciles running at once (default 32: most of a reconcile is waiting on the apiserver)",
    )
    controller.add_argument(
        "--webhook",
        default="local",
        help="conversion webhook: 'local' (127.0.0.1, for a control plane on this machine), 'off', "
        "or a Service NAMESPACE/NAME",
    )
    controller.add_argument(
        "--webhook-port", type=int, default=0, help="webhook port (default: any free one)"
    )
    controller.add_argument(
        "--webhook-cert-dir",
        type=Path,
        help="serve with ca.crt, tls.crt, tls.key from here (a Secret every replica mounts; "
        "default: a CA and certificate made at start, for a single replica)",
    )
    controller.add_argument(
        "--validating-webhook",
        metavar="NAME",
        help="point this ValidatingWebhookConfiguration (made by the chart) at the webhook's /validate, "
        "which refuses analysis templates that cannot work (default: none is pointed; /validate is "
        "served anyway)",
    )
    controller.add_argument("--log-level", default="INFO")
    controller.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="json: one object per line"
    )
    election = controller.add_argument_group("leader election (high availability)")
    election.add_argument(
        "--leader-elect",
        action="store_true",
        help="run as one of several replicas; only the Lease holder writes",
    )
    election.add_argument("--lease-duration", type=float, default=15.0, help="seconds a standby waits")
    election.add_argument(
        "--renew-deadline", type=float, default=10.0, help="seconds the leader tries to renew before stopping"
    )
    election.add_argument("--retry-period", type=float, default=2.0, help="seconds between Lease attempts")
    election.add_argument(
        "--lease-name", help="Lease name (default: delivery-controller, plus -ID with --controller-id)"
    )
    election.add_argument(
        "--lease-namespace",
        default=os.environ.get("POD_NAMESPACE", "default"),
        help="Lease namespace (default: $POD_NAMESPACE, then 'default')",
    )
    election.add_argument(
        "--identity",
        help="this replica's name, in the Lease and in its Events' reportingInstance (default: $POD_NAME, "
        "else host_pid)",
    )
    serving = controller.add_argument_group("metrics and health")
    serving.add_argument(
        "--metrics-port", type=int, default=0, help="serve /metrics, /healthz, /readyz here (default 0: off)"
    )
    serving.add_argument("--metrics-address", default="0.0.0.0", help="address to serve metrics on")  # noqa: S104
    dashboard = controller.add_argument_group("dashboard (read-only: the controller's rights act for nobody)")
    dashboard.add_argument(
        "--dashboard-port", type=int, default=0, help="serve the read-only dashboard here (default 0: off)"
    )
    dashboard.add_argument("--dashboard-address", default="0.0.0.0", help="address to serve it on")  # noqa: S104
    notifying = controller.add_argument_group("notifications")
    notifying.add_argument(
        "--notify-webhook",
        action="append",
        default=_env_list("DELIVERY_NOTIFY_WEBHOOKS"),
        help="POST a JSON message here on chosen transitions (repeatable; $DELIVERY_NOTIFY_WEBHOOKS)",
    )
    notifying.add_argument(
        "--notify-slack",
        action="append",
        default=_env_list("DELIVERY_NOTIFY_SLACK"),
        help="POST a Slack-compatible {'text': ...} here (repeatable; $DELIVERY_NOTIFY_SLACK)",
    )
    notifying.add_argument(
        "--notify-reasons",
        default=",".join(DEFAULT_REASONS),
        help="comma-separated transition reasons to notify, or '*' for all",
    )
    notifying.add_argument("--notify-queue", type=int, default=256, help="messages kept when hooks are slow")
    egress = controller.add_argument_group(
        "analysis egress",
        "where web, prometheus and judge metrics may connect; a RULE is an address, a CIDR or a DNS "
        "name (*.example.com for its subdomains), with an optional :PORT ([v6]:PORT). Refused always: "
        "--analysis-deny; unless an allow rule at least as narrow lifts them: link-local, loopback, "
        "0.0.0.0, the kubelet's port 10250, this controller's apiserver",
    )
    egress.add_argument(
        "--analysis-allow",
        action="append",
        default=[],
        metavar="RULE",
        help="analysis may reach only what these rules match (repeatable; default: anything not refused)",
    )
    egress.add_argument(
        "--analysis-deny",
        action="append",
        default=[],
        metavar="RULE",
        help="analysis may never reach what this rule matches (repeatable)",
    )
    tracking = controller.add_argument_group(
        "configuration releases",
        "ConfigMaps and Secrets labelled delivery.luojilab.com/track=true are part of the revision of "
        "the Rollouts that use them; watching them needs list and watch on them, and create and patch "
        "for the copies (the chart's configTracking)",
    )
    tracking.add_argument("--track-configmaps", action="store_true", help="release labelled ConfigMaps")
    tracking.add_argument("--track-secrets", action="store_true", help="release labelled Secrets")
    components = controller.add_argument_group("components")
    components.add_argument(
        "--lb-endpoint",
        default=os.environ.get("DELIVERY_LB_ENDPOINT"),
        help="URL of the luoji-slb load balancer service, for svc.type luoji-slb ($DELIVERY_LB_ENDPOINT)",
    )
    components.add_argument(
        "--templates",
        type=_namespaced_name,
        default=(TEMPLATES_NAMESPACE, TEMPLATES_CONFIGMAP),
        metavar="NAMESPACE/NAME",
        help="the ConfigMap whose files replace the shipped Component templates, read there only "
        f"(default {TEMPLATES_NAMESPACE}/{TEMPLATES_CONFIGMAP})",
    )
    components.add_argument(
        "--rerender-limit",
        type=int,
        default=5,
        help="Components re-rendered at once after a ClusterProfile or template change (default 5)",
    )
    components.add_argument(
        "--rerender-deadline",
        type=float,
        default=600,
        help="seconds a re-rendered Component may take to be ready before the batch halts (default 600)",
    )
    return root


def _namespaced_name(text: str) -> tuple[str, str]:
    namespace, _, name = text.partition("/")
    if not namespace or not name or "/" in name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAMESPACE/NAME")
    return namespace, name


def _env_list(name: str) -> list[str]:
    """URLs from the environment (so a chart can take them from a Secret), space or comma separated."""
    return os.environ.get(name, "").replace(",", " ").split()


def _lease(args: argparse.Namespace, identity: str) -> LeaseConfig | None:
    if not args.leader_elect:
        return None
    try:
        return LeaseConfig(
            name=args.lease_name or lease_name(args.controller_id),
            namespace=args.lease_namespace,
            identity=identity,
            lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline,
            retry_period=args.retry_period,
        )
    except ValueError as error:
        parser().error(str(error))


def _egress(args: argparse.Namespace) -> Egress:
    try:
        return Egress.from_flags(args.analysis_allow, args.analysis_deny)
    except ValueError as error:
        parser().error(str(error))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "check":
        return lint_files(args.files)
    logs.configure(args.log_level, args.log_format)
    # One line per watch event and per machine callback is noise; our transitions are logged instead.
    for chatty in ("transitions",):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    if args.validating_webhook and args.webhook == "off":
        parser().error("--validating-webhook needs the webhook served: not with --webhook=off")
    identity = args.identity or default_identity()
    options = Options(
        kubeconfig=args.kubeconfig,
        namespaces=tuple(args.namespace),
        controller_id=args.controller_id,
        identity=identity,
        workers=args.workers,
        webhook=args.webhook,
        webhook_port=args.webhook_port,
        webhook_certificate=args.webhook_cert_dir,
        validating_webhook=args.validating_webhook,
        leader=_lease(args, identity),
        metrics_address=args.metrics_address,
        metrics_port=args.metrics_port,
        dashboard_address=args.dashboard_address,
        dashboard_port=args.dashboard_port,
        notify=NotifyConfig.from_flags(
            args.notify_webhook, args.notify_slack, args.notify_reasons, args.notify_queue
        ),
        lb_endpoint=args.lb_endpoint,
        egress=_egress(args),
        rerender_limit=args.rerender_limit,
        rerender_deadline=args.rerender_deadline,
        templates=args.templates,
        tracking=tuple(
            kind for kind, on in (("ConfigMap", args.track_configmaps), ("Secret", args.track_secrets)) if on
        ),
    )
    try:
        asyncio.run(run(options))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
