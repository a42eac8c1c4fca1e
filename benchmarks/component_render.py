"""How long rendering a Component takes, and the drift check that decides whether to write.

Both run on every reconcile of every Component (a watch event of any of its objects wakes it),
so together they bound how many Components one controller can keep converged. No cluster:
`python -m benchmarks.component_render [--components 1000]`.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from typing import Any

from benchmarks.record import record
from delivery.api.component import Language, RunType, WorkloadType
from delivery.api.profile import ClusterProfileSpec
from delivery.component.drift import needs_apply
from delivery.component.render import Cluster, render
from delivery.component.templating import TemplateSet


def components(count: int) -> list[dict[str, Any]]:
    """Every language, workload type and run type in turn; a third with a release or overrides."""
    shapes = itertools.cycle(
        itertools.product(Language, (WorkloadType.DEPLOYMENT, WorkloadType.STATEFUL_SET), RunType)
    )
    made = []
    for index, (language, workload, run) in zip(range(count), shapes, strict=False):
        spec: dict[str, Any] = {
            "workloadType": workload.value,
            "developLanguage": language.value,
            "runType": run.value,
            "image": f"app-{index}:1",
            "port": 8080,
            "env": [{"name": "INDEX", "value": str(index)}],
        }
        if index % 3 == 1:
            spec["release"] = (
                {"strategy": "canary"} if workload is WorkloadType.DEPLOYMENT else {"strategy": "rolling"}
            )
        if index % 3 == 2:
            spec["overrides"] = [
                {"kind": workload.value, "strategicMerge": {"metadata": {"labels": {"tier": "x"}}}}
            ]
        made.append(
            {
                "apiVersion": "component.luojilab.com/v1beta1",
                "kind": "Component",
                "metadata": {"name": f"c-{index}", "namespace": "bench", "uid": f"uid-{index}"},
                "spec": spec,
            }
        )
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--components", type=int, default=1000)
    args = parser.parse_args()
    templates = TemplateSet.shipped()
    cluster = Cluster(ClusterProfileSpec(image_registry="registry.example.com/apps", ingress_class="nginx"))
    every = components(args.components)
    render(every[0], cluster, templates)  # compile the templates once, as a running controller has
    render_ms, drift_ms, objects = [], [], 0
    for component in every:
        started = time.perf_counter()
        rendered = render(component, cluster, templates)
        render_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        for obj in rendered.objects:
            needs_apply(obj, obj)
        drift_ms.append((time.perf_counter() - started) * 1000)
        objects += len(rendered.objects)
    figures = {
        "components": args.components,
        "objects_rendered": objects,
        "render_ms_p50": round(statistics.median(render_ms), 2),
        "render_ms_p99": round(statistics.quantiles(render_ms, n=100)[98], 2),
        "drift_check_ms_p50": round(statistics.median(drift_ms), 3),
        "all_components_s": round(sum(render_ms) / 1000, 2),
    }
    for key, value in figures.items():
        print(f"{key}: {value}")
    record("component_render", figures)


if __name__ == "__main__":
    main()
