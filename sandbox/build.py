"""Build the control-plane binaries (with metrics-server, and helm for the chart's tests) from Go
modules and cache them by version.

Nothing is downloaded but Go modules: Kubernetes and etcd are built from small modules of our own
under `sandbox/gomod/` (their own modules carry replace directives, so `go install` refuses them),
kwok, metrics-server and helm with `go install`. A build goes to a temporary directory and is
renamed into the cache only when complete, so an interrupted build never leaves a half-filled
cache behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from sandbox.versions import (
    DEFAULT,
    GATEWAY_API,
    GATEWAY_API_VERSIONS,
    GOMOD_DIR,
    HELM,
    KWOK,
    METRICS_SERVER,
    Component,
    Release,
)

PROGRESS_EVERY = 100  # packages compiled between two progress lines


def cache_root() -> Path:
    return Path(os.environ.get("DELIVERY_CACHE", Path.home() / ".cache" / "delivery"))


def bin_dir(component: Component) -> Path:
    return cache_root() / component.key


def binary(component: Component, command: str) -> Path:
    return bin_dir(component) / command


def is_cached(component: Component) -> bool:
    return all(binary(component, command).is_file() for command in component.commands)


def _kubernetes_ldflags(kubernetes: Component) -> str:
    """Stamp the version the way Kubernetes' own build does, so `kubectl version` and skew checks agree."""
    major, minor = kubernetes.minor.split(".")
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={kubernetes.version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
        ]
    return " ".join(flags)


def _helm_ldflags() -> str:
    """Stamp helm's version, and the Kubernetes version `helm template` and `helm lint` assume offline.

    Helm's own Makefile derives the latter from its client-go; ours is the sandbox's default, so a
    chart's kubeVersion constraint is checked against the cluster the whole suite installs into.
    """
    major, minor = DEFAULT.kubernetes.minor.split(".")
    flags = ["-s", "-w", f"-X helm.sh/helm/v3/internal/version.version={HELM.version}"]
    for package in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
        flags += [f"-X {package}.k8sVersionMajor={major}", f"-X {package}.k8sVersionMinor={minor}"]
    return " ".join(flags)


def _go_commands(component: Component, out: Path) -> tuple[list[list[str]], Path]:
    """The `go` invocations that build a component into `out`, and the directory to run them in."""
    if component.name == "kubernetes":
        # One `go build` for every command: the packages they share are compiled once.
        packages = [f"k8s.io/kubernetes/cmd/{command}" for command in component.commands]
        ldflags = _kubernetes_ldflags(component)
        return [["go", "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", f"{out}/", *packages]], (
            component.gomod
        )
    if component.name == "etcd":
        return [["go", "build", "-v", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"), "."]], (
            component.gomod
        )
    if component is KWOK:
        install = ["go", "install", "-v", "-trimpath", "-ldflags", "-s -w"]
        return [[*install, f"sigs.k8s.io/kwok/cmd/kwok@{component.version}"]], GOMOD_DIR
    if component is METRICS_SERVER:
        # No replace directives either; `version` reports the tag, as its own Makefile stamps it.
        flags = f"-s -w -X k8s.io/client-go/pkg/version.gitVersion={component.version}"
        install = ["go", "install", "-v", "-trimpath", "-ldflags", flags]
        return [[*install, f"sigs.k8s.io/metrics-server/cmd/metrics-server@{component.version}"]], GOMOD_DIR
    if component is HELM:
        # helm's module has no replace directives, so `go install` builds it with its own go.sum.
        install = ["go", "install", "-v", "-trimpath", "-ldflags", _helm_ldflags()]
        return [[*install, f"helm.sh/helm/v3/cmd/helm@{component.version}"]], GOMOD_DIR
    raise ValueError(f"no build recipe for {component.key}")


def _run_with_progress(command: list[str], cwd: Path, env: dict[str, str], label: str) -> None:
    """Run a `go build -v`, turning its one-line-per-package output into a few progress lines."""
    started = time.monotonic()
    log: list[str] = []
    with subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        for count, line in enumerate(process.stdout or (), start=1):
            log.append(line)
            if count % PROGRESS_EVERY == 0:
                elapsed = time.monotonic() - started
                print(f"  {label}: {count} packages compiled ({elapsed:.0f}s)", flush=True)
    if process.returncode != 0:
        tail = "".join(log[-40:])
        raise RuntimeError(f"building {label} failed (exit {process.returncode}):\n{tail}")


def build(component: Component) -> Path:
    """Build one component into the cache unless it is there already; return its directory."""
    target = bin_dir(component)
    if is_cached(component):
        return target
    if shutil.which("go") is None:
        raise RuntimeError("Go is needed to build the sandbox's control plane and was not found on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    # One build of a component at a time: scripts/test.sh builds the other releases in the
    # background while the suite runs, and a test that starts one of them waits here for that build
    # instead of starting its own.
    with (target.parent / f".{component.key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_cached(component):
            _build_unlocked(component, target)
    return target


def _build_unlocked(component: Component, target: Path) -> None:
    print(f"building {component.key} ({', '.join(component.commands)}): minutes the first time", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{component.key}-") as scratch:
        out = Path(scratch) / "bin"
        out.mkdir()
        env = {**os.environ, "GOBIN": str(out), "GOFLAGS": "-buildvcs=false"}
        commands, cwd = _go_commands(component, out)
        for command in commands:
            _run_with_progress(command, cwd, env, component.key)
        missing = [c for c in component.commands if not (out / c).is_file()]
        if missing:
            raise RuntimeError(f"building {component.key} produced no {', '.join(missing)}")
        shutil.rmtree(target, ignore_errors=True)
        out.rename(target)
    print(f"built {component.key} in {time.monotonic() - started:.0f}s -> {target}", flush=True)


def _module_dir(module: str) -> Path:
    """Where the Go module cache holds `module` (path@version), downloaded if it is not there."""
    result = subprocess.run(
        ["go", "mod", "download", "-json", module], capture_output=True, text=True, check=True
    )
    return Path(json.loads(result.stdout)["Dir"])


def _module_zip(module: str) -> Path:
    """The zip of `module` (path@version) in the Go module cache, downloaded and checked against
    the checksum database if it is not there. A module whose go.mod asks for a newer Go than this
    machine's is fetched and checked all the same; `go mod download` then reports that it cannot
    be built here, which does not matter to files only read from it."""
    result = subprocess.run(
        ["go", "mod", "download", "-json", module], capture_output=True, text=True, check=False
    )
    found = json.loads(result.stdout or "{}").get("Zip")
    if not found or not Path(found).is_file():
        raise RuntimeError(f"go mod download {module} failed: {result.stdout}{result.stderr}")
    return Path(found)


def gateway_api_crds(version: str = GATEWAY_API) -> Path:
    """A directory of the Gateway API standard-channel CRDs of `version` (and, since v1.4, the
    ValidatingAdmissionPolicy refusing older ones), cached by version, from the module's zip."""
    target = cache_root() / f"gateway-api-{version}"
    if target.is_dir():
        return target
    module = f"sigs.k8s.io/gateway-api@{version}"
    prefix = f"{module}/config/crd/standard/"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".gateway-api-") as scratch:
        out = Path(scratch) / "crds"
        out.mkdir()
        with zipfile.ZipFile(_module_zip(module)) as archive:
            for name in archive.namelist():
                file = name.removeprefix(prefix)
                wanted = "/" not in file and file.endswith(".yaml") and file != "kustomization.yaml"
                if name.startswith(prefix) and wanted:
                    (out / file).write_bytes(archive.read(name))
        out.rename(target)
    return target


def kwok_metrics_configs() -> list[Path]:
    """kwok's own configurations for simulated resource metrics, from its module (the one built):
    a `Metric` serving the kubelet's `/metrics/resource` at `/metrics/nodes/{nodeName}/metrics/resource`
    (containers', pods' and nodes' CPU and memory), and a `ClusterResourceUsage` that takes each
    pod's usage from its annotations `kwok.x-k8s.io/usage-cpu` and `kwok.x-k8s.io/usage-memory`
    (1m and 1Mi without them)."""
    kustomize = _module_dir(f"sigs.k8s.io/kwok@{KWOK.version}") / "kustomize" / "metrics"
    return [
        kustomize / "resource" / "metrics-resource.yaml",
        kustomize / "usage" / "usage-from-annotation.yaml",
    ]


KWOK_JOB_POD_STAGES = Path(__file__).resolve().parent / "kwok" / "job-pods.yaml"


def kwok_pod_stages() -> list[Path]:
    """The Stages kwok moves pods through: its own pod-ready and pod-delete (from the module of
    the kwok built), and ours for the pods of Jobs (`kwok/job-pods.yaml`: succeeded, failed, or
    left running, by an annotation) in place of its pod-complete. Given any pod Stage, kwok uses
    none of its defaults, so the two it keeps are named here."""
    fast = _module_dir(f"sigs.k8s.io/kwok@{KWOK.version}") / "kustomize" / "stage" / "pod" / "fast"
    return [fast / "pod-ready.yaml", fast / "pod-delete.yaml", KWOK_JOB_POD_STAGES]


def build_all(release: Release = DEFAULT) -> None:
    """Everything a sandbox of `release` runs, and helm."""
    for component in (*release.builds, HELM):
        build(component)
    for version in GATEWAY_API_VERSIONS:
        gateway_api_crds(version)
    kwok_metrics_configs()
    kwok_pod_stages()


if __name__ == "__main__":
    try:
        build_all()
    except RuntimeError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
