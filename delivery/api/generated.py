"""Files a generator owns in a directory (`crdgen`'s CRDs, `docgen`'s reference pages).

A generator owns the files that start with its header, and only those: it compares them with what
the models give (a unified diff, empty when fresh) and rewrites them, removing the ones the models
no longer give. A file without the header is someone else's and is left alone.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path


def owned(directory: Path, pattern: str, header: str) -> dict[str, str]:
    """The files matching `pattern` in `directory` that start with `header`, by name."""
    files = sorted(directory.glob(pattern)) if directory.is_dir() else []
    return {path.name: path.read_text() for path in files if path.read_text().startswith(header)}


def diff(current: dict[str, str], wanted: dict[str, str], shown: str) -> str:
    """From `current` to `wanted`, each file named `shown/<name>`."""
    lines: list[str] = []
    for name in sorted(current.keys() | wanted.keys()):
        lines += difflib.unified_diff(
            current.get(name, "").splitlines(keepends=True),
            wanted.get(name, "").splitlines(keepends=True),
            fromfile=f"{shown}/{name}",
            tofile=f"{shown}/{name} (generated)",
        )
    return "".join(lines)


def rewrite(directory: Path, current: dict[str, str], wanted: dict[str, str]) -> None:
    """`directory` holding `wanted`; the owned files in `current` that it lacks are removed."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in current.keys() - wanted.keys():
        (directory / name).unlink()
    for name, content in wanted.items():
        (directory / name).write_text(content)


def report(stale: str, where: str, command: str) -> int:
    """`--check`'s exit status: 1 with the diff on stdout when stale."""
    if not stale:
        return 0
    sys.stdout.write(stale)
    sys.stderr.write(f"{where}: stale, run `{command}`\n")
    return 1
