"""The manual is run: every YAML block of README.md and docs/ is applied and every shell block run,
in order, against the session's sandbox and controller (see tests/docblocks.py for how a block
says what it is). A page that no longer matches the product fails here, with the block's place.

Each page runs in a working directory of its own that holds the repository's files (links), with
its own copy of the kubeconfig (a page may switch its namespace) and what the getting-started page
sets up in the environment: the sandbox's variables, its kubectl and the kubectl-delivery plugin on
PATH. Namespaces a page creates are deleted after it. Blocks that cannot run are listed, each with
its reason, as skipped tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from sandbox.cluster import Sandbox
from tests import docblocks, namespaces
from tests.controller import Controller

BLOCK_TIMEOUT = 300  # seconds: the longest wait a page asks for (`kubectl delivery status --timeout`)

_RUN_BY_PAGE = {
    page: runnable
    for page in docblocks.PAGES
    if (runnable := [b for b in docblocks.blocks(page) if b.tested and not b.skipped])
}
_SKIPPED = [block for block in docblocks.tested_blocks() if block.skipped]


def _workdir(tmp_path: Path, sandbox: Sandbox) -> Path:
    """The repository as a reader sees it (`examples/`, `.venv/`), with files of its own."""
    work = tmp_path / "work"
    work.mkdir()
    for entry in docblocks.ROOT.iterdir():
        if entry.name not in {".git", ".sandbox", "site"}:
            (work / entry.name).symlink_to(entry)
    shutil.copy(sandbox.kubeconfig, tmp_path / "kubeconfig")
    return work


def _environment(tmp_path: Path, sandbox: Sandbox) -> dict[str, str]:
    path = os.pathsep.join(
        [str(Path(sandbox.kubectl).parent), str(Path(sys.executable).parent), os.environ["PATH"]]
    )
    return {**os.environ, **sandbox.env(), "KUBECONFIG": str(tmp_path / "kubeconfig"), "PATH": path}


def _namespaces(core: client.CoreV1Api) -> set[str]:
    return {str(ns.metadata.name) for ns in core.list_namespace().items}


def _run(block: docblocks.Block, work: Path, env: dict[str, str], sandbox: Sandbox) -> None:
    if block.language in docblocks.APPLY and block.title:
        (work / block.title).write_text(block.text)
        return
    if block.language in docblocks.APPLY:
        manifest = work.parent / f"block-{block.line}.yaml"
        manifest.write_text(block.text)
        argv = [str(sandbox.kubectl), "apply", "-f", str(manifest)]
    else:
        argv = ["bash", "-e", "-o", "pipefail", "-c", block.script]
    done = subprocess.run(
        argv, cwd=work, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT, check=False
    )
    assert done.returncode == block.exit_status, (
        f"{block.where}: exit {done.returncode}, expected {block.exit_status}\n"
        f"--- block\n{block.text}--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
    )


@pytest.mark.cluster
@pytest.mark.parametrize(
    "page", list(_RUN_BY_PAGE), ids=[str(page.relative_to(docblocks.ROOT)) for page in _RUN_BY_PAGE]
)
def test_page_runs(
    page: Path, sandbox: Sandbox, api: client.ApiClient, controller: Controller, tmp_path: Path
) -> None:
    core = client.CoreV1Api(api)
    before = _namespaces(core)
    work, env = _workdir(tmp_path, sandbox), _environment(tmp_path, sandbox)
    try:
        for block in _RUN_BY_PAGE[page]:
            _run(block, work, env, sandbox)
    finally:
        for name in _namespaces(core) - before:
            namespaces.delete(api, name)


@pytest.mark.parametrize("block", _SKIPPED, ids=[block.where for block in _SKIPPED])
def test_block_not_run(block: docblocks.Block) -> None:
    """Lists each block the test does not run, with why (pytest -ra shows the reasons)."""
    pytest.skip(f"{block.where}: {block.skipped}")
