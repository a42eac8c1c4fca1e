"""Configuration releases, the pure part: the references of a pod template, the revision with its
data, the template rewritten to the revision's copies, and the copies themselves."""

from __future__ import annotations

from typing import Any

from delivery.rollout import config
from delivery.rollout.config import CONFIG_MAP, COPY_LABEL, SECRET
from delivery.rollout.revision import HASH_LABEL, ROLLOUT_LABEL, replica_set, template_hash


def template() -> dict[str, Any]:
    """A pod template that names ConfigMaps and Secrets in every way a pod can."""
    return {
        "metadata": {"labels": {"app": "web"}},
        "spec": {
            "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "init-secret"}}]}],
            "containers": [
                {
                    "name": "app",
                    "image": "web:1",
                    "env": [
                        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "a"}}},
                        {"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                        {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "V", "value": "plain"},
                    ],
                    "envFrom": [{"configMapRef": {"name": "flags"}}],
                }
            ],
            "volumes": [
                {"name": "files", "configMap": {"name": "app"}},
                {"name": "tls", "secret": {"secretName": "tls"}},
                {
                    "name": "both",
                    "projected": {
                        "sources": [
                            {"configMap": {"name": "projected-map"}},
                            {"secret": {"name": "projected-secret"}},
                            {"serviceAccountToken": {"path": "token"}},
                        ]
                    },
                },
                {"name": "scratch", "emptyDir": {}},
            ],
        },
    }


def configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": CONFIG_MAP,
        "metadata": {"name": name, "namespace": "shop"},
        "data": data,
    }


def secret(name: str, data: dict[str, str], type_: str = "Opaque") -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": SECRET, "metadata": {"name": name, "namespace": "shop"}, "data": data}
    return {**body, "type": type_}


def test_every_way_a_pod_names_a_configmap_or_secret_is_found_each_once() -> None:
    assert config.references(template()) == (
        (CONFIG_MAP, "app"),  # an env key and a volume: once
        (CONFIG_MAP, "flags"),
        (CONFIG_MAP, "projected-map"),
        (SECRET, "db"),
        (SECRET, "init-secret"),
        (SECRET, "projected-secret"),
        (SECRET, "tls"),
    )
    assert config.references({"spec": {"containers": [{"name": "a", "image": "x"}]}}) == ()


def test_the_rewrite_renames_only_what_it_is_told_and_leaves_the_template_given_alone() -> None:
    original = template()
    renamed = config.rewrite(original, lambda kind, name: f"{name}-v2" if kind == SECRET else name)
    assert original == template()
    assert config.references(renamed) == (
        (CONFIG_MAP, "app"),
        (CONFIG_MAP, "flags"),
        (CONFIG_MAP, "projected-map"),
        (SECRET, "db-v2"),
        (SECRET, "init-secret-v2"),
        (SECRET, "projected-secret-v2"),
        (SECRET, "tls-v2"),
    )
    volumes = renamed["spec"]["volumes"]
    assert volumes[1]["secret"] == {"secretName": "tls-v2"}
    assert volumes[3] == {"name": "scratch", "emptyDir": {}}


def test_without_tracked_objects_the_revision_is_the_templates_own() -> None:
    released = config.release(template(), {}, "web")
    assert released.revision == template_hash(template())  # Rollouts from before tracking keep theirs
    assert released.template == template()
    assert released.copies == {}


def test_a_release_refers_to_its_own_copies_and_its_revision_follows_the_data() -> None:
    sources = {
        (CONFIG_MAP, "app"): configmap("app", {"a": "1"}),
        (SECRET, "db"): secret("db", {"password": "MQ=="}),
    }
    first = config.release(template(), sources, "web")
    assert first.revision != template_hash(template())
    assert first.tracked == ((CONFIG_MAP, "app"), (SECRET, "db"))
    names = {name for _kind, name in config.references(first.template)}
    assert {
        f"app-{first.revision}",
        f"db-{first.revision}",
        "tls",
        "flags",
    } <= names  # the others as they were
    assert not {"app", "db"} & names
    assert config.copies_in(first.template, first.revision) == {
        (CONFIG_MAP, "app"): f"app-{first.revision}",
        (SECRET, "db"): f"db-{first.revision}",
    }

    changed = {**sources, (CONFIG_MAP, "app"): configmap("app", {"a": "2"})}
    second = config.release(template(), changed, "web")
    assert second.revision != first.revision
    assert config.release(template(), sources, "web") == first  # the same data: the same revision
    metadata = {"name": "app", "namespace": "shop", "labels": {"other": "x"}, "resourceVersion": "9"}
    relabelled = {**sources, (CONFIG_MAP, "app"): {**configmap("app", {"a": "1"}), "metadata": metadata}}
    assert config.release(template(), relabelled, "web").revision == first.revision  # metadata is not data
    retyped = {**sources, (SECRET, "db"): secret("db", {"password": "MQ=="}, "kubernetes.io/basic-auth")}
    assert config.release(template(), retyped, "web").revision != first.revision


def test_a_copy_is_immutable_labelled_with_its_source_and_revision_and_keeps_the_data() -> None:
    sources = {
        (SECRET, "db"): secret("db", {"password": "MQ=="}),
        (CONFIG_MAP, "app"): configmap("app", {"a": "1"}),
    }
    released = config.release(template(), sources, "web")
    copy = released.copies[(SECRET, "db")]
    assert copy == {
        "apiVersion": "v1",
        "kind": SECRET,
        "metadata": {
            "name": f"db-{released.revision}",
            "namespace": "shop",
            "labels": {COPY_LABEL: "db", ROLLOUT_LABEL: "web", HASH_LABEL: released.revision},
        },
        "immutable": True,
        "data": {"password": "MQ=="},
        "type": "Opaque",
    }
    assert config.same_copy(copy, copy)
    squatter = {
        **configmap(copy["metadata"]["name"], {"other": "x"}),
        "metadata": {"name": "x", "labels": {}},
    }
    assert not config.same_copy(squatter, copy)


def test_the_replicaset_is_named_by_the_release_and_its_pods_use_the_copies() -> None:
    rollout = {"apiVersion": "delivery.luojilab.com/v1alpha1", "kind": "Rollout",
               "metadata": {"name": "web", "namespace": "shop", "uid": "u1"}}  # fmt: skip
    released = config.release(template(), {(CONFIG_MAP, "app"): configmap("app", {"a": "1"})}, "web")
    rs = replica_set(rollout, released.template, {"app": "web"}, 3, released.revision)
    assert rs["metadata"]["name"] == f"web-{released.revision}"
    assert rs["spec"]["selector"]["matchLabels"][HASH_LABEL] == released.revision
    pod = rs["spec"]["template"]
    assert pod["metadata"]["labels"][HASH_LABEL] == released.revision
    assert config.copies_in(pod, released.revision) == {(CONFIG_MAP, "app"): f"app-{released.revision}"}


def test_long_names_are_cut_so_the_copy_is_a_valid_name() -> None:
    name = config.copy_name("a" * 253, "0123456789")
    assert len(name) == 253
    assert name.endswith("-0123456789")


def test_a_service_account_token_secret_is_never_copied() -> None:
    token = secret("sa", {"token": "eA=="}, "kubernetes.io/service-account-token")
    problem = config.refused(token)
    assert problem is not None
    assert problem.reason == "SecretRefused"
    assert config.refused(secret("db", {})) is None
    assert config.refused(configmap("app", {})) is None


def test_ownership_is_exactly_the_one_owner() -> None:
    owner = {"uid": "rs-1"}
    copy = {"metadata": {"ownerReferences": [{"uid": "rollout-1"}]}}
    assert not config.owned_by(copy, owner)
    assert config.owned_by({"metadata": {"ownerReferences": [{"uid": "rs-1"}]}}, owner)
    assert not config.owned_by({"metadata": {}}, owner)
