"""The templates Components are rendered from: shipped with the package, replaceable per cluster.

A cluster replaces any of them by putting a file of the same name in the ConfigMap
`delivery-system/component-templates` (see docs/components.md): a key there wins over the shipped
file, the others stay as shipped. Keys are flat file names because ConfigMap keys cannot hold `/`.

Templates are written by platform engineers but fed values that application developers chose
(names, images, env), so they run in jinja2's SandboxedEnvironment with StrictUndefined: a typo
in a template is an error said in the Component's status, never a silently empty field.

A replaced template is the cluster's text, not ours: it renders in a worker process within
`templating_budget`'s time and output budgets (an overrun is a RenderError saying which budget),
so the controller renders a Component off its loop whenever any template is replaced. The shipped
templates render in-process, at their old cost (1.1 ms a Component; in workers, all of its four or
five templates, 3.0 ms: see `templating_budget`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment

from delivery import templating_budget

TEMPLATES_NAMESPACE = "delivery-system"
TEMPLATES_CONFIGMAP = "component-templates"
SUFFIX = ".yaml.j2"
SYNTAX = templating_budget.Syntax(trim_blocks=True)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML has it: ten times faster, and rendering runs on every reconcile."""


class RenderError(ValueError):
    """A Component that cannot be rendered: a template, an override or the spec is wrong.
    The message names the template or override, for the Component's status."""


def _shipped() -> dict[str, str]:
    folder = resources.files("delivery.component") / "templates"
    return {entry.name: entry.read_text() for entry in folder.iterdir() if entry.name.endswith(SUFFIX)}


@dataclass(frozen=True)
class TemplateSet:
    sources: Mapping[str, str]
    origin: str = "shipped"
    """Where the replaced templates come from, for messages."""
    replaced: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def shipped(cls) -> TemplateSet:
        return cls(_shipped())

    def replace(self, files: Mapping[str, str], origin: str) -> TemplateSet:
        """This set with `files` (a ConfigMap's data) in place of the files of the same name."""
        chosen = {name: text for name, text in files.items() if name.endswith(SUFFIX)}
        return TemplateSet({**self.sources, **chosen}, origin, frozenset(chosen))

    @cached_property
    def digest(self) -> str:
        """Changes when any template changes: tells which Components need rendering again."""
        canonical = "\0".join(f"{name}\0{self.sources[name]}" for name in sorted(self.sources))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @cached_property
    def _environment(self) -> SandboxedEnvironment:
        return SYNTAX.environment(self.sources)  # YAML, not HTML: values go through `tojson`

    def _where(self, name: str) -> str:
        return f"template {name}" + (f" (from {self.origin})" if name in self.replaced else "")

    def _failed(self, name: str, error: jinja2.TemplateError) -> RenderError:
        line = f" line {error.lineno}" if isinstance(error, jinja2.TemplateSyntaxError) else ""
        return RenderError(f"{self._where(name)}{line}: {error}")

    def render(self, name: str, values: Mapping[str, Any]) -> list[Any]:
        """The YAML documents `name` renders to (empty ones dropped)."""
        if name not in self.sources:
            raise RenderError(f"template {name} not found")
        try:
            if name in self.replaced:
                job = templating_budget.Job(SYNTAX, self.sources, [name], values)
                [text] = templating_budget.POOL.render(job)
            else:
                text = self._environment.get_template(name).render(values)
        except templating_budget.BudgetExceeded as error:
            raise RenderError(f"{self._where(name)}: {error}") from error
        except templating_budget.Failed as failed:
            raise self._failed(name, failed.error) from failed
        except jinja2.TemplateError as error:
            raise self._failed(name, error) from error
        try:
            return [document for document in yaml.load_all(text, Loader=_LOADER) if document is not None]
        except yaml.YAMLError as error:
            raise RenderError(f"{self._where(name)} renders invalid YAML: {error}") from error

    def render_mapping(self, name: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """`name` renders exactly one mapping (or nothing: an empty one)."""
        documents = self.render(name, values)
        if not documents:
            return {}
        if len(documents) > 1 or not isinstance(documents[0], dict):
            raise RenderError(f"{self._where(name)} must render one mapping")
        mapping: dict[str, Any] = documents[0]
        return mapping
