"""Template rendering within a budget: a looping or flooding template is a clear error within the
budget (plus a second), its worker is replaced, and ordinary templates render as in-process."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from delivery import templating_budget
from delivery.analysis.templates import Found as FoundTemplate
from delivery.analysis.templates import TemplateProblem, render, resolve
from delivery.component.render import Cluster
from delivery.component.render import render as render_component
from delivery.component.templating import RenderError, TemplateSet
from delivery.templating_budget import OUTPUT_BUDGET, POOL, TIME_BUDGET, Job, Pool, Syntax

LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
"""10^10 iterations that write nothing: only the time budget stops it."""
FLOODS = "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}"
"""10 MB, well past the output budget, written in a fraction of the time budget."""
ARGS = {"namespace": "shop", "canary-hash": "abc123"}
SHIPPED = TemplateSet.shipped()
COMPONENT = {
    "apiVersion": "component.luojilab.com/v1beta1",
    "kind": "Component",
    "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
    "spec": {
        "workloadType": "Deployment",
        "developLanguage": "python",
        "runType": "server",
        "image": "web:1",
        "port": 8080,
        "release": {"strategy": "canary"},
    },
}


def timed_problem(text: str) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(TemplateProblem) as raised:
        render(text, ARGS, "AnalysisTemplate t metric m.web.url")
    return str(raised.value), time.monotonic() - started


def test_a_looping_template_fails_with_the_time_budget_and_its_worker_is_replaced() -> None:
    render("warm {{args.namespace}}", ARGS, "q")  # a worker started, outside the time measured
    message, took = timed_problem(LOOPS)
    assert message == f"AnalysisTemplate t metric m.web.url: took longer than {TIME_BUDGET:g}s to render"
    assert took < TIME_BUDGET + 1
    assert render("{{args.namespace}}/{{args.canary-hash}}", ARGS, "q") == "shop/abc123"


def test_a_template_producing_more_than_the_cap_fails_with_the_output_budget() -> None:
    message, took = timed_problem(FLOODS)
    assert message == f"AnalysisTemplate t metric m.web.url: produced more than {OUTPUT_BUDGET >> 20} MiB"
    assert took < TIME_BUDGET
    just_under = f"{{{{ 'y' * {OUTPUT_BUDGET} }}}}"
    assert len(render(just_under, ARGS, "q")) == OUTPUT_BUDGET


def test_the_sandbox_still_refuses_a_range_too_big_and_it_is_said() -> None:
    message, took = timed_problem("{% for i in range(10**12) %}x{% endfor %}")
    assert "OverflowError: Range too big" in message
    assert took < 1


def test_every_worker_stuck_at_once_delays_a_render_by_the_budget_only() -> None:
    """More looping renders than workers, at once: each fails in its turn, none hangs."""

    async def all_at_once() -> list[BaseException | str]:
        loops = [templating_budget.off_loop(render, LOOPS, ARGS, "q") for _ in range(3)]
        fine = templating_budget.off_loop(render, "{{args.namespace}}", ARGS, "q")
        return await asyncio.gather(*loops, fine, return_exceptions=True)

    started = time.monotonic()
    *looped, fine = asyncio.run(all_at_once())
    assert all(isinstance(error, TemplateProblem) and "took longer" in str(error) for error in looped)
    assert fine == "shop"
    assert time.monotonic() - started < 2 * (TIME_BUDGET + 1)  # two workers, three loops


def test_analysis_texts_render_as_the_sandbox_renders_them_in_process() -> None:
    texts = {
        "a": "{{ args.namespace | upper }}-{{ args['canary-hash'][:3] }}\n",
        "b": "{% if args.namespace == 'shop' %}yes{% else %}no{% endif %}",
        "c": "{{ args.namespace ~ '/' ~ (args.namespace | length) }}",
    }
    named = {"namespace": "shop", "canary-hash": "abc123"}
    for text in texts.values():
        assert render(text, named, "q") == Syntax(immutable=True).environment().from_string(
            text.replace("args.canary-hash", "args['canary-hash']")
        ).render(args=named)


def test_template_errors_come_back_as_before() -> None:
    with pytest.raises(TemplateProblem, match=r"^q: argument missing has no value$"):
        render("{{ args.missing }}", ARGS, "q")
    with pytest.raises(TemplateProblem, match=r"^q: unexpected end of template"):
        render("{{ args.namespace", ARGS, "q")
    with pytest.raises(TemplateProblem, match=r"^q: access to attribute 'update' of 'dict' object is unsafe"):
        render("{{ args.update({'a': 1}) }}", ARGS, "q")


def test_a_looping_analysis_template_is_a_template_problem_naming_the_metric() -> None:
    spec = {
        "spec": {
            "metrics": [
                {
                    "name": "loops",
                    "successCondition": "result == 1",
                    "provider": {"web": {"url": "http://x/{{ args.namespace }}" + LOOPS}},
                }
            ]
        }
    }
    with pytest.raises(TemplateProblem) as raised:
        resolve([FoundTemplate("slow", False, spec)], {}, ARGS)
    assert str(raised.value) == (
        f"AnalysisTemplate slow metric loops: took longer than {TIME_BUDGET:g}s to render"
    )


def test_a_replaced_component_template_renders_identically_in_its_worker() -> None:
    in_worker = SHIPPED.replace(dict(SHIPPED.sources), "ConfigMap delivery-system/component-templates")
    assert in_worker.replaced == frozenset(SHIPPED.sources)
    assert render_component(COMPONENT, Cluster(), in_worker) == render_component(
        COMPONENT, Cluster(), SHIPPED
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (LOOPS, f"took longer than {TIME_BUDGET:g}s to render"),
        (FLOODS, f"produced more than {OUTPUT_BUDGET >> 20} MiB"),
        ("{% if %}", "line 1: Expected an expression"),
        ("{{ nothing.here }}", "'nothing' is undefined"),
    ],
)
def test_a_replaced_component_template_over_budget_or_broken_is_an_error(text: str, message: str) -> None:
    templates = SHIPPED.replace({"pod.yaml.j2": text}, "ConfigMap delivery-system/component-templates")
    with pytest.raises(RenderError) as raised:
        render_component(COMPONENT, Cluster(), templates)
    assert str(raised.value).startswith(
        "template pod.yaml.j2 (from ConfigMap delivery-system/component-templates)"
    )
    assert message in str(raised.value)


def test_a_replaced_template_may_include_a_shipped_one() -> None:
    job = Job(Syntax(trim_blocks=True), {"a": "[{% include 'b' %}]", "b": "{{ x }}"}, ["a", "b"], {"x": 1})
    assert POOL.render(job) == ["[1]", "1"]


def our_workers() -> list[int]:
    """The pids of this process's template workers, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and b"templating_budget as worker" in command:
            found.append(int(entry.name))
    return found


def test_a_worker_killed_while_idle_is_replaced_before_the_next_render() -> None:
    pool = Pool(1)
    job = Job(Syntax(), {"t": "{{ 6 * 7 }}"}, ["t"], {})
    assert pool.render(job) == ["42"]
    for pid in our_workers():
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert pool.render(job) == ["42"]
