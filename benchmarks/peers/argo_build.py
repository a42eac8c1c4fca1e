"""Build Argo Rollouts' controller from its Go module and cache it by version, like the sandbox's binaries.

Its module carries `replace` directives (the Kubernetes staging modules pinned), so `go install` refuses
it; a small wrapper module of ours requires it and copies those directives verbatim from the version's
own go.mod, which is what the build would have used in Argo's tree. The version is the newest release the
Go module proxy serves, so the comparison is always against the current Argo, not one we pinned once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.build import _run_with_progress, cache_root

MODULE = "github.com/argoproj/argo-rollouts"
COMMAND = "rollouts-controller"
_RELEASE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


@dataclass(frozen=True)
class ArgoBuild:
    """A built controller: its version, binary, the module's CRD directory and how long the build took."""

    version: str
    binary: Path
    crds: Path
    build_seconds: float | None  # None when it came from the cache


def _go(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(["go", *args], capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"go {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result.stdout


def newest_release(versions: list[str]) -> str:
    """The highest plain vX.Y.Z among a module's versions (pre-releases are not what users run)."""
    releases = [v for v in versions if _RELEASE.match(v)]
    if not releases:
        raise RuntimeError(f"no release among {versions}")
    return max(releases, key=lambda v: tuple(int(part) for part in v[1:].split(".")))


def replace_directives(gomod: str) -> list[str]:
    """The `old => new` lines of a go.mod's replace directives, block or single-line, in order."""
    lines: list[str] = []
    in_block = False
    for raw in gomod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if in_block:
            if line == ")":
                in_block = False
            elif line:
                lines.append(line)
        elif line == "replace (":
            in_block = True
        elif line.startswith("replace "):
            lines.append(line.removeprefix("replace ").strip())
    return lines


def go_directive(gomod: str) -> str:
    """The Go version a go.mod asks for: its toolchain line if it has one, else its go line."""
    found = dict(re.findall(r"^(go|toolchain)\s+(\S+)", gomod, flags=re.MULTILINE))
    if "toolchain" in found:
        return str(found["toolchain"]).removeprefix("go")
    return str(found["go"])


def wrapper_gomod(version: str, go: str, replaces: list[str]) -> str:
    """Our wrapper module: requires Argo's at `version` with that version's own replace directives."""
    body = "\n".join(f"\t{line}" for line in replaces)
    return (
        "module delivery.benchmarks/argo-rollouts\n\n"
        f"go {go}\n\n"
        f"require {MODULE} {version}\n\n"
        f"replace (\n{body}\n)\n"
    )


WRAPPER_TOOLS = f"""//go:build tools

// Package tools pins the Argo Rollouts command that the peer benchmark builds from this module.
package tools

import _ "{MODULE}/cmd/{COMMAND}"
"""


def _version_tuple(go: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", go))


def toolchain_env(required_go: str) -> dict[str, str]:
    """The environment that runs a Go at least as new as the module asks for.

    When the machine's Go is older, GOTOOLCHAIN names the asked-for one and the go command fetches it
    through the module proxy (golang.org/toolchain), nothing else.
    """
    local = _go("env", "GOVERSION").strip().removeprefix("go")
    toolchain = "local" if _version_tuple(local) >= _version_tuple(required_go) else f"go{required_go}"
    return {**os.environ, "GOTOOLCHAIN": toolchain, "GOFLAGS": "-buildvcs=false"}


def _download(version: str, env: dict[str, str]) -> dict[str, str]:
    """`go mod download -json` of the module: its .mod path, and its directory once the Go suffices.

    A Go older than the module asks for still fetches the .mod (and reports the version it needs),
    which is how the toolchain to build with is learned.
    """
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{MODULE}@{version}"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    info: dict[str, str] = json.loads(result.stdout or "{}")
    if "GoMod" not in info:
        raise RuntimeError(f"go mod download {MODULE}@{version} failed:\n{result.stdout}{result.stderr}")
    return info


def build(version: str | None = None) -> ArgoBuild:
    """Build (unless cached) the controller at `version`, the newest release when None."""
    if shutil.which("go") is None:
        raise RuntimeError("Go is needed to build Argo Rollouts and was not found on PATH")
    if version is None:
        listed = json.loads(_go("list", "-m", "-versions", "-json", MODULE))
        version = newest_release(list(listed.get("Versions", [])))
    target = cache_root() / f"argo-rollouts-{version}"
    gomod = Path(_download(version, {**os.environ, "GOTOOLCHAIN": "local"})["GoMod"]).read_text()
    env = toolchain_env(go_directive(gomod))
    downloaded = _download(version, env)
    if "Dir" not in downloaded:
        raise RuntimeError(f"{MODULE}@{version} was not extracted: {downloaded.get('Error')}")
    crds = Path(downloaded["Dir"]) / "manifests" / "crds"
    if (target / COMMAND).is_file():
        return ArgoBuild(version, target / COMMAND, crds, None)
    print(f"building argo-rollouts {version} (GOTOOLCHAIN={env['GOTOOLCHAIN']}): minutes", flush=True)
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".argo-rollouts-{version}-") as scratch:
        wrapper = Path(scratch) / "module"
        out = Path(scratch) / "bin"
        wrapper.mkdir()
        out.mkdir()
        (wrapper / "go.mod").write_text(
            wrapper_gomod(version, go_directive(gomod), replace_directives(gomod))
        )
        (wrapper / "tools.go").write_text(WRAPPER_TOOLS)
        label = f"argo-rollouts-{version}"
        _run_with_progress(["go", "mod", "tidy", "-v"], wrapper, env, label)
        ldflags = f"-s -w -X {MODULE}/utils/version.version={version.removeprefix('v')}"
        command = ["go", "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", str(out / COMMAND)]
        _run_with_progress([*command, f"{MODULE}/cmd/{COMMAND}"], wrapper, env, label)
        shutil.copy(wrapper / "go.mod", out / "go.mod")
        shutil.copy(wrapper / "go.sum", out / "go.sum")
        shutil.rmtree(target, ignore_errors=True)
        out.rename(target)
    elapsed = time.monotonic() - started
    print(f"built argo-rollouts {version} in {elapsed:.0f}s -> {target}", flush=True)
    return ArgoBuild(version, target / COMMAND, crds, elapsed)
