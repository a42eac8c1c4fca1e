"""Each log line carries the object and revision it is about, as text or as JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from delivery.ops import logs


def formatted(form: str, message: str) -> str:
    logs.configure("INFO", form)
    handler = logging.getLogger().handlers[0]
    record = logging.getLogger("delivery.test").makeRecord(
        "delivery.test", logging.INFO, "f", 1, message, (), None
    )
    assert handler.filter(record)  # the filter adds the context
    return handler.format(record)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_name_the_object_and_revision() -> None:
    object_token = logs.OBJECT.set("shop/web")
    revision_token = logs.REVISION.set("5d8f")
    try:
        line = json.loads(formatted("json", "scaled up"))
    finally:
        logs.OBJECT.reset(object_token)
        logs.REVISION.reset(revision_token)
    assert {key: line[key] for key in ("level", "logger", "message", "object", "revision")} == {
        "level": "INFO",
        "logger": "delivery.test",
        "message": "scaled up",
        "object": "shop/web",
        "revision": "5d8f",
    }


def test_lines_outside_a_reconcile_carry_no_object() -> None:
    assert "object" not in json.loads(formatted("json", "started"))
    assert formatted("text", "started").endswith("INFO delivery.test: started")


def test_text_lines_put_the_object_first() -> None:
    token = logs.OBJECT.set("shop/web")
    try:
        assert formatted("text", "paused").endswith("delivery.test: [shop/web] paused")
    finally:
        logs.OBJECT.reset(token)
