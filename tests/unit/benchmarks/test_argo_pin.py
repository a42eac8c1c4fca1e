"""scripts/setup.sh builds the Argo Rollouts version tests/integration/test_argo_migration.py runs,
so that `make test` never builds it inside a test (minutes of Go, outside the test's timing)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[3]


def test_setup_builds_the_argo_version_the_migration_test_pins() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    test = (ROOT / "tests" / "integration" / "test_argo_migration.py").read_text()
    built = re.search(r"^argo_version=(\S+)$", setup, flags=re.MULTILINE)
    pinned = re.search(r'^ARGO_VERSION = "(\S+)"$', test, flags=re.MULTILINE)
    assert built is not None
    assert pinned is not None
    assert built.group(1) == pinned.group(1)
