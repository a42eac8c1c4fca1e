"""The checked-in CRDs are what the models give: change a model, run `python -m delivery.api.crdgen`."""

from __future__ import annotations

from delivery.api.crdgen import COMMAND, stale


def test_checked_in_crds_match_the_models() -> None:
    diff = stale()
    assert not diff, f"crds/ is stale, run `{COMMAND}`:\n{diff}"
