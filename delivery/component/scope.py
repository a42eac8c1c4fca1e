"""Which Components the controller renders: not those opted out with
`component.luojilab.com/unmanaged: "true"`, not those being deleted. The controller and
`kubectl delivery plan` ask the same question, so a plan never shows a change the controller
would not make."""

from __future__ import annotations

from delivery.api.definition import COMPONENT_GROUP
from delivery.kube.api import Object

UNMANAGED = f"{COMPONENT_GROUP}/unmanaged"


def unmanaged(component: Object) -> bool:
    return (component["metadata"].get("annotations") or {}).get(UNMANAGED) == "true"


def rendered(component: Object) -> bool:
    """The controller renders this Component now."""
    return not unmanaged(component) and not component["metadata"].get("deletionTimestamp")
