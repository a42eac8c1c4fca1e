"""Metrics and health: the sandbox's real Prometheus scrapes the controller's /metrics and answers
what phase a Rollout is in; /healthz and /readyz answer; a standby is ready but not leader. The
canary's analysis step asks Prometheus about the controller itself (is it leading?), so its
measurement is counted too. The example alerting rules on these metrics pass promtool's tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
from prometheus_api_client import PrometheusConnect

from delivery.operator import CONTROLLER_ID_LABEL
from sandbox.cluster import Sandbox, free_port
from sandbox.prometheus import find_binary
from tests import analysis_egress
from tests.controller import Controller
from tests.rollouts import apply, rollout, wait_for
from tests.waiting import eventually

SHARD = "metrics"


def serving(sandbox: Sandbox, namespace: str, log: Path, port: int, identity: str) -> Controller:
    return Controller(
        sandbox,
        log,
        args=(
            f"--controller-id={SHARD}",
            f"--namespace={namespace}",
            "--webhook=off",
            "--leader-elect",
            f"--lease-namespace={namespace}",
            f"--identity={identity}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={port}",
            analysis_egress.FLAG,  # its analysis asks the sandbox's Prometheus, on loopback
        ),
    )


def query(prometheus: PrometheusConnect, promql: str) -> float | None:
    result = prometheus.custom_query(promql)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_a_rollouts_phase_and_the_controllers_health(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    assert sandbox.prometheus is not None
    leader_port, standby_port = free_port(), free_port()
    leader = serving(sandbox, namespace, tmp_path / "leader.log", leader_port, "leader")
    standby = serving(sandbox, namespace, tmp_path / "standby.log", standby_port, "standby")
    job = f"delivery-{namespace}"
    try:
        leader.start()
        base = f"http://127.0.0.1:{leader_port}"
        eventually(
            lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200, timeout=60, what="ready"
        )
        standby.start()
        standby_base = f"http://127.0.0.1:{standby_port}"
        eventually(
            lambda: httpx.get(f"{standby_base}/readyz", timeout=2).status_code == 200,
            timeout=60,
            what="the standby ready",
        )
        assert httpx.get(f"{base}/healthz", timeout=2).text == "ok\n"
        sandbox.prometheus.add_target(job, f"127.0.0.1:{leader_port}")
        sandbox.prometheus.add_target(f"{job}-standby", f"127.0.0.1:{standby_port}")

        leader_check = {
            "apiVersion": "delivery.luojilab.com/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "leading", "namespace": namespace},
            "spec": {
                "metrics": [
                    {
                        "name": "leading",
                        "successCondition": "result[0] == 1",
                        "provider": {
                            "prometheus": {
                                "address": sandbox.prometheus_url,
                                "query": f'delivery_leader{{job="{job}"}}',
                            }
                        },
                    }
                ]
            },
        }
        steps = [{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "leading"}]}}, {"pause": {}}]
        apply(sandbox, leader_check)
        web = rollout("web", namespace, "web:1", {"canary": {"steps": steps}})
        web["metadata"]["labels"] = {CONTROLLER_ID_LABEL: SHARD}
        apply(sandbox, web)
        wait_for(sandbox, "web", namespace, timeout=60, phase="Healthy")
        web["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
        apply(sandbox, web)
        wait_for(sandbox, "web", namespace, timeout=60, phase="Paused")

        prometheus = PrometheusConnect(url=sandbox.prometheus_url, disable_ssl=True)
        paused = f'delivery_rollout_phase{{job="{job}",namespace="{namespace}",name="web",phase="Paused"}}'
        assert eventually(lambda: query(prometheus, paused), timeout=30, what="the phase scraped") == 1.0
        reconciles = f'sum(delivery_reconciles_total{{job="{job}",resource="rollouts"}})'
        assert (eventually(lambda: query(prometheus, reconciles), timeout=30) or 0) >= 1
        leading = f'delivery_leader{{job="{job}"}}'
        assert eventually(lambda: query(prometheus, leading), timeout=30) == 1.0
        transitions = f'sum(delivery_rollout_transitions_total{{job="{job}"}})'
        assert (eventually(lambda: query(prometheus, transitions), timeout=30) or 0) >= 4
        measured = f'delivery_analysis_measurements_total{{job="{job}",outcome="Successful"}}'
        assert (eventually(lambda: query(prometheus, measured), timeout=30) or 0) >= 1
        # the standby watches too (its cache has the phase) but holds no Lease and reconciles nothing
        standby_leading = f'delivery_leader{{job="{job}-standby"}}'
        assert eventually(lambda: query(prometheus, standby_leading) == 0.0, timeout=30)
        standby_reconciles = f'sum(delivery_reconciles_total{{job="{job}-standby"}})'
        assert query(prometheus, standby_reconciles) in (None, 0.0)
        standby_paused = paused.replace(f'job="{job}"', f'job="{job}-standby"')
        assert eventually(lambda: query(prometheus, standby_paused), timeout=30) == 1.0
    finally:
        sandbox.prometheus.remove_target(job)
        sandbox.prometheus.remove_target(f"{job}-standby")
        leader.stop()
        standby.stop()


def test_the_example_alerting_rules_fire_as_their_tests_say(repo_root: Path) -> None:
    rules = repo_root / "examples" / "prometheus"
    promtool = find_binary().with_name("promtool")  # shipped beside prometheus
    checked = subprocess.run(
        [str(promtool), "test", "rules", "delivery-rules.test.yaml"],
        cwd=rules,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
