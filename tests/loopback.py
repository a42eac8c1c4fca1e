"""HTTP servers on loopback that tests point the controller at: a metric endpoint that answers one
constant JSON document (so web measurements are deterministic and cost nothing), and a web hook
that records every JSON body POSTed to it, by path (so one server can tell many tests apart)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free loopback port until the block ends; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Quiet(BaseHTTPRequestHandler):
    """A handler that logs no access lines."""

    def log_message(self, *_: Any) -> None:  # pytest shows failures, not access logs
        return


@contextlib.contextmanager
def constant(document: Any) -> Iterator[str]:
    """Answer every GET, whatever its path, with `document` as JSON; the base URL."""
    body = json.dumps(document).encode()

    class Handler(Quiet):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as url:
        yield url


@dataclass
class Received:
    """What a recording hook was sent: the JSON bodies POSTed to each path, in arrival order."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    bodies: dict[str, list[Any]] = field(default_factory=dict)
    url: str = ""

    def at(self, path: str) -> list[Any]:
        with self.lock:
            return list(self.bodies.get(path, ()))


@contextlib.contextmanager
def recording() -> Iterator[Received]:
    """A web hook that answers 200 to every POST and keeps its JSON body under its path."""
    received = Received()

    class Handler(Quiet):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with received.lock:
                received.bodies.setdefault(self.path, []).append(body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serving(Handler) as url:
        received.url = url
        yield received
