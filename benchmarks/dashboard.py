"""The dashboard over 1,000 Rollouts: its memory, and the browser's time to first paint.

A sandbox with 1,000 Rollouts, each given a status in mid-release (a canary at step 2 of 4, an
analysis with 20 measurements: what the page shows, so the views are as large as they get in a
typical release). `kubectl delivery dashboard` serves them; Debian's chromium (headless, through
Playwright) opens the list, then five more tabs.

- RSS of the dashboard process: listed and idle, after the list page, after six tabs;
- time to first paint (the browser's first-contentful-paint) and until all 1,000 rows are in the
  table, from the navigation's start;
- the size of the list's first message (the whole snapshot).

Run: .venv/bin/python -m benchmarks.dashboard [--rollouts 1000]
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config
from playwright.sync_api import sync_playwright

from benchmarks.record import record, rss_mib
from sandbox.cluster import Sandbox
from tests.browser import chromium

REPO = Path(__file__).resolve().parent.parent
NAMESPACE = "default"
STEPS = [
    {"setWeight": 20},
    {"pause": {}},
    {"analysis": {"templates": [{"templateName": "errors"}]}},
    {"setWeight": 60},
]


PAINTED = """() => ({
    firstContentfulPaint: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null,
    allRows: performance.now(),
})"""
"""What the page says of its first paint, and the moment it is asked (ms from the navigation's start)."""


def rollout(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "a:2"}]},
            },
            "strategy": {"canary": {"steps": STEPS}},
        },
    }


def status(now: datetime.datetime) -> dict[str, Any]:
    """In mid-release: step 2, an analysis of 20 measurements so far."""

    def stamp(seconds: int) -> str:
        return (now - datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    measurements = [
        {"phase": "Successful", "value": f"[{0.01 + i / 1000:.3f}]", "finishedAt": stamp(200 - 10 * i)}
        for i in range(20)
    ]
    return {
        "phase": "Progressing",
        "message": "step 2: analysis errors",
        "currentStepIndex": 2,
        "stableRevision": "5d8f7c9b4",
        "canaryRevision": "7b6c5d4e3",
        "weights": {"canary": 20, "stable": 80},
        "readyReplicas": 3,
        "observedGeneration": 1,
        "analysisHistory": [
            {
                "name": "errors",
                "kind": "Step",
                "revision": "7b6c5d4e3",
                "stepIndex": 2,
                "phase": "Running",
                "startedAt": stamp(210),
                "metrics": [
                    {
                        "name": "error-rate",
                        "phase": "Running",
                        "count": 20,
                        "successful": 20,
                        "measurements": measurements,
                    },
                ],
            }
        ],
    }


def populate(sandbox: Sandbox, count: int) -> None:
    items = [rollout(f"ro-{index:04d}") for index in range(count)]
    path = sandbox.root / "rollouts.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    sandbox.kubectl_run("apply", "--server-side", "-f", str(path))
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(sandbox.kubeconfig)))
    body = {"status": status(datetime.datetime.now(datetime.UTC))}
    for index in range(count):
        api.patch_namespaced_custom_object_status(
            "delivery.luojilab.com", "v1alpha1", NAMESPACE, "rollouts", f"ro-{index:04d}", body
        )


def serve(sandbox: Sandbox) -> tuple[subprocess.Popen[str], str]:
    plugin = Path(sys.executable).parent / "kubectl-delivery"
    argv = [str(plugin), "dashboard", f"--kubeconfig={sandbox.kubeconfig}", "-n", NAMESPACE, "--port", "0"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        said = next((line for line in list(lines) if "http://" in line), None)
        if said:
            return process, said[said.index("http://") :].strip()
        time.sleep(0.2)
    raise RuntimeError(f"the dashboard did not start: {''.join(lines)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--tabs", type=int, default=6)
    args = parser.parse_args()
    count: int = args.rollouts
    with tempfile.TemporaryDirectory() as scratch, Sandbox(root=Path(scratch) / "sandbox") as sandbox:
        sandbox.kubectl_run("apply", "--server-side", "-f", str(REPO / "crds"))
        sandbox.kubectl_run("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        started = time.monotonic()
        populate(sandbox, count)
        print(f"{count} Rollouts with their status in {time.monotonic() - started:.1f}s", flush=True)
        process, url = serve(sandbox)
        try:
            snapshot = measure_snapshot(url)
            idle = rss_mib(process.pid)
            with sync_playwright() as playwright:
                context = chromium(playwright, Path(scratch) / "chromium")
                pages, paints = [], []
                for _ in range(args.tabs):
                    page = context.new_page()
                    page.goto(url)
                    # (a locator, not wait_for_function: the page's CSP allows no eval)
                    page.locator("#rollouts tbody tr").nth(count - 1).wait_for(
                        state="attached", timeout=120_000
                    )
                    paints.append(page.evaluate(PAINTED))
                    pages.append(page)
                    if len(pages) == 1:
                        one_tab = rss_mib(process.pid)
                time.sleep(2)
                tabs = rss_mib(process.pid)
                context.close()
        finally:
            process.terminate()
            process.wait(timeout=10)
    first = paints[0]
    figures = {
        "rollouts": count,
        "note": "measured on a 2-core machine shared with other work (wall times contended)",
        "dashboard_rss_mib": {"listed_idle": idle, "one_list_tab": one_tab, f"{args.tabs}_list_tabs": tabs},
        "first_tab_ms": {
            "first_contentful_paint": round(first["firstContentfulPaint"] or 0),
            "all_rows_in_table": round(first["allRows"]),
        },
        "later_tabs_all_rows_ms": [round(paint["allRows"]) for paint in paints[1:]],
        "snapshot_bytes": snapshot,
    }
    print(json.dumps(figures, indent=2))
    record("dashboard", figures)


def measure_snapshot(url: str) -> int:
    """The size of the list stream's first message (every row), read as a browser would get it."""
    with httpx.stream("GET", f"{url}stream", timeout=120) as response:
        data = b""
        for chunk in response.iter_bytes():
            data += chunk
            if b"\n\n" in data:
                return len(data.split(b"\n\n", 1)[0])
    return len(data)


if __name__ == "__main__":
    main()
