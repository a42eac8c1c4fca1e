"""Rendering jinja2 text someone else wrote, in a worker process, within a time and an output budget.

The sandboxes bound what a template may touch, not how long it runs or how much it writes: two
nested `range(100000)` loops run for hours, and the event loop that ran them would stop renewing
the Lease. A thread cannot be stopped, and pure Python cannot be interrupted safely in-process, so
such text renders in one of a few worker processes (`WORKERS`, started on demand: a fresh
interpreter on a socket pair, ~75 ms; not multiprocessing's spawn or forkserver, which import the
controller's `__main__` into each worker). The caller waits for the reply at most `TIME_BUDGET`;
past it the worker is killed and the next render starts a fresh one. The worker streams the output
(`generate`) and stops once it passes `OUTPUT_BUDGET` characters, so a huge text is never built
nor sent. Either is a `BudgetExceeded` that says which budget. A template error comes back as the
same jinja2 error; any other exception (`range` beyond the sandbox's MAX_RANGE, say) as a
TemplateError naming it.

The wait blocks the calling thread, never the loop's: async callers use `off_loop`, a thread pool
of its own, so waiting renders never hold up the default executor (aiohttp's DNS lookups).

Cost, measured on the 2-core development machine: a round trip of one analysis text takes
0.10 ms; a Component renders in 1.10 ms with the shipped templates in-process, 1.38 ms with one
replaced template in a worker, 3.03 ms with all of them (+0.4 ms each: the values sent are a few
KB). So AnalysisTemplates always render in a worker (anyone who may edit a Deployment may write
one; one round trip per metric), and of a Component's templates only those a ConfigMap replaced:
the shipped ones are ours and keep the common case at its old cost.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any, ParamSpec, TypeVar

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

TIME_BUDGET = 2.0
START_TIMEOUT = 30.0  # seconds a new worker may take to import what it renders with
"""Seconds one render (all the texts of one job) may take."""
OUTPUT_BUDGET = 1 << 20
"""Characters one render may produce (1 MiB of ASCII: a Component's objects are a few KB)."""
WORKERS = 2
"""Worker processes at most: renders are short, a looping one holds a worker for TIME_BUDGET only."""
_ORPHAN_GRACE = 1.0
"""A worker whose parent died cannot be killed by it: it ends itself this long after the budget."""

P = ParamSpec("P")
T = TypeVar("T")


class BudgetExceeded(Exception):
    """A render took longer than TIME_BUDGET or produced more than OUTPUT_BUDGET."""


class Failed(Exception):
    """Template `name` of a job failed; `error` is jinja2's error as the worker saw it."""

    def __init__(self, name: str, error: jinja2.TemplateError) -> None:
        super().__init__(f"{name}: {error}")
        self.name = name
        self.error = error


@dataclass(frozen=True)
class Syntax:
    """How a set of templates is read: the sandbox and the whitespace rules, the same in and out of
    the worker (undefined values are errors either way)."""

    immutable: bool = False
    trim_blocks: bool = False

    def environment(self, sources: Mapping[str, str] | None = None) -> SandboxedEnvironment:
        kind = ImmutableSandboxedEnvironment if self.immutable else SandboxedEnvironment
        return kind(
            loader=jinja2.DictLoader(dict(sources)) if sources is not None else None,
            undefined=jinja2.StrictUndefined,
            trim_blocks=self.trim_blocks,
            lstrip_blocks=self.trim_blocks,
            autoescape=False,  # queries and YAML, not HTML
        )


@dataclass(frozen=True)
class Job:
    """Render `names` of `sources` (which may include each other) with `context`."""

    syntax: Syntax
    sources: Mapping[str, str]
    names: Sequence[str]
    context: Mapping[str, Any]


# -- the worker ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _environment(syntax: Syntax, digest: str, sources: tuple[tuple[str, str], ...]) -> SandboxedEnvironment:
    del digest  # part of the key only: cheaper to compare than the sources
    return syntax.environment(dict(sources))


def _digest(sources: Mapping[str, str]) -> str:
    hashed = hashlib.sha256()
    for name in sorted(sources):
        hashed.update(f"{name}\0{sources[name]}\0".encode())
    return hashed.hexdigest()


def _reply(job: Job) -> tuple[Any, ...]:
    """What the worker sends back: ("ok", texts), ("output",), or ("failed", name, kind, message, line)."""
    environment = _environment(job.syntax, _digest(job.sources), tuple(sorted(job.sources.items())))
    texts, produced = [], 0
    for name in job.names:
        chunks = []
        try:
            for chunk in environment.get_template(name).generate(job.context):
                produced += len(chunk)
                if produced > OUTPUT_BUDGET:
                    return ("output",)
                chunks.append(chunk)
        except jinja2.TemplateSyntaxError as error:
            return ("failed", name, "syntax", str(error), error.lineno)
        except jinja2.UndefinedError as error:
            return ("failed", name, "undefined", str(error), None)
        except jinja2.TemplateError as error:
            return ("failed", name, "template", str(error), None)
        except Exception as error:
            return ("failed", name, "template", f"{type(error).__name__}: {error}", None)
        texts.append("".join(chunks))
    return ("ok", texts)


def _orphaned(_signal: int, _frame: FrameType | None) -> None:
    os._exit(1)


def serve(descriptor: int) -> None:
    """A worker's life: a job in, its reply out, until the socket closes (the controller is gone)."""
    connection = Connection(descriptor)
    signal.signal(signal.SIGALRM, _orphaned)
    connection.send(("ready",))  # imported: from now on a render's time is the render's own
    while True:
        try:
            job = connection.recv()
        except EOFError:
            return
        signal.setitimer(signal.ITIMER_REAL, TIME_BUDGET + _ORPHAN_GRACE)
        reply = _reply(job)
        signal.setitimer(signal.ITIMER_REAL, 0)
        connection.send(reply)


# -- the controller's side ---------------------------------------------------------------------------


def _rebuilt(name: str, kind: str, message: str, line: int | None) -> Failed:
    error: jinja2.TemplateError
    if kind == "syntax":
        error = jinja2.TemplateSyntaxError(message, line or 0, name)
        error.translated = True  # its str() is the message, as jinja2's own after get_template
    elif kind == "undefined":
        error = jinja2.UndefinedError(message)
    else:
        error = jinja2.TemplateError(message)
    return Failed(name, error)


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    connection: Connection

    @classmethod
    def start(cls) -> _Worker:
        ours, theirs = socket.socketpair()
        with theirs:
            code = f"import {__name__} as worker; worker.serve({theirs.fileno()})"
            process = subprocess.Popen(
                [sys.executable, "-c", code], pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL
            )
        worker = cls(process, Connection(ours.detach()))
        # Starting is not rendering: a loaded machine (a controller restarting beside others) can
        # take seconds to import jinja2, which must not count against a template's TIME_BUDGET.
        try:
            if not worker.connection.poll(START_TIMEOUT) or worker.connection.recv() != ("ready",):
                raise BudgetExceeded(f"no template worker started within {START_TIMEOUT:g}s")
        except (EOFError, OSError) as error:
            worker.kill()
            raise BudgetExceeded("the template worker ended as it started") from error
        except BudgetExceeded:
            worker.kill()
            raise
        return worker

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.connection.close()


class Pool:
    """Up to `size` workers, each serving one render at a time; thread-safe. A render holds a slot
    while it runs; it takes an idle worker, or starts one when none is (at first, and in place of
    one that was killed)."""

    def __init__(self, size: int = WORKERS) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()

    def render(self, job: Job) -> list[str]:
        """The texts of `job.names`, in order; Failed, or BudgetExceeded, otherwise."""
        with self._slots:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                worker = _Worker.start()
            else:
                if worker.process.poll() is not None:  # killed while idle (OOM killer, say): replaced
                    worker.connection.close()
                    worker = _Worker.start()
            try:
                worker.connection.send(job)
                if not worker.connection.poll(TIME_BUDGET):
                    raise BudgetExceeded(f"took longer than {TIME_BUDGET:g}s to render")
                reply = worker.connection.recv()
            except (EOFError, OSError) as error:  # it died: out of memory, say
                worker.kill()
                raise BudgetExceeded("ended the worker that rendered it") from error
            except BaseException:
                worker.kill()
                raise
            self._idle.put(worker)
        if reply[0] == "output":
            raise BudgetExceeded(f"produced more than {OUTPUT_BUDGET >> 20} MiB")
        if reply[0] == "failed":
            raise _rebuilt(*reply[1:])
        texts: list[str] = reply[1]
        return texts


POOL = Pool()
"""The process's workers, shared by analysis and Components."""
_WAITERS = ThreadPoolExecutor(max_workers=2 * WORKERS + 2, thread_name_prefix="template-wait")


async def off_loop(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)`, which may wait for a worker, run in a thread of its own."""
    return await asyncio.get_running_loop().run_in_executor(
        _WAITERS, functools.partial(function, *args, **kwargs)
    )
