"""The pure decisions of the luoji-slb step: when a load balancer is wanted, what it forwards where,
and how the Service's annotations change owner."""

from __future__ import annotations

from typing import Any

from delivery.api.component import LoadBalancerStatus
from delivery.component.loadbalancer import Listener, Protocol
from delivery.component.render import LOAD_BALANCER_ANNOTATION
from delivery.component.slb import (
    ADDRESS_ANNOTATION,
    ID_ANNOTATION,
    backends,
    bound_service,
    client_token,
    listeners,
    service_patch,
)

ALIYUN_ID = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-id"
ALIYUN_SPEC = "service.beta.kubernetes.io/alicloud-loadbalancer-spec"
LB = LoadBalancerStatus(id="lb-000001", address="10.200.0.2")


def service(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"kind": "Service", "metadata": {"name": name, "annotations": annotations or {}}}


def test_the_service_to_bind_is_the_one_the_render_marked() -> None:
    marked = service("web", {LOAD_BALANCER_ANNOTATION: "luoji-slb"})
    deployment = {"kind": "Deployment", "metadata": {"name": "web"}}
    assert bound_service([deployment, service("web-canary"), marked]) == "web"
    assert bound_service([deployment, service("web")]) is None


def test_one_listener_per_node_port() -> None:
    service = {
        "spec": {
            "ports": [
                {"port": 80, "targetPort": 8080, "nodePort": 30080},
                {"port": 53, "protocol": "UDP", "nodePort": 30053},
                {"port": 9090},  # no node port yet: nothing to forward to
            ]
        }
    }
    assert listeners(service) == [Listener(80, 30080), Listener(53, 30053, Protocol.UDP)]


def test_backends_are_schedulable_nodes_internal_addresses() -> None:
    def node(address: str, *, unschedulable: bool = False) -> dict[str, Any]:
        addresses = [{"type": "Hostname", "address": "n"}, {"type": "InternalIP", "address": address}]
        return {"spec": {"unschedulable": unschedulable}, "status": {"addresses": addresses}}

    nodes = [node("10.0.0.9"), node("10.0.0.1"), node("10.0.0.5", unschedulable=True), {"status": {}}]
    assert backends(nodes) == ["10.0.0.1", "10.0.0.9"]


def test_the_token_follows_the_components_life() -> None:
    assert client_token({"metadata": {"uid": "u-1"}}) != client_token({"metadata": {"uid": "u-2"}})


def test_switching_from_aliyun_removes_its_annotations_and_names_ours() -> None:
    service = {"metadata": {"annotations": {ALIYUN_ID: "lb-x", ALIYUN_SPEC: "slb.s1.small", "team": "shop"}}}
    assert service_patch(service, LB) == {
        "metadata": {
            "annotations": {
                ALIYUN_ID: None,
                ALIYUN_SPEC: None,
                ID_ANNOTATION: LB.id,
                ADDRESS_ANNOTATION: LB.address,
            }
        }
    }


def test_no_patch_when_the_service_already_names_the_load_balancer() -> None:
    service = {"metadata": {"annotations": {ID_ANNOTATION: LB.id, ADDRESS_ANNOTATION: LB.address}}}
    assert service_patch(service, LB) is None


def test_releasing_removes_only_our_annotations() -> None:
    service = {
        "metadata": {"annotations": {ID_ANNOTATION: LB.id, ADDRESS_ANNOTATION: LB.address, "team": "x"}}
    }
    assert service_patch(service, None) == {
        "metadata": {"annotations": {ID_ANNOTATION: None, ADDRESS_ANNOTATION: None}}
    }
    assert service_patch({"metadata": {}}, None) is None
