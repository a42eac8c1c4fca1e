"""Structured logs: every line says which object (namespace/name) and revision it is about.

The work queue sets the object around each reconcile and the reconcile sets the revision once it
knows it, in context variables; each reconcile runs in its own task, so the values never leak
from one object's lines into another's. A filter copies them onto every record, so library
loggers (kopf, httpx) get them too.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging

OBJECT: contextvars.ContextVar[str] = contextvars.ContextVar("delivery_object", default="")
REVISION: contextvars.ContextVar[str] = contextvars.ContextVar("delivery_revision", default="")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(where)s%(message)s"


class ObjectContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        target, revision = OBJECT.get(), REVISION.get()
        where = target + (f"@{revision}" if revision else "")
        record.__dict__.update(object=target, revision=revision, where=f"[{where}] " if where else "")
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, object, revision, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("object", "revision"):
            value = getattr(record, key, "")
            if value:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, form: str) -> None:
    """Log to stderr as `form` ('text' or 'json'), with the object context on each line."""
    handler = logging.StreamHandler()
    handler.addFilter(ObjectContext())
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
