"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok (fake nodes whose pods become Running and Ready, and a Job's pods Succeeded,
or Failed or left Running as their annotation says: `sandbox/kwok/job-pods.yaml`), metrics-server
and Prometheus.

Resource metrics are real as far as the kubelet: kwok serves each node's simulated kubelet
`/metrics/resource` (its own `Metric` configuration, pods' usage from their annotations: see
`tests/usage.py`), metrics-server scrapes it every 10 s and serves `metrics.k8s.io` through the
apiserver's aggregation layer (the `v1beta1.metrics.k8s.io` APIService), and the
controller-manager's HPA controller reads it there, syncing every 5 s and stabilising a scale-down
over 10 s instead of 5 minutes, so that a test sees an HPA act within seconds.

Every component listens on 127.0.0.1 on a port picked at start; TLS material is generated per
sandbox; the admin kubeconfig embeds its certificates so it can be copied anywhere. The state
(ports and pids) is kept in `<root>/state.json` so that `python -m sandbox down` can stop a
detached sandbox started by another command.

The apiserver and etcd can be killed and started again in place (same flags, ports, certificates
and data), and etcd's history compacted (`sandbox.etcd`), so tests can make the outages and the
`410 Gone` a controller must recover from.

The apiserver audits every write (who, what, when received, when answered) to
`<root>/audit/audit.log`, and nothing else, so a test can tell which client wrote what and when:
give each client its own identity with `user_kubeconfig`. Reads are audited too for the service
accounts of one namespace, `AUDITED_READS_NAMESPACE`, so that a test can measure everything a
client under a ServiceAccount of its own did (what the Helm chart grants against what is used).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import yaml

from sandbox import build, versions
from sandbox.etcd import Etcd
from sandbox.pki import FRONT_PROXY_CLIENT, Authority, ClusterPki, KeyPair
from sandbox.processes import ComponentFailed, Managed, spawn, wait_until
from sandbox.prometheus import Prometheus
from sandbox.versions import Release

# In the order `up` starts them (and `down` stops them in reverse): one started again goes back to
# its place, so that `down` still stops the apiserver before etcd.
CONTROL_PLANE = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "metrics-server",
)
SERVICE_CIDR = "10.0.0.0/16"  # room for a benchmark's 1,000 Services
POD_CIDR = "10.244.0.0/16"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
# metrics-server (0.7+) scrapes a node at this path instead of the kubelet's `/metrics/resource`.
RESOURCE_METRICS_PATH_ANNOTATION = "metrics.k8s.io/resource-metrics-path"
METRICS_API_SERVICE = "v1beta1.metrics.k8s.io"
# The shortest metrics-server accepts; each scrape must end within 90% of it.
METRIC_RESOLUTION = "10s"
KUBELET_REQUEST_TIMEOUT = "5s"
DEFAULT_NODES = 3
START_TIMEOUT = 120.0
# Writes at Metadata level (no bodies, about 1 KB each), reads only those of the service accounts
# of AUDITED_READS_NAMESPACE (no one else's: the controller-manager's would fill the log), and
# only once answered (the received stage would repeat each entry): the log stays small.
AUDITED_READS_NAMESPACE = "delivery-audited"
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {
            "level": "Metadata",
            "userGroups": [f"system:serviceaccounts:{AUDITED_READS_NAMESPACE}"],
            "verbs": ["get", "list", "watch"],
        },
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        {"level": "None"},
    ],
}
AUDIT_LOG_MAX_MB = 100  # rotated once past this, one old file kept: at most twice this on disk


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def default_root() -> Path:
    return Path.cwd() / ".sandbox"


@dataclass
class Ports:
    etcd: int = field(default_factory=free_port)
    etcd_peer: int = field(default_factory=free_port)
    apiserver: int = field(default_factory=free_port)
    controller_manager: int = field(default_factory=free_port)
    scheduler: int = field(default_factory=free_port)
    kwok: int = field(default_factory=free_port)
    metrics_server: int = field(default_factory=free_port)
    prometheus: int = field(default_factory=free_port)


@dataclass
class Sandbox:
    """One local control plane under `root`. Use as a context manager, or `up()` and `down()`."""

    root: Path = field(default_factory=default_root)
    detached: bool = False
    nodes: int = DEFAULT_NODES
    ports: Ports = field(default_factory=Ports)
    processes: list[Managed] = field(default_factory=list)
    prometheus: Prometheus | None = None
    # The Kubernetes release it runs: DELIVERY_KUBERNETES's, or the default (sandbox.versions).
    release: Release = field(default_factory=versions.selected)

    # -- paths -------------------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit" / "audit.log"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    @property
    def kubectl(self) -> Path:
        return build.binary(self.release.kubectl_from, "kubectl")

    def env(self) -> dict[str, str]:
        """What a shell or a subprocess needs to use this sandbox."""
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "DELIVERY_PROMETHEUS_URL": self.prometheus_url,
            "DELIVERY_SANDBOX_ROOT": str(self.root),
            "DELIVERY_KUBECTL": str(self.kubectl),
        }

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> Sandbox:
        self.up()
        return self

    def __exit__(self, *_: object) -> None:
        self.down()

    def up(self) -> None:
        build.build_all(self.release)
        if self.root.exists():
            Sandbox.load(self.root).down()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        pki = ClusterPki.create(self.root / "pki")
        self._write_kubeconfig(self.kubeconfig, "admin", pki.admin)
        self.audit_log.parent.mkdir()
        (self.audit_log.parent / "policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
        try:
            self._start_etcd()
            self._start_apiserver(pki)
            self._start_controller_manager(pki)
            self._start_scheduler()
            self._start_kwok(pki)
            self._create_nodes()
            self._register_metrics_api(pki)
            self._start_metrics_server(pki)
            self._wait_for_default_service_account()
            self.kubectl_run("apply", "--server-side", "-f", str(build.gateway_api_crds()))
            self.prometheus = Prometheus(self.root / "prometheus", self.ports.prometheus, self.detached)
            self.prometheus.start()
            self.processes.append(self.prometheus.process)  # type: ignore[arg-type]
        except BaseException:
            self.down()
            raise
        finally:
            self._save_state()

    def down(self) -> None:
        """Stop every component, newest first; safe to call twice."""
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self.prometheus is not None:
            self.prometheus.process = None
        self._save_state()

    def spawn_extra(self, name: str, argv: list[str]) -> Managed:
        """Run another process as part of this sandbox (the controller, say): `down` stops it too."""
        process = self._spawn(name, argv)
        self._save_state()
        return process

    def alive(self) -> list[str]:
        return [process.name for process in self.processes if process.alive()]

    # -- state -------------------------------------------------------------------------------------
    def _save_state(self) -> None:
        if not self.root.exists():
            return
        state = {
            "ports": vars(self.ports),
            "nodes": self.nodes,
            "kubernetes": self.release.kubernetes.version,
            "etcd": self.release.etcd.version,
            "processes": [{"name": p.name, "pid": p.pid, "log": str(p.log)} for p in self.processes],
        }
        (self.root / "state.json").write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, root: Path) -> Sandbox:
        """The sandbox described by `root/state.json` (running or not)."""
        path = root / "state.json"
        if not path.exists():
            return cls(root=root, processes=[])
        state = json.loads(path.read_text())
        processes = [Managed(p["name"], p["pid"], Path(p["log"])) for p in state["processes"]]
        sandbox = cls(
            root=root,
            detached=True,
            nodes=state["nodes"],
            ports=Ports(**state["ports"]),
            release=_saved_release(state),
        )
        sandbox.processes = processes
        sandbox.prometheus = Prometheus(root / "prometheus", sandbox.ports.prometheus, detached=True)
        sandbox.prometheus.process = next((p for p in processes if p.name == "prometheus"), None)
        return sandbox

    # -- components --------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> Managed:
        process = spawn(name, argv, self.root / "logs" / f"{name}.log", detached=self.detached)
        self.processes.insert(self._place(name), process)
        return process

    def _place(self, name: str) -> int:
        """Where a process named `name` goes in `processes`: after the control-plane components
        started before it, or last (Prometheus, the extras)."""
        if name not in CONTROL_PLANE:
            return len(self.processes)
        earlier = CONTROL_PLANE[: CONTROL_PLANE.index(name)]
        return sum(1 for process in self.processes if process.name in earlier)

    def _start_etcd(self, name: str = "etcd", port: int | None = None) -> Managed:
        """etcd on its data directory, answering on `port` (the sandbox's etcd port by default)."""
        client = f"http://127.0.0.1:{port or self.ports.etcd}"
        peer = f"http://127.0.0.1:{self.ports.etcd_peer}"
        process = self._spawn(
            name,
            [
                str(build.binary(self.release.etcd, "etcd")),
                "--name=sandbox",
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=sandbox={peer}",
                "--unsafe-no-fsync",  # a throwaway cluster: durability is not worth the latency
                "--log-level=warn",
            ],
        )
        wait_until(
            process,
            lambda: httpx.get(f"{client}/health", timeout=1).json()["health"] == "true",
            timeout=START_TIMEOUT,
        )
        return process

    def _start_apiserver(self, pki: ClusterPki) -> Managed:
        process = self._spawn(
            "kube-apiserver",
            [
                str(build.binary(self.release.kubernetes, "kube-apiserver")),
                f"--etcd-servers=http://127.0.0.1:{self.ports.etcd}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.ports.apiserver}",
                f"--tls-cert-file={pki.apiserver.cert}",
                f"--tls-private-key-file={pki.apiserver.key}",
                f"--client-ca-file={pki.ca.cert}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.service_account_pub}",
                f"--service-account-signing-key-file={pki.service_account_key}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                # The `kubernetes` Service cannot point at a loopback address; nothing here needs it.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                f"--audit-policy-file={self.audit_log.parent / 'policy.yaml'}",
                f"--audit-log-path={self.audit_log}",
                # Each entry written before the answer is sent, so a client that got its answer
                # finds its write in the log (batching would delay entries by up to a second).
                "--audit-log-mode=blocking",
                f"--audit-log-maxsize={AUDIT_LOG_MAX_MB}",
                "--audit-log-maxbackup=1",
                # The aggregation layer, for metrics-server's APIService: the apiserver forwards a
                # request there under the front proxy's client certificate, the caller's name and
                # groups in these headers. No --enable-aggregator-routing: it resolves a Service to
                # its Endpoints, which may not hold a loopback address; metrics-server's Service is
                # an ExternalName `localhost` instead, which the default resolution dials as named.
                f"--requestheader-client-ca-file={pki.front_proxy_ca.cert}",
                f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki.front_proxy_client.cert}",
                f"--proxy-client-key-file={pki.front_proxy_client.key}",
            ],
        )
        wait_until(process, self._ready, timeout=START_TIMEOUT)
        return process

    def server_version(self) -> str:
        """The apiserver's own `gitVersion` (`v1.37.2`): which release answers, after an upgrade too."""
        return str(self._get("/version").json()["gitVersion"])

    def _ready(self) -> bool:
        return self._get("/readyz").status_code == 200

    def _start_controller_manager(self, pki: ClusterPki) -> None:
        process = self._spawn(
            "kube-controller-manager",
            [
                str(build.binary(self.release.kubernetes, "kube-controller-manager")),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports.controller_manager}",
                f"--service-account-private-key-file={pki.service_account_key}",
                f"--root-ca-file={pki.ca.cert}",
                "--use-service-account-credentials=true",
                f"--cluster-cidr={POD_CIDR}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--leader-elect=false",
                # kwok's node heartbeats are jittered past the default 40s grace: without slack,
                # nodes flap NotReady and take their pods' readiness with them.
                "--node-monitor-grace-period=2m",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                # An HPA acts within seconds of a metric change, and scales down 10 s after the
                # last higher recommendation instead of 5 minutes (an HPA's own
                # `behavior.scaleDown.stabilizationWindowSeconds` still overrides this).
                "--horizontal-pod-autoscaler-sync-period=5s",
                "--horizontal-pod-autoscaler-downscale-stabilization=10s",
            ],
        )
        _wait_healthy(process, self.ports.controller_manager)

    def _start_scheduler(self) -> None:
        process = self._spawn(
            "kube-scheduler",
            [
                str(build.binary(self.release.kubernetes, "kube-scheduler")),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports.scheduler}",
                "--leader-elect=false",
            ],
        )
        _wait_healthy(process, self.ports.scheduler)

    def _start_kwok(self, pki: ClusterPki) -> None:
        """kwok manages the annotated nodes and serves, for each, what metrics-server asks a
        kubelet: HTTPS under a certificate of the sandbox's CA for 127.0.0.1 (the nodes'
        InternalIP), on the port the nodes report as their kubelet's (`daemonEndpoints`)."""
        self._spawn(
            "kwok",
            [
                str(build.binary(self.release.kwok, "kwok")),
                f"--kubeconfig={self.kubeconfig}",
                *(f"--config={path}" for path in build.kwok_metrics_configs()),
                *(f"--config={path}" for path in build.kwok_pod_stages()),
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
                f"--cidr={POD_CIDR}",
                "--node-ip=127.0.0.1",
                f"--node-port={self.ports.kwok}",
                "--node-lease-duration-seconds=40",  # heartbeats by Lease, renewed every few seconds
                f"--server-address=127.0.0.1:{self.ports.kwok}",
                f"--tls-cert-file={pki.kwok.cert}",
                f"--tls-private-key-file={pki.kwok.key}",
            ],
        )

    def _register_metrics_api(self, pki: ClusterPki) -> None:
        """metrics-server's APIService, and the Service it names: an ExternalName `localhost`,
        which the aggregator dials as `https://localhost:<the APIService's port>`, checking the
        certificate for `metrics-server.kube-system.svc` against the sandbox's CA. Registered
        before metrics-server starts, the APIService becomes available within a few seconds of
        it: the aggregator retries a failed check after 5 ms, doubling."""
        self._request(
            "POST",
            "/api/v1/namespaces/kube-system/services",
            json={
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "metrics-server", "namespace": "kube-system"},
                "spec": {"type": "ExternalName", "externalName": "localhost"},
            },
        )
        self._request(
            "POST",
            "/apis/apiregistration.k8s.io/v1/apiservices",
            json={
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": METRICS_API_SERVICE},
                "spec": {
                    "group": "metrics.k8s.io",
                    "version": "v1beta1",
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                    "service": {
                        "name": "metrics-server",
                        "namespace": "kube-system",
                        "port": self.ports.metrics_server,
                    },
                    "caBundle": base64.b64encode(pki.ca.cert.read_bytes()).decode(),
                },
            },
        )

    def _start_metrics_server(self, pki: ClusterPki) -> None:
        """metrics-server on loopback, returning once `metrics.k8s.io` is available through the
        apiserver (until then every client's discovery reports the group as failing, and the
        namespace controller holds back deletions). It checks kwok's certificate against the
        sandbox's CA."""
        kubeconfig = self.user_kubeconfig("metrics-server")
        process = self._spawn(
            "metrics-server",
            [
                str(build.binary(self.release.metrics_server, "metrics-server")),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports.metrics_server}",
                f"--tls-cert-file={pki.metrics_server.cert}",
                f"--tls-private-key-file={pki.metrics_server.key}",
                f"--kubelet-certificate-authority={pki.ca.cert}",
                "--kubelet-preferred-address-types=InternalIP",
                "--kubelet-use-node-status-port",
                f"--metric-resolution={METRIC_RESOLUTION}",
                f"--kubelet-request-timeout={KUBELET_REQUEST_TIMEOUT}",
                "--profiling=false",
            ],
        )
        _wait_healthy(process, self.ports.metrics_server)
        wait_until(process, self._metrics_api_available, timeout=START_TIMEOUT, what="serving metrics.k8s.io")

    def _metrics_api_available(self) -> bool:
        service = self._get(f"/apis/apiregistration.k8s.io/v1/apiservices/{METRICS_API_SERVICE}").json()
        return any(
            condition["type"] == "Available" and condition["status"] == "True"
            for condition in service.get("status", {}).get("conditions", [])
        )

    def _create_nodes(self) -> None:
        for index in range(self.nodes):
            self._request("POST", "/api/v1/nodes", json=_kwok_node(f"kwok-node-{index}"))
        kwok = next(p for p in self.processes if p.name == "kwok")
        wait_until(
            kwok,
            lambda: self._ready_nodes() == self.nodes,
            timeout=START_TIMEOUT,
            what="making its nodes Ready",
        )

    def _ready_nodes(self) -> int:
        nodes = self._get("/api/v1/nodes").json()["items"]
        return sum(
            1
            for node in nodes
            for condition in node.get("status", {}).get("conditions", [])
            if condition["type"] == "Ready" and condition["status"] == "True"
        )

    def _wait_for_default_service_account(self) -> None:
        """Pods are refused until the service-account controller has made `default`."""
        controller_manager = next(p for p in self.processes if p.name == "kube-controller-manager")
        wait_until(
            controller_manager,
            lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200,
            timeout=START_TIMEOUT,
            what="creating the default service account",
        )

    # -- control-plane outages --------------------------------------------------------------------
    @property
    def etcd(self) -> Etcd:
        return Etcd(f"http://127.0.0.1:{self.ports.etcd}")

    def kill_apiserver(self) -> None:
        """SIGKILL the apiserver, as a crash would: every client's connection drops at once and
        nothing answers on its port until `start_apiserver`. Its watch cache goes with it."""
        self._kill("kube-apiserver")

    def start_apiserver(self) -> datetime.datetime:
        """Start the apiserver again after `kill_apiserver` (same flags, port, certificates) and
        return when it first answered /readyz (UTC, like the audit log's times, to a tenth of a
        second): a client's recovery counts from there. The control plane's own clients are
        started afresh before this returns (see `_restart_clients`)."""
        pki = ClusterPki.load(self.root / "pki")
        self._start_again(lambda: self._start_apiserver(pki))
        answered = _now()
        self._restart_clients(pki)
        return answered

    def upgrade(self, to: Release) -> None:
        """Upgrade the control plane in place to `to`, the way a cluster's is: the apiserver is
        stopped (SIGTERM, its requests drained) and the newer one started on the same etcd and its
        data, flags, port and certificates; then the controller manager and the scheduler are
        replaced by the newer ones (and metrics-server started afresh, as after any apiserver
        restart). etcd keeps running as it is: its upgrade is a step of its own. kwok, standing
        for the nodes' kubelets, keeps running too, as kubelets do while the control plane moves."""
        if to.minor == self.release.minor:
            raise ValueError(f"the sandbox already runs Kubernetes {to.minor}")
        build.build_all(to)
        apiserver = self._process("kube-apiserver")
        apiserver.stop()
        self.processes.remove(apiserver)
        self.release = replace(to, etcd=self.release.etcd)
        self._save_state()
        pki = ClusterPki.load(self.root / "pki")
        self._start_again(lambda: self._start_apiserver(pki))
        self._restart_clients(pki)

    def kill_etcd(self) -> None:
        """SIGKILL etcd: the apiserver stays up, its watches of etcd broken, but can neither write
        nor read past its watch cache until `start_etcd`; its /readyz fails meanwhile."""
        self._kill("etcd")

    def start_etcd(self) -> datetime.datetime:
        """Start etcd again on its data after `kill_etcd` and return when the apiserver answered
        /readyz again (clients wait for the apiserver: it is slower to notice than etcd to start)."""
        self._start_again(self._start_etcd)
        wait_until(self._process("kube-apiserver"), self._ready, timeout=START_TIMEOUT, what="ready again")
        return _now()

    @contextlib.contextmanager
    def lost_events(self) -> Iterator[Etcd]:
        """Changes whose watch events nobody will ever get, as after a `410 Gone`: etcd is killed and
        started aside, on its data but on a port the apiserver does not know; the block changes keys
        there; then its history is compacted and etcd started again in its place. The apiserver's
        watches of etcd resume from a compacted revision, so it rebuilds its watch caches by
        listing and ends every watch of its clients; theirs resume from versions that are gone and
        are refused with 410 (or 429 while that cache is still being rebuilt): only a relist shows
        them what changed. Returns when the apiserver answers /readyz again."""
        self.kill_etcd()
        try:
            port = free_port()
            aside = self._start_etcd("etcd-aside", port)
            self._save_state()
            try:
                etcd = Etcd(f"http://127.0.0.1:{port}")
                yield etcd
                etcd.compact()
            finally:
                aside.stop()
                self.processes.remove(aside)
        finally:
            self.start_etcd()

    def _process(self, name: str) -> Managed:
        found = next((process for process in self.processes if process.name == name), None)
        if found is None:
            raise RuntimeError(f"{name} is not running")
        return found

    def _kill(self, name: str) -> None:
        process = self._process(name)
        process.kill()
        self.processes.remove(process)  # `down` must never signal its pid: another may have it now
        self._save_state()

    def _restart_clients(self, pki: ClusterPki) -> None:
        """The controller manager, the scheduler and metrics-server, killed and started again once
        the apiserver is back. Left running, their client-go watches back off after the outage's
        failures (up to 30 s, jittered up to twice that, reset only after 2 minutes without one):
        after a 10 s outage the controller manager made a new namespace's service account 23 s
        late, and after a 410 that followed, 50 s late: later tests of the session would wait that
        out (metrics-server serves a pod's metrics only once its own watch has seen the pod). A
        real cluster restarts them anyway: with leader election they exit once they cannot renew
        their lease, and the kubelet starts them again; metrics-server, started again, serves a
        pod's usage after its next two scrapes (20 s). kwok is left alone: it caught up within
        a second every time, while a kwok started again waits 30 s to take back its nodes'
        Leases (they exist) and makes no pod Ready meanwhile."""
        starts: list[tuple[str, Callable[[], object]]] = [
            ("kube-controller-manager", lambda: self._start_controller_manager(pki)),
            ("kube-scheduler", self._start_scheduler),
            ("metrics-server", lambda: self._start_metrics_server(pki)),
        ]
        for name, start in starts:
            self._kill(name)
            self._start_again(start)

    def _start_again(self, start: Callable[[], object]) -> None:
        try:
            start()
        finally:
            self._save_state()  # the new pid, even if it did not become ready (down stops it)

    # -- Prometheus outages ---------------------------------------------------------------------------
    def stop_prometheus(self) -> None:
        """Stop Prometheus as an outage would (its data stays): analysis must pause, not decide."""
        if self.prometheus is None or self.prometheus.process is None:
            raise RuntimeError("Prometheus is not running")
        self.processes.remove(self.prometheus.process)
        self.prometheus.stop()
        self._save_state()

    def start_prometheus(self) -> None:
        """Start Prometheus again on the same port and data, after `stop_prometheus`."""
        if self.prometheus is None or self.prometheus.process is not None:
            raise RuntimeError("Prometheus is not stopped")
        self.prometheus.start()
        self.processes.append(self.prometheus.process)  # type: ignore[arg-type]
        self._save_state()

    # -- talking to the apiserver ------------------------------------------------------------------
    def kubectl_run(self, *args: str) -> str:
        """Run kubectl against this sandbox; fail with its output when it fails."""
        result = subprocess.run(
            [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ComponentFailed(f"kubectl {' '.join(args)} failed: {result.stderr or result.stdout}")
        return result.stdout

    def _client(self) -> httpx.Client:
        context = ssl.create_default_context(cafile=self.root / "pki" / "ca.crt")
        context.load_cert_chain(self.root / "pki" / "admin.crt", self.root / "pki" / "admin.key")
        return httpx.Client(base_url=self.server, verify=context, timeout=5)

    def _get(self, path: str) -> httpx.Response:
        with self._client() as client:
            return client.get(path)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._client() as client:
            response = client.request(method, path, **kwargs)
        if response.is_error:
            raise ComponentFailed(f"{method} {path} failed: {response.status_code} {response.text}")
        return response

    def _write_kubeconfig(self, path: Path, user: str, pair: KeyPair) -> None:
        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        ca = Authority.load(self.root / "pki").pair.cert
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "sandbox",
                    "cluster": {"server": self.server, "certificate-authority-data": b64(ca)},
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {"client-certificate-data": b64(pair.cert), "client-key-data": b64(pair.key)},
                }
            ],
            "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": user}}],
            "current-context": "sandbox",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)

    # -- identities and the audit log --------------------------------------------------------------
    def user_kubeconfig(self, user: str) -> Path:
        """A kubeconfig for a cluster admin (group system:masters) named `user`: the audit log
        tells its requests from every other client's, which the admin's shared identity cannot."""
        directory = self.root / "users"
        directory.mkdir(exist_ok=True)
        pair = Authority.load(self.root / "pki").issue(directory, user, user, organization="system:masters")
        path = directory / f"{user}.kubeconfig"
        self._write_kubeconfig(path, user, pair)
        return path

    def audit_events(self) -> list[dict[str, Any]]:
        """The writes audited so far (and the reads of AUDITED_READS_NAMESPACE's service accounts),
        parsed, in the order they were answered (the rotated file first): `user.username`, `verb`,
        `objectRef`, `requestReceivedTimestamp`, `stageTimestamp`, `responseStatus.code`, ..."""
        events: list[dict[str, Any]] = []
        # lumberjack names a rotated file audit-<time>.log, which sorts before audit.log
        for path in sorted(self.audit_log.parent.glob("audit*.log")):
            text = path.read_text()
            complete = text[: text.rfind("\n") + 1]  # a line still being written waits for next time
            events += [json.loads(line) for line in complete.splitlines()]
        return events


def _saved_release(state: dict[str, Any]) -> Release:
    """The release a saved sandbox runs, with the etcd it runs (an upgraded one keeps its older
    etcd); a state saved before the matrix existed names neither, and runs the selected release."""
    if "kubernetes" not in state:
        return versions.selected()
    return replace(versions.release(state["kubernetes"]), etcd=versions.etcd(state["etcd"]))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _wait_healthy(process: Managed, port: int) -> None:
    """A control-plane component answering `/healthz` on `port`, under its own self-signed certificate."""
    url = f"https://127.0.0.1:{port}/healthz"
    wait_until(
        process,
        lambda: httpx.get(url, verify=False, timeout=1).status_code == 200,  # noqa: S501
        timeout=START_TIMEOUT,
    )


def _kwok_node(name: str) -> dict[str, Any]:
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "250"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                KWOK_ANNOTATION: "fake",
                # the path of kwok's `Metric` for this node (see build.kwok_metrics_configs)
                RESOURCE_METRICS_PATH_ANNOTATION: f"/metrics/nodes/{name}/metrics/resource",
            },
            "labels": {"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
        },
        "spec": {},
        "status": {"allocatable": capacity, "capacity": capacity},
    }
