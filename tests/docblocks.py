"""The code blocks of the manual (README.md and docs/) that a reader would apply or run.

`tests/integration/test_docs.py` applies and runs them against the sandbox, so the manual cannot
drift from the product. A block says how it is tested by its fence and by an HTML comment on the
line before it (invisible on the rendered page):

- ```yaml: applied with `kubectl apply -f`, in the page's working directory;
- ```yaml title="web.yaml": written to that file, for a later block to apply or edit (the title
  shows on the page too);
- ```shell, ```sh, ```bash: run with `bash -e`; ```console: its `$ ` lines are;
- `<!-- doc-test: exit N -->`: the block must exit with status N (a diff that finds changes);
- `<!-- doc-test: skip, REASON -->`: not run, with the reason the test lists;
- a block that only includes files (`--8<-- "examples/x.yaml"`) is an example's, tested by the
  examples' own test, and listed as such.

Other fences (json, text, none) are read, not run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")))

RUN = frozenset({"shell", "sh", "bash", "console"})
APPLY = frozenset({"yaml", "yml"})
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,})(?P<info>.*)$")
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')
_DIRECTIVE = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<what>.*?)\s*-->\s*$")
_INCLUDE = re.compile(r'^\s*--8<--\s+"(?P<path>[^"]+)"\s*$')


class BadDirective(ValueError):
    """A `doc-test:` comment this module does not understand: a typo must not skip a block silently."""


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    title: str = ""
    skip: str = ""  # the reason, when the block is not run
    exit_status: int = 0

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def includes(self) -> tuple[str, ...]:
        """The files a block made only of snippet includes shows; empty for any other block."""
        lines = [line for line in self.text.splitlines() if line.strip()]
        found = [match["path"] for line in lines if (match := _INCLUDE.match(line))]
        return tuple(found) if found and len(found) == len(lines) else ()

    @property
    def tested(self) -> bool:
        return self.language in RUN | APPLY

    @property
    def skipped(self) -> str:
        """Why the doc test does not run this block, or "" when it does."""
        if self.skip:
            return self.skip
        if self.includes:
            return f"shows {', '.join(self.includes)}: tested by the examples' own test"
        return ""

    @property
    def script(self) -> str:
        """What bash runs for a shell block: a console block's commands without their prompts."""
        if self.language != "console":
            return self.text
        return "\n".join(line[2:] for line in self.text.splitlines() if line.startswith("$ "))


def _directive(line: str) -> tuple[str, int]:
    """(skip reason, exit status) from a `doc-test:` comment."""
    match = _DIRECTIVE.match(line)
    if not match:
        return "", 0
    what = match["what"]
    if what.startswith("skip,") and what[5:].strip():
        return what[5:].strip(), 0
    if (exit_match := re.fullmatch(r"exit (\d+)", what)) is not None:
        return "", int(exit_match[1])
    raise BadDirective(f"doc-test: {what!r}: say `skip, REASON` or `exit N`")


def blocks(page: Path) -> list[Block]:
    """Every fenced block of a page, in order; indented fences (in list items) lose their indent."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    number = 0
    while number < len(lines):
        opening = _FENCE.match(lines[number])
        if not opening:
            number += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        info = opening["info"].strip()
        body: list[str] = []
        end = number + 1
        while end < len(lines) and lines[end].strip() != fence:
            line = lines[end]
            body.append(line[indent:] if not line[:indent].strip() else line.lstrip())
            end += 1
        before = next((lines[i] for i in range(number - 1, -1, -1) if lines[i].strip()), "")
        skip, exit_status = _directive(before)
        title = match["title"] if (match := _TITLE.search(info)) else ""
        found.append(
            Block(
                page=page,
                line=number + 1,
                language=info.split()[0] if info else "",
                text="\n".join(body) + "\n",
                title=title,
                skip=skip,
                exit_status=exit_status,
            )
        )
        number = end + 1
    return found


def tested_blocks() -> list[Block]:
    """Every block of the manual the doc test runs or accounts for."""
    return [block for page in PAGES for block in blocks(page) if block.tested]
