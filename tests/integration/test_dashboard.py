"""`kubectl delivery dashboard` in a real browser: Debian's chromium, headless, driven by
Playwright's Python API (the system browser; Playwright's own download is never used).

The dashboard is the real plugin command against the sandbox; the page is watched as a canary
moves on without a reload, promoted and aborted from its buttons, its analysis charted against
the condition's threshold; read-only mode; a user who may only read sees the apiserver's refusal;
requests from elsewhere are refused. The tests write the README's screenshots (docs/images/).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from delivery.cli.main import parser
from delivery.dashboard.guard import TOKEN_HEADER
from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox, free_port
from tests import loopback
from tests.browser import CHROMIUM, chromium
from tests.components import component, wait_condition
from tests.controller import Controller
from tests.integration.test_helm import controller_args, controller_rules, kubeconfig_for_token, one, render
from tests.rollouts import PROMOTE, apply, get, rollout, status, wait_for
from tests.waiting import eventually

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
ROLLING: dict[str, Any] = {"rolling": {}}
SECONDS = 60_000  # Playwright's timeouts are in milliseconds: a minute for what the controller does
STRATEGY = {
    "canary": {
        "steps": [
            {"setWeight": 20},
            {"pause": {}},
            {"setWeight": 50},
            {"pause": {"duration": "10m"}},
            {"setWeight": 80},
        ],
        "scaleDownDelaySeconds": 0,
        "abortScaleDownDelaySeconds": 0,
    }
}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="scripts/setup.sh installs /usr/bin/chromium")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with sync_playwright() as playwright:
        context = chromium(
            playwright, tmp_path_factory.mktemp("chromium-profile"), viewport={"width": 1280, "height": 860}
        )
        yield context
        context.close()


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    opened = browser.new_page()
    yield opened
    opened.close()


@contextlib.contextmanager
def dashboard(kubeconfig: Path, namespace: str, *options: str) -> Iterator[str]:
    """The plugin's dashboard on a free port, until the block ends; its URL (the line it prints)."""
    plugin = Path(sys.executable).parent / "kubectl-delivery"
    argv = [str(plugin), "dashboard", f"--kubeconfig={kubeconfig}", "-n", namespace, "--port", "0", *options]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        lines.extend(process.stdout)

    threading.Thread(target=read, daemon=True).start()
    try:
        said = eventually(
            lambda: next((line for line in list(lines) if "http://" in line), None),
            timeout=30,
            what="the dashboard's URL",
        )
        yield said[said.index("http://") :].strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


def confirm(page: Page, action: str) -> None:
    page.click(f'button[data-action="{action}"]')
    expect(page.locator("#confirm-text")).to_contain_text("rollout")
    page.click("#confirm-ok")


def annotations_on(sandbox: Sandbox, namespace: str) -> dict[str, str]:
    found: dict[str, str] = get(sandbox, "rollout", "web", namespace)["metadata"].get("annotations") or {}
    return found


def test_a_canary_moves_on_the_page_without_reload_and_is_promoted_then_aborted(
    sandbox: Sandbox, namespace: str, controller: Controller, page: Page
) -> None:
    # Beside it, a Rollout of a rolling update and a Component that renders a canary Rollout.
    released = component("shop", namespace, replicas=2)
    released["apiVersion"] = "component.luojilab.com/v1beta1"
    released["spec"]["release"] = {"strategy": "canary", "canary": {"steps": [{"setWeight": 50}]}}
    apply(
        sandbox, rollout("web", namespace, "web:1", STRATEGY), rollout("api", namespace, "api:1", ROLLING, 2)
    )
    apply(sandbox, released)
    wait_for(sandbox, "web", namespace, phase="Healthy")
    wait_condition(sandbox, "shop", namespace, "Ready", timeout=120)
    with dashboard(sandbox.kubeconfig, namespace) as url:
        page.goto(url)
        row = page.locator(f'#rollouts tr[data-key="{namespace}/web"]')
        expect(row).to_contain_text("Healthy", timeout=SECONDS)
        expect(page.locator("#rollouts tbody tr")).to_have_count(3)  # web, api and the Component's shop
        shop = page.locator(f'#components tr[data-key="{namespace}/shop"] td')
        expect(shop.nth(2)).to_have_text("Ready")
        expect(shop.nth(3)).to_have_text("1/1")  # its Rollout's step: complete
        stable = get(sandbox, "rollout", "shop", namespace)["status"]["stableRevision"]
        expect(shop.nth(5)).to_have_text(stable)
        page.evaluate("window.notReloaded = true")  # gone if the page were loaded again

        apply(sandbox, rollout("web", namespace, "web:2", STRATEGY))
        cells = row.locator("td")
        expect(cells.nth(3)).to_have_text("Paused", timeout=SECONDS)
        expect(cells.nth(4)).to_have_text("1/5")
        expect(cells.nth(5)).to_have_text("20")
        assert page.evaluate("window.notReloaded") is True
        page.screenshot(path=str(IMAGES / "dashboard-list.png"))

        row.locator("a").click()
        expect(page.locator('ol.steps li[data-state="current"]')).to_contain_text("pause (until promoted)")
        page.evaluate("window.notReloaded = true")
        expect(page.locator('ol.steps li[data-state="done"]')).to_have_count(1)
        confirm(page, "promote")
        expect(page.locator("#notice")).to_contain_text("promote requested")
        wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=3)
        expect(page.locator(".summary")).to_contain_text("step 3/5", timeout=SECONDS)
        expect(page.locator(".summary")).to_contain_text("weight 50%")
        expect(page.locator("ol.steps .countdown")).to_contain_text("left")  # the timed pause's
        expect(page.locator("#revisions tbody tr")).to_have_count(2)
        expect(page.locator("#events tbody tr").first).to_be_visible()
        # The weight chart's line steps up at each change seen: 20, then 50.
        assert page.locator("figure.weight path.series").get_attribute("d").count("V") >= 1
        page.screenshot(path=str(IMAGES / "dashboard-rollout.png"), full_page=True)

        confirm(page, "abort")
        expect(page.locator(".summary .badge")).to_have_text("Aborted", timeout=SECONDS)
        assert wait_for(sandbox, "web", namespace, phase="Aborted")["phase"] == "Aborted"
        assert page.evaluate("window.notReloaded") is True

        refused_from_elsewhere(url, namespace, page)


def refused_from_elsewhere(url: str, namespace: str, page: Page) -> None:
    """Requests that do not come from the page itself are refused, whatever they carry."""
    token = page.locator('meta[name="delivery-token"]').get_attribute("content")
    assert token
    act = f"{url}act/{namespace}/web"
    body = json.dumps({"action": "retry"})
    headers = {"Content-Type": "application/json", "Origin": url.rstrip("/"), "X-Delivery-Token": token}
    for changed, said in (
        ({"X-Delivery-Token": "guessed"}, "token"),
        ({"Origin": "http://evil.example"}, "cross-origin"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, "JSON"),
        ({"Host": "evil.example"}, "Host"),
    ):
        answer = httpx.post(act, content=body, headers={**headers, **changed})
        assert answer.status_code == 403
        assert said in answer.json()["error"]
    assert httpx.get(url, headers={"Host": "rebound.example:80"}).status_code == 403
    # Even from the page: only a Rollout it shows, never one of another namespace.
    elsewhere = httpx.post(f"{url}act/kube-system/web", content=body, headers=headers)
    assert elsewhere.status_code == 404


def sequence(values: list[float]) -> Any:
    """A metric endpoint answering the values in turn, then the last for ever."""
    answered = iter(values)
    last = [values[-1]]

    class Handler(loopback.Quiet):
        def do_GET(self) -> None:
            last[0] = next(answered, last[0])
            body = json.dumps({"rate": last[0]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return loopback.serving(Handler)


def test_the_analysis_is_charted_against_its_threshold_as_it_crosses_it(
    sandbox: Sandbox, namespace: str, controller: Controller, page: Page
) -> None:
    template = {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "errors", "namespace": namespace},
        "spec": {
            "args": [{"name": "base"}],
            "metrics": [
                {
                    "name": "error-rate",
                    "interval": "1s",
                    "count": 8,
                    "failureLimit": 1,
                    "successCondition": "result < 0.05",
                    "provider": {"web": {"url": "{{args.base}}/rate", "jsonPath": "{$.rate}"}},
                }
            ],
        },
    }
    with sequence([0.011, 0.018, 0.024, 0.033, 0.071, 0.094]) as base:
        analysis = {"templates": [{"templateName": "errors"}], "args": [{"name": "base", "value": base}]}
        strategy = {
            "canary": {
                "steps": [{"setWeight": 20}, {"analysis": analysis}, {"setWeight": 100}],
                "scaleDownDelaySeconds": 0,
                "abortScaleDownDelaySeconds": 0,
            }
        }
        apply(sandbox, template, rollout("web", namespace, "web:1", strategy, replicas=2))
        wait_for(sandbox, "web", namespace, phase="Healthy")
        with dashboard(sandbox.kubeconfig, namespace) as url:
            page.goto(f"{url}rollouts/{namespace}/web")
            expect(page.locator(".summary .badge")).to_have_text("Healthy", timeout=SECONDS)
            second = rollout("web", namespace, "web:2", strategy, replicas=2)
            apply(sandbox, second)
            wait_for(sandbox, "web", namespace, 120, phase="Aborted")
            chart = page.locator('figure.analysis[data-metric="error-rate"]')
            expect(chart.locator('circle[data-phase="Failed"]')).to_have_count(2, timeout=SECONDS)
            threshold = chart.locator("line.threshold")
            expect(threshold).to_have_attribute("data-value", "0.05")
            expect(chart).to_contain_text("result < 0.05")
            # Drawn on either side of the line: the passing points below it, the failing above it
            # (SVG's y grows downwards).
            line_y = float(threshold.get_attribute("y1") or "nan")
            drawn = chart.locator("circle.point").evaluate_all(
                "cs => cs.map(c => [c.dataset.phase, Number(c.getAttribute('cy'))])"
            )
            measured = status(sandbox, "web", namespace)["analysisHistory"][-1]["metrics"][0]["measurements"]
            assert [phase for phase, _ in drawn] == [taken["phase"] for taken in measured if "value" in taken]
            assert len([phase for phase, _ in drawn if phase == "Successful"]) >= 3
            assert all((y > line_y) == (phase == "Successful") for phase, y in drawn), (line_y, drawn)
            expect(page.locator(".summary .badge")).to_have_text("Aborted")
            assert template_hash(second["spec"]["template"]) in page.locator(".summary").inner_text()
            chart.scroll_into_view_if_needed()
            page.screenshot(path=str(IMAGES / "dashboard-analysis.png"), full_page=True)


def test_read_only_has_no_buttons_and_refuses_actions(
    sandbox: Sandbox, namespace: str, controller: Controller, page: Page
) -> None:
    apply(sandbox, rollout("web", namespace, "web:1", STRATEGY))
    wait_for(sandbox, "web", namespace, phase="Healthy")
    with dashboard(sandbox.kubeconfig, namespace, "--read-only") as url:
        page.goto(f"{url}rollouts/{namespace}/web")
        expect(page.locator(".summary .badge")).to_have_text("Healthy", timeout=SECONDS)
        expect(page.locator("header .read-only")).to_be_visible()
        expect(page.locator("button[data-action]")).to_have_count(0)
        answer = page.evaluate(
            """async () => {
                const token = document.querySelector('meta[name="delivery-token"]').content;
                const response = await fetch(location.pathname.replace('/rollouts/', '/act/'), {
                    method: 'POST', body: JSON.stringify({action: 'promote'}),
                    headers: {'Content-Type': 'application/json', 'X-Delivery-Token': token}});
                return [response.status, (await response.json()).error];
            }"""
        )
        assert answer == [403, "the dashboard is read-only"]
    assert PROMOTE not in annotations_on(sandbox, namespace)


VIEWER_RULES = [
    {"apiGroups": ["delivery.luojilab.com"], "resources": ["rollouts", "analysistemplates"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["component.luojilab.com"], "resources": ["components"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
]  # fmt: skip


def viewer(sandbox: Sandbox, namespace: str, path: Path) -> Path:
    """A kubeconfig for a ServiceAccount that may get, list and watch what the page shows, no more."""
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "viewer", "namespace": namespace},
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "viewer", "namespace": namespace},
        "rules": VIEWER_RULES,
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "viewer", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "viewer"},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": namespace}],
    }
    apply(sandbox, account, role, binding)
    token = sandbox.kubectl_run("create", "token", "viewer", "-n", namespace, "--duration=1h").strip()
    return kubeconfig_for_token(sandbox, token, path)


def test_a_user_who_may_only_read_sees_the_apiservers_refusal(
    sandbox: Sandbox, namespace: str, controller: Controller, page: Page, tmp_path: Path
) -> None:
    apply(sandbox, rollout("web", namespace, "web:1", STRATEGY))
    wait_for(sandbox, "web", namespace, phase="Healthy")
    kubeconfig = viewer(sandbox, namespace, tmp_path / "viewer.kubeconfig")
    with dashboard(kubeconfig, namespace) as url:
        page.goto(f"{url}rollouts/{namespace}/web")
        expect(page.locator(".summary .badge")).to_have_text("Healthy", timeout=SECONDS)
        confirm(page, "promote")
        notice = page.locator("#notice.error")
        expect(notice).to_contain_text("refused (403)")
        expect(notice).to_contain_text(
            f'User "system:serviceaccount:{namespace}:viewer" cannot patch resource'
        )
        page.screenshot(path=str(IMAGES / "dashboard-refused.png"))
    assert PROMOTE not in annotations_on(sandbox, namespace)


def test_the_chart_serves_the_dashboard_read_only_behind_a_cluster_ip_only_when_asked() -> None:
    assert not [o for o in render() if "dashboard" in o["metadata"]["name"]]
    assert not [arg for arg in controller_args(one(render(), "Deployment")) if "dashboard" in arg]
    objects = render("dashboard.enabled=true", "dashboard.port=3200")
    parsed = parser().parse_args(controller_args(one(objects, "Deployment")))
    assert parsed.dashboard_port == 3200
    service = one(objects, "Service", name="delivery-dashboard")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "dashboard", "port": 3200, "targetPort": "dashboard", "protocol": "TCP"}
    ]

    # Its watches add reading rights only: nothing the controller may write changes.
    def writes(rules: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {
            (r, v)
            for rule in rules
            for r in rule["resources"]
            for v in rule["verbs"]
            if v not in ("get", "list", "watch")
        }

    assert writes(controller_rules(objects)) == writes(controller_rules(render()))
    granted = {(r, v) for rule in controller_rules(objects) for r in rule["resources"] for v in rule["verbs"]}
    assert {
        ("events", "watch"),
        ("analysistemplates", "watch"),
        ("clusteranalysistemplates", "watch"),
    } <= granted


def test_the_controller_serves_it_read_only(
    sandbox: Sandbox, namespace: str, controller: Controller, page: Page, tmp_path: Path
) -> None:
    apply(sandbox, rollout("web", namespace, "web:1", STRATEGY))
    wait_for(sandbox, "web", namespace, phase="Healthy")
    # A controller of a shard of its own (it acts on nothing here), serving the dashboard as the
    # chart's dashboard.enabled makes it.
    port = free_port()
    serving = Controller.of_shard(
        sandbox, tmp_path / "delivery.log", "dashboard", f"--dashboard-port={port}", namespace=namespace
    )
    serving.start()
    try:
        eventually(lambda: "read-only dashboard on port" in serving.tail() or None, timeout=60, what="it")
        url = f"http://127.0.0.1:{port}/"
        page.goto(url)
        row = page.locator(f'#rollouts tr[data-key="{namespace}/web"]')
        expect(row).to_contain_text("Healthy", timeout=SECONDS)
        expect(page.locator("header .read-only")).to_be_visible()
        page.goto(f"{url}rollouts/{namespace}/web")
        expect(page.locator(".summary .badge")).to_have_text("Healthy", timeout=SECONDS)
        expect(page.locator("button[data-action]")).to_have_count(0)
        token = page.locator('meta[name="delivery-token"]').get_attribute("content") or ""
        answer = httpx.post(
            f"{url}act/{namespace}/web",
            content=json.dumps({"action": "abort"}),
            headers={"Content-Type": "application/json", "Origin": url.rstrip("/"), TOKEN_HEADER: token},
        )
        assert (answer.status_code, answer.json()["error"]) == (403, "the dashboard is read-only")
    finally:
        serving.stop()
    assert "delivery.luojilab.com/abort" not in annotations_on(sandbox, namespace)
