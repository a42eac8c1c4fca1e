"""`kubectl delivery` speaks kubectl, through the real kubectl with the plugin on PATH: the
kubeconfig's context and its namespace, -A, --context, and the commands Argo Rollouts' users reach
for (list, set image, undo, restart, wait, lint, completion)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from sandbox.cluster import Sandbox
from tests import namespaces
from tests.controller import Controller
from tests.integration.test_rollout_targets import deployment
from tests.rollouts import apply, get, rollout, wait_for
from tests.waiting import eventually

CANARY = {
    "canary": {
        "steps": [{"setWeight": 50}, {"pause": {}}],
        "scaleDownDelaySeconds": 0,
        "abortScaleDownDelaySeconds": 0,
    }
}
ROLLING = {"rolling": {"maxSurge": 1, "maxUnavailable": 0}}
EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture
def other(api: client.ApiClient) -> Iterator[str]:
    """A second namespace, for the context that is not the current one."""
    name = namespaces.create(api)
    yield name
    namespaces.delete(api, name)


@pytest.fixture
def kubeconfig(sandbox: Sandbox, namespace: str, other: str, tmp_path: Path) -> Path:
    """The sandbox's kubeconfig with the current context's namespace set to the test's namespace
    (as `kubectl config set-context --current --namespace` does) and a context `other` whose
    namespace is `other`."""
    document = yaml.safe_load(sandbox.kubeconfig.read_text())
    current = next(c for c in document["contexts"] if c["name"] == document["current-context"])
    current["context"]["namespace"] = namespace
    document["contexts"].append({"name": "other", "context": {**current["context"], "namespace": other}})
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path


def kubectl(
    sandbox: Sandbox, kubeconfig: Path | str, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The real kubectl, with the plugin on PATH and KUBECONFIG set as a user sets it (no flag).
    That kubectl comes first on PATH, as the one a user runs does: kubectl execs its plugins, so
    the plugin's skew check finds the kubectl by PATH (a machine's own older kubectl further on
    would be warned of)."""
    path = os.pathsep.join(
        (str(sandbox.kubectl.parent), str(Path(sys.executable).parent), os.environ.get("PATH", ""))
    )
    env = {**os.environ, "PATH": path, "KUBECONFIG": str(kubeconfig)}
    return subprocess.run(
        [str(sandbox.kubectl), *args], capture_output=True, text=True, env=env, check=False, timeout=timeout
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.usefixtures("crds")
def test_the_namespace_of_the_current_context_and_of_context(
    sandbox: Sandbox, namespace: str, other: str, kubeconfig: Path, tmp_path: Path
) -> None:
    apply(sandbox, rollout("web", namespace, "web:1", CANARY), rollout("web", other, "web:1", CANARY))
    # kubectl itself acts in the context's namespace ...
    assert (
        ok(kubectl(sandbox, kubeconfig, "config", "view", "--minify", "-o", "jsonpath={..namespace}"))
        == namespace
    )
    # ... and so does the plugin (it looked in `default` before issue 16).
    assert f"rollout {namespace}/web" in ok(kubectl(sandbox, kubeconfig, "delivery", "get", "rollout", "web"))
    assert f"rollout {other}/web" in ok(
        kubectl(sandbox, kubeconfig, "delivery", "get", "rollout", "web", "--context", "other")
    )
    missing = kubectl(sandbox, kubeconfig, "delivery", "get", "rollout", "web", "-n", "default")
    assert (missing.returncode, missing.stderr.strip()) == (1, "rollout default/web not found")
    before = kubectl(sandbox, kubeconfig, "delivery", "-n", other, "get", "rollout", "web")
    assert f"rollout {other}/web" in ok(before)  # the options before the command, too
    unknown = kubectl(sandbox, kubeconfig, "delivery", "list", "--context", "nope")
    assert unknown.returncode == 1
    assert "context 'nope' is not in the kubeconfig" in unknown.stderr

    # KUBECONFIG of two files: the first current-context wins, as in kubectl.
    first = tmp_path / "first"
    first.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "other"}))
    both = f"{first}{os.pathsep}{kubeconfig}"
    assert ok(kubectl(sandbox, both, "config", "current-context")).strip() == "other"
    assert f"rollout {other}/web" in ok(kubectl(sandbox, both, "delivery", "get", "rollout", "web"))


def test_list_the_namespace_or_every_namespace(
    sandbox: Sandbox, namespace: str, other: str, kubeconfig: Path, controller: Controller
) -> None:
    apply(
        sandbox,
        rollout("web", namespace, "web:1", CANARY, replicas=2),
        rollout("api", other, "api:1", ROLLING),
    )
    web = wait_for(sandbox, "web", namespace, phase="Healthy")
    wait_for(sandbox, "api", other, phase="Healthy")
    listed = ok(kubectl(sandbox, kubeconfig, "delivery", "list")).splitlines()
    assert listed[0].split() == [
        "NAME",
        "STRATEGY",
        "PHASE",
        "STEP",
        "WEIGHT",
        "READY",
        "STABLE",
        "CURRENT",
        "AGE",
    ]
    assert [line.split()[:8] for line in listed[1:]] == [
        ["web", "canary", "Healthy", "2/2", "0", "2/2", web["stableRevision"], web["stableRevision"]]
    ]
    everywhere = ok(kubectl(sandbox, kubeconfig, "delivery", "list", "rollouts", "-A")).splitlines()
    assert everywhere[0].split()[:2] == ["NAMESPACE", "NAME"]
    rows = {(line.split()[0], line.split()[1]) for line in everywhere[1:]}
    assert {(namespace, "web"), (other, "api")} <= rows


def revisions(sandbox: Sandbox, namespace: str) -> dict[str, str]:
    """The Rollout's ReplicaSets: name -> uid."""
    listed = json.loads(sandbox.kubectl_run("get", "replicasets", "-n", namespace, "-o", "json"))["items"]
    return {rs["metadata"]["name"]: rs["metadata"]["uid"] for rs in listed}


def test_set_image_starts_a_release_and_undo_goes_back(
    sandbox: Sandbox, namespace: str, kubeconfig: Path, controller: Controller
) -> None:
    apply(sandbox, rollout("web", namespace, "web:1", CANARY, replicas=2))
    first = wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"]
    made = revisions(sandbox, namespace)

    said = ok(kubectl(sandbox, kubeconfig, "delivery", "set", "image", "web", "app=web:2"))
    assert said.strip() == f"rollout {namespace}/web: image updated (app=web:2)"
    paused = wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1)
    assert paused["canaryRevision"] != first
    assert (
        get(sandbox, "rollout", "web", namespace)["spec"]["template"]["spec"]["containers"][0]["image"]
        == "web:2"
    )
    unknown = kubectl(sandbox, kubeconfig, "delivery", "set", "image", "web", "db=x")
    assert (unknown.returncode, "no container named db" in unknown.stderr) == (1, True)

    # Mid-release, undo goes back to the stable revision: its own ReplicaSet, not a new one.
    said = ok(kubectl(sandbox, kubeconfig, "delivery", "undo", "web"))
    assert (
        said.strip() == f"rollout {namespace}/web: back to revision {first} (from {paused['canaryRevision']})"
    )
    assert ok(kubectl(sandbox, kubeconfig, "delivery", "wait", "web", "--for", "healthy", "--timeout", "60s"))
    back = wait_for(sandbox, "web", namespace, phase="Healthy", stableRevision=first, canaryRevision=first)
    assert back["stableRevision"] == first
    assert (
        get(sandbox, "rollout", "web", namespace)["spec"]["template"]["spec"]["containers"][0]["image"]
        == "web:1"
    )
    now = revisions(sandbox, namespace)
    assert {
        name: uid for name, uid in now.items() if name in made
    } == made  # the first ReplicaSet kept its uid
    assert len(now) == 2  # web:1's and web:2's, nothing else

    # --to-revision names a revision as `list` and `get` show it.
    second = paused["canaryRevision"]
    ok(kubectl(sandbox, kubeconfig, "delivery", "undo", "web", "--to-revision", second))
    wait_for(sandbox, "web", namespace, phase="Paused", canaryRevision=second)
    same = ok(kubectl(sandbox, kubeconfig, "delivery", "undo", "web", "--to-revision", second))
    assert same.strip() == f"rollout {namespace}/web: already at revision {second}"
    absent = kubectl(sandbox, kubeconfig, "delivery", "undo", "web", "--to-revision", "0000000000")
    assert (absent.returncode, "no revision 0000000000 in the history" in absent.stderr) == (1, True)


def pods(sandbox: Sandbox, namespace: str) -> dict[str, str]:
    """The running pods (not being deleted): uid -> the uid of the ReplicaSet that owns it."""
    listed = json.loads(sandbox.kubectl_run("get", "pods", "-n", namespace, "-o", "json"))["items"]
    return {
        pod["metadata"]["uid"]: pod["metadata"]["ownerReferences"][0]["uid"]
        for pod in listed
        if not pod["metadata"].get("deletionTimestamp")
    }


def test_restart_replaces_every_pod_in_the_same_replicaset(
    sandbox: Sandbox, namespace: str, kubeconfig: Path, controller: Controller
) -> None:
    apply(sandbox, rollout("web", namespace, "web:1", ROLLING, replicas=3))
    healthy = wait_for(sandbox, "web", namespace, phase="Healthy", readyReplicas=3)
    before = eventually(
        lambda: pods(sandbox, namespace) if len(pods(sandbox, namespace)) == 3 else None, timeout=30
    )
    made = revisions(sandbox, namespace)

    said = ok(kubectl(sandbox, kubeconfig, "delivery", "restart", "web"))
    restart_at = get(sandbox, "rollout", "web", namespace)["spec"]["restartAt"]
    assert said.strip() == f"rollout {namespace}/web: restart at {restart_at}"
    done = wait_for(sandbox, "web", namespace, restartedAt=restart_at)
    after = pods(sandbox, namespace)
    assert len(after) == 3
    assert not set(after) & set(before)  # every pod is a new one ...
    assert set(after.values()) == set(before.values()) == set(made.values())  # ... of the same ReplicaSet
    assert revisions(sandbox, namespace) == made
    assert (done["stableRevision"], done["canaryRevision"]) == (healthy["stableRevision"],) * 2
    assert done["phase"] == "Healthy"


def test_wait_exit_codes(sandbox: Sandbox, namespace: str, kubeconfig: Path, controller: Controller) -> None:
    apply(sandbox, rollout("web", namespace, "web:1", CANARY, replicas=2))

    def waiting(goal: str, timeout: str = "60s") -> subprocess.CompletedProcess[str]:
        return kubectl(
            sandbox, kubeconfig, "delivery", "wait", "web", "--for", goal, "--timeout", timeout, timeout=90
        )

    assert waiting("healthy").returncode == 0
    healthy = waiting("paused")
    assert healthy.returncode == 1  # healthy, and it will not pause by itself
    assert "will not become paused by itself" in healthy.stderr
    apply(sandbox, rollout("web", namespace, "web:2", CANARY, replicas=2))
    assert waiting("paused").returncode == 0
    timed_out = waiting("aborted", "3s")
    assert timed_out.returncode == 2  # paused for a person: neither aborted nor another end
    assert "not aborted after 3s" in timed_out.stderr
    assert kubectl(sandbox, kubeconfig, "delivery", "abort", "web").returncode == 0
    aborted = waiting("healthy")
    assert aborted.returncode == 1
    assert "Aborted" in aborted.stdout
    assert waiting("aborted").returncode == 0
    assert kubectl(sandbox, kubeconfig, "delivery", "wait", "nothing", "--for", "healthy").returncode == 1


def test_lint_says_file_and_line_and_exits_1(sandbox: Sandbox, kubeconfig: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "apiVersion: delivery.luojilab.com/v1alpha1\nkind: Rollout\nmetadata: {name: web}\nspec:\n"
        "  selector: {matchLabels: {app: web}}\n  template: {}\n  strategy:\n    canary:\n"
        "      steps:\n      - setWeight: 150\n"
    )
    found = kubectl(sandbox, kubeconfig, "delivery", "lint", str(broken))
    assert found.returncode == 1
    assert found.stderr.startswith(f"{broken}:10: Rollout web: spec.strategy.canary.steps[0].setWeight: ")
    clean = kubectl(
        sandbox, kubeconfig, "delivery", "lint", *map(str, sorted(EXAMPLES.glob("rollout-*.yaml")))
    )
    assert clean.returncode == 0, clean.stderr


def test_completion_scripts(sandbox: Sandbox, kubeconfig: Path, tmp_path: Path) -> None:
    script = tmp_path / "completion.bash"
    script.write_text(ok(kubectl(sandbox, kubeconfig, "delivery", "completion", "bash")))
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, check=False).returncode == 0
    completed = subprocess.run(
        [
            "bash",
            "-c",
            f'source {script}; COMP_WORDS=(kubectl-delivery wait web --for ""); COMP_CWORD=4; '
            '_shtab_kubectl_delivery; echo "${COMPREPLY[@]}"',
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.split() == ["healthy", "paused", "completed", "aborted"]
    assert ok(kubectl(sandbox, kubeconfig, "delivery", "completion", "zsh")).startswith(
        "#compdef kubectl-delivery"
    )


def test_kubectl_completes_the_plugins_words(
    sandbox: Sandbox, namespace: str, kubeconfig: Path, crds: None
) -> None:
    """kubectl's own completion asks kubectl_complete-delivery: the plugin's commands and choices,
    and the Rollouts of the context's namespace."""
    apply(sandbox, rollout("web", namespace, "web:1", CANARY), rollout("worker", namespace, "w:1", CANARY))

    def offered(*words: str) -> list[str]:
        return ok(kubectl(sandbox, kubeconfig, "__complete", "delivery", *words)).splitlines()

    assert offered("wa") == ["wait", ":4"]
    assert offered("wait", "web", "--for", "") == ["healthy", "paused", "completed", "aborted", ":4"]
    assert offered("get", "rollout", "") == ["web", "worker", ":4"]
    assert offered("undo", "wo") == ["worker", ":4"]
    assert offered("lint", "") == [":0"]  # file names, from the shell


def test_set_image_and_undo_of_a_workload_ref_write_the_deployment(
    sandbox: Sandbox, namespace: str, kubeconfig: Path, controller: Controller
) -> None:
    apply(sandbox, deployment(namespace))
    referencing = {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "legacy", "namespace": namespace},
        "spec": {"replicas": 2, "workloadRef": {"name": "legacy"}, "strategy": CANARY},
    }
    apply(sandbox, referencing)
    first = wait_for(sandbox, "legacy", namespace, phase="Healthy")["stableRevision"]

    def image() -> str:
        return str(
            get(sandbox, "deployment", "legacy", namespace)["spec"]["template"]["spec"]["containers"][0][
                "image"
            ]
        )

    said = ok(kubectl(sandbox, kubeconfig, "delivery", "set", "image", "legacy", "app=legacy:2"))
    assert said.startswith(
        f"deployment {namespace}/legacy: image updated (app=legacy:2); released at the Rollout's next"
    )
    assert image() == "legacy:2"
    sandbox.kubectl_run("annotate", "rollout", "legacy", "-n", namespace, "touched=1")  # its next reconcile
    wait_for(sandbox, "legacy", namespace, phase="Paused", currentStepIndex=1)
    ok(kubectl(sandbox, kubeconfig, "delivery", "undo", "legacy"))
    assert image() == "legacy:1"
    sandbox.kubectl_run("annotate", "rollout", "legacy", "-n", namespace, "touched=2", "--overwrite")
    # The Deployment's template as the apiserver defaulted it: the same revision as before.
    wait_for(sandbox, "legacy", namespace, phase="Healthy", stableRevision=first, canaryRevision=first)


@pytest.mark.usefixtures("namespace", "crds")  # `list` needs the Rollout kind
def test_a_kubectl_within_one_minor_is_not_warned_and_one_further_is(
    sandbox: Sandbox, kubeconfig: Path
) -> None:
    """The plugin compares the kubectl that ran it with the server (`delivery.cli.skew`)."""
    same = kubectl(sandbox, kubeconfig, "delivery", "list")
    assert same.returncode == 0, same.stderr
    assert "warning" not in same.stderr
    server = json.loads(ok(kubectl(sandbox, kubeconfig, "version", "-o", "json")))["serverVersion"]
    minor = int(server["minor"].rstrip("+"))
    # Another minor's kubectl, as the sandbox's version matrix builds them (cached by version).
    others = [
        path
        for path in sorted(sandbox.kubectl.parent.parent.glob("kubernetes-v1.*/kubectl"))
        if abs(int(path.parent.name.split(".")[1]) - minor) > 1
    ]
    if not others:
        pytest.skip("no kubectl of a minor further than one from the server's is built here")
    path = os.pathsep.join(
        (str(others[0].parent), str(Path(sys.executable).parent), os.environ.get("PATH", ""))
    )
    far = subprocess.run(
        [str(others[0]), "delivery", "list"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path, "KUBECONFIG": str(kubeconfig)},
        check=False,
        timeout=60,
    )
    assert far.returncode == 0, far.stderr
    assert "kubectl delivery: warning: kubectl v1." in far.stderr
    assert f"server's {server['gitVersion']}" in far.stderr
