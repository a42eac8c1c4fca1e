"""The load balancer client against the contract served for real on loopback (tests/fakes/lb_server.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from delivery.component.loadbalancer import (
    Backoff,
    Listener,
    LoadBalancerClient,
    LoadBalancerError,
    Protocol,
)
from tests.fakes.lb_server import LoadBalancerServer
from tests.waiting import eventually

FAST = Backoff(attempts=4, start=0.01, cap=0.05)
LISTENERS = [Listener(80, 30080), Listener(53, 30053, Protocol.UDP)]


@pytest.fixture
def server() -> Iterator[LoadBalancerServer]:
    with LoadBalancerServer() as running:
        yield running


@pytest.fixture
async def lb(server: LoadBalancerServer) -> AsyncIterator[LoadBalancerClient]:
    client = LoadBalancerClient(server.url, timeout=0.3, backoff=FAST)
    yield client
    await client.close()


async def test_a_create_repeated_with_its_token_finds_the_first(
    lb: LoadBalancerClient, server: LoadBalancerServer
) -> None:
    first = await lb.create("shop-orders", "component-uid-1", {"team": "shop"})
    again = await lb.create("shop-orders", "component-uid-1", {"team": "shop"})
    assert again == first
    assert first.address
    assert [b["id"] for b in server.balancers()] == [first.id]
    assert await lb.find("component-uid-1") == first
    assert await lb.find("component-uid-2") is None


async def test_a_create_retried_after_server_errors_makes_one(
    lb: LoadBalancerClient, server: LoadBalancerServer
) -> None:
    server.misbehave(fail_next=2, status=503)
    made = await lb.create("web", "token-a", {})
    posts = [seen for seen in server.seen() if seen.method == "POST"]
    assert [seen.status for seen in posts] == [503, 503, 201]
    assert {seen.token for seen in posts} == {"token-a"}
    assert [b["id"] for b in server.balancers()] == [made.id]


async def test_a_create_whose_answer_was_lost_is_found_by_the_retry(
    lb: LoadBalancerClient, server: LoadBalancerServer
) -> None:
    server.misbehave(drop_next=1, methods=frozenset({"POST"}))
    made = await lb.create("web", "token-b", {})
    assert [seen.status for seen in server.seen()] == [0, 200]  # created, answer lost; then found
    assert [b["id"] for b in server.balancers()] == [made.id]


async def test_a_slow_service_times_out_and_is_retried(
    lb: LoadBalancerClient, server: LoadBalancerServer
) -> None:
    server.misbehave(delay=0.6)
    with pytest.raises(LoadBalancerError) as raised:
        await lb.get("lb-000001")
    assert raised.value.status == 0
    assert raised.value.retryable
    eventually(lambda: len(server.seen()) == FAST.attempts, timeout=5, what="every attempt answered")


async def test_a_refusal_is_not_retried(lb: LoadBalancerClient, server: LoadBalancerServer) -> None:
    await lb.create("web", "token-c", {})
    with pytest.raises(LoadBalancerError) as raised:
        await lb.create("other", "token-c", {})
    assert (raised.value.status, raised.value.code) == (409, "ClientTokenReused")
    assert not raised.value.retryable
    assert len(server.seen()) == 2


async def test_bind_replaces_listeners_and_backends(lb: LoadBalancerClient) -> None:
    made = await lb.create("web", "token-d", {})
    bound = await lb.bind(made.id, LISTENERS, ["10.0.0.2", "10.0.0.1"])
    assert bound.binds(LISTENERS, ["10.0.0.1", "10.0.0.2"])
    rebound = await lb.bind(made.id, LISTENERS[:1], ["10.0.0.3"])
    assert not rebound.binds(LISTENERS, ["10.0.0.1", "10.0.0.2"])
    assert await lb.get(made.id) == rebound


async def test_delete_releases_and_a_second_delete_is_fine(
    lb: LoadBalancerClient, server: LoadBalancerServer
) -> None:
    made = await lb.create("web", "token-e", {})
    await lb.delete(made.id)
    await lb.delete(made.id)
    assert server.balancers() == []
    assert await lb.get(made.id) is None
    with pytest.raises(LoadBalancerError) as raised:
        await lb.bind(made.id, LISTENERS, [])
    assert raised.value.status == 404


async def test_errors_say_the_services_code_and_message(
    lb: LoadBalancerClient, server: LoadBalancerServer
) -> None:
    server.misbehave(fail_next=FAST.attempts, status=500)
    with pytest.raises(LoadBalancerError, match="500 Unavailable: failing on purpose"):
        await lb.create("web", "token-f", {})
    assert server.balancers() == []


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [Backoff(start=0.5, cap=3).delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
