"""How the doc test reads the manual's blocks (tests/docblocks.py), and that every page says what it means."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import docblocks


def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text)
    return page


def test_blocks_keep_their_indentation_titles_and_directives(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        'intro\n\n```yaml title="web.yaml"\nspec:\n  replicas: 2\n```\n\n'
        "- a list item:\n\n  <!-- doc-test: exit 1 -->\n  ```shell\n  kubectl get ro\n  ```\n\n"
        "<!-- doc-test: skip, needs a cloud -->\n```sh\nmake down\n```\n",
    )
    found = docblocks.blocks(page)
    assert [(b.language, b.title, b.skip, b.exit_status) for b in found] == [
        ("yaml", "web.yaml", "", 0),
        ("shell", "", "", 1),
        ("sh", "", "needs a cloud", 0),
    ]
    assert found[0].text == "spec:\n  replicas: 2\n"
    assert found[1].text == "kubectl get ro\n"
    assert found[0].line == 3


def test_a_block_of_includes_is_the_examples_and_a_console_block_runs_its_prompts(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        '```yaml\n--8<-- "examples/a.yaml"\n```\n\n```console\n$ kubectl get ns\nNAME STATUS\n```\n',
    )
    included, console = docblocks.blocks(page)
    assert included.includes == ("examples/a.yaml",)
    assert "examples/a.yaml" in included.skipped
    assert console.script == "kubectl get ns"
    assert not console.skipped


def test_an_unknown_directive_is_an_error_not_a_silent_skip(tmp_path: Path) -> None:
    page = _page(tmp_path, "<!-- doc-test: skipp because -->\n```sh\nls\n```\n")
    with pytest.raises(docblocks.BadDirective):
        docblocks.blocks(page)


def test_the_manual_runs_blocks_and_says_why_for_each_one_it_does_not() -> None:
    blocks = docblocks.tested_blocks()
    run = [block for block in blocks if not block.skipped]
    assert len(run) >= 10
    assert {block.page.name for block in run} >= {"README.md", "components.md", "analysis.md"}
    assert all(len(block.skipped) > 10 for block in blocks if block.skipped)
