"""The checked-in reference is what the models give: change a model, run `python -m delivery.api.docgen`."""

from __future__ import annotations

from pathlib import Path

from delivery.api import CUSTOM_RESOURCES
from delivery.api.docgen import COMMAND, main, render, stale


def test_checked_in_reference_matches_the_models() -> None:
    diff = stale()
    assert not diff, f"docs/reference/ is stale, run `{COMMAND}`:\n{diff}"


def test_every_resource_has_a_page_listing_its_fields() -> None:
    pages = render()
    for resource in CUSTOM_RESOURCES:
        text = pages[f"{resource.singular}.md"]
        for version in resource.versions:
            assert f"## {resource.group}/{version.name}" in text
        assert "| `spec." in text
        assert f"]({resource.singular}.md)" in pages["index.md"]


def test_check_fails_on_a_stale_page_and_passes_once_written(tmp_path: Path) -> None:
    main(["--directory", str(tmp_path)])
    assert main(["--check", "--directory", str(tmp_path)]) == 0
    edited = tmp_path / "rollout.md"
    edited.write_text(edited.read_text().replace("`spec.replicas`", "`spec.replica`"))
    assert main(["--check", "--directory", str(tmp_path)]) == 1
