"""Looking up the model of any object of this API, and saying where the models refuse one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from delivery.api import CUSTOM_RESOURCES
from delivery.api.common import Model

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
MODELS: dict[tuple[str, str], type[Model]] = {
    (f"{resource.group}/{version.name}", resource.kind): version.model
    for resource in CUSTOM_RESOURCES
    for version in resource.versions
}


def validate(obj: Mapping[str, Any]) -> Model:
    return MODELS[obj["apiVersion"], obj["kind"]].model_validate(obj)


def examples() -> dict[str, dict[str, Any]]:
    """The objects of this API in the examples, by file and kind (an example also carries the
    Services, Ingresses and such it needs, which are not ours to validate)."""
    return {
        f"{path.name} {obj['kind']}": obj
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for obj in yaml.safe_load_all(path.read_text())
        if (obj["apiVersion"], obj["kind"]) in MODELS
    }


def _path(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def refusals(error: ValidationError) -> list[str]:
    """Each error as the apiserver would print it: the path of the field it blames, a message.

    A rule that blames one field (`fieldPath` in the CRD) names it in the error's context.
    """
    return [
        f"{_path(detail['loc'])}{(detail.get('ctx') or {}).get('field', '')}: {detail['msg']}"
        for detail in error.errors()
    ]
