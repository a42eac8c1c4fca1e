"""What ships is the product only: the wheel's packages, the image's sources and the import contract
that keeps the repository's tools out of the product name the same two packages (the contracts
themselves are checked by `lint-imports`, in scripts/test.sh)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PRODUCT = {"delivery", "strategies"}


def project() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def contract(name: str) -> dict[str, Any]:
    contracts: list[dict[str, Any]] = project()["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["id"] == name)


def test_the_wheel_ships_the_packages_the_contract_keeps_free_of_tools() -> None:
    wheel = project()["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert set(wheel) == set(contract("product")["source_modules"]) == PRODUCT


def test_every_other_package_of_the_repository_is_a_tool_the_product_may_not_import() -> None:
    roots = set(project()["tool"]["importlinter"]["root_packages"])
    packages = {path.parent.name for path in REPO.glob("*/__init__.py")}
    assert roots == packages  # each package is in the import graph, so the contracts see it
    assert set(contract("product")["forbidden_modules"]) == roots - PRODUCT


def test_the_image_copies_the_product_and_nothing_else_of_the_tree() -> None:
    copied = {
        source
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
    }
    assert {source for source in copied if (REPO / source).is_dir()} == PRODUCT
