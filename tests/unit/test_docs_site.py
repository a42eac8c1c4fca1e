"""The manual builds as `make docs` builds it: strictly, so a broken link, anchor or include fails here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.docblocks import ROOT


def test_the_site_builds_strictly_and_opens_from_files(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    home = (tmp_path / "site" / "index.html").read_text()
    assert "getting-started.html" in home  # pages as files, so links work from file://
    # The offline plugin bundles the search index into the pages: search works without a server.
    assert (tmp_path / "site" / "search" / "search_index.js").exists()
    reference = (tmp_path / "site" / "reference" / "rollout.html").read_text()
    assert "spec.strategy.canary.steps" in reference
