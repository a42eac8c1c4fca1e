"""A real HTTP server on loopback for the providers: good answers on demand, and the three answers
a per-operation timeout and an unbounded read cannot survive. The first part of the path says which:

- `/drip...`: the headers at once, then the body one byte a second, forever (until the client leaves);
- `/hang...`: the connection accepted and the request read, then nothing, ever;
- `/huge...`: a 100 MiB body (one JSON string of zeros), sent as fast as the client reads it; the bytes
  that got out before the client left are counted, so a test can tell the client stopped reading;
- anything else: the answer set for that path in `answers` (404 without one).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from delivery.tls import LOCAL_HOSTS, self_signed

HUGE = 100 * 1024 * 1024
_ZEROS = b"0" * 65536  # 64 KiB of the huge body at a time: the server holds no more than this


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lowercased
    body: bytes


@dataclass
class Loopback:
    url: str
    answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    huge_sent: list[int] = field(default_factory=list)  # per /huge request, once it has ended
    stop: threading.Event = field(default_factory=threading.Event)

    def huge_ended(self, timeout: float = 5.0) -> list[int]:
        """The bytes each /huge answer got out, once every one of them has ended (the client gone)."""
        started = sum(1 for seen in self.seen if seen.path.startswith("/huge"))
        deadline = time.monotonic() + timeout
        while len(self.huge_sent) < started:
            assert time.monotonic() < deadline, "a /huge answer is still being sent"
            time.sleep(0.05)
        return self.huge_sent


class _Server(ThreadingHTTPServer):
    loopback: Loopback


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        state = self.server.loopback
        split = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        state.seen.append(Seen(self.command, split.path, parse_qs(split.query), headers, body))
        mode = split.path.split("/")[1]
        try:
            if mode == "hang":
                state.stop.wait()
            elif mode == "drip":
                self._headers(200, HUGE)
                while not state.stop.is_set():
                    self.wfile.write(b" ")
                    state.stop.wait(1.0)
            elif mode == "huge":
                self._huge(state)
            else:
                status, answer = state.answers.get(split.path, (404, b"no answer set"))
                self._headers(status, len(answer))
                self.wfile.write(answer)
        except OSError:  # the client left, as it should when an answer is too slow or too large
            return

    def _headers(self, status: int, length: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _huge(self, state: Loopback) -> None:
        self._headers(200, HUGE)
        sent = 0
        try:
            self.wfile.write(b'"')
            sent = 1
            while sent + len(_ZEROS) < HUGE - 1:
                self.wfile.write(_ZEROS)
                sent += len(_ZEROS)
            self.wfile.write(_ZEROS[: HUGE - 1 - sent] + b'"')
            sent = HUGE
        finally:
            state.huge_sent.append(sent)

    def log_message(self, *_: Any) -> None:  # quiet: pytest shows failures, not access logs
        return


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    yield from _serving(_Server(("127.0.0.1", 0), _Handler), "http")


@pytest.fixture
def tls_loopback(tmp_path: Path) -> Iterator[tuple[Loopback, Path]]:
    """The same server behind TLS, its certificate for 127.0.0.1 signed by a CA of its own (the
    CA's file is the second item: trusted by nobody unless a test says so)."""
    material = self_signed(LOCAL_HOSTS, common_name="loopback")
    certificate, key = material.write(tmp_path)
    ca = tmp_path / "ca.crt"
    ca.write_bytes(material.ca)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    for served in _serving(server, "https"):
        yield served, ca


def _serving(server: _Server, scheme: str) -> Iterator[Loopback]:
    server.loopback = Loopback(f"{scheme}://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.loopback
    server.loopback.stop.set()  # ends the hanging and dripping answers
    server.shutdown()
    server.server_close()
    thread.join()
