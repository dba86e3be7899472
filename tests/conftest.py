"""Fixtures shared by several suites: a local HTTP receiver for webhook deliveries.

Also the Hypothesis profiles: no deadline and no too-slow health check, since both time
the machine rather than the code and fail on a busy one (example counts stay as each
test sets them); under CI the examples are derandomized, so that a failure there can be
replayed anywhere with ``--hypothesis-profile ci``.

Bytecode caches are written even where PYTHONDONTWRITEBYTECODE is set (this machine
image sets it): the run starts many Python processes (xdist workers, real daemons, CLI
runs), and without the caches each of them compiled the agent, and each worker the
rewritten test modules, all over again. The caches are the usual ``__pycache__``
folders, ignored by git.

And the order of the run: the run is parallel (pytest-xdist, ``-n`` in pyproject.toml),
one test file at a time per worker (``--dist loadfile``, so that a module-scoped fixture
starts once; ``--dist loadgroup`` would not do: with pytest 9.2 it no longer groups
anything, pytest-xdist issue 1386), in this order: the files that mostly wait on real
processes and a sped-up wall clock first, so they start on different workers at once
instead of queueing on one while the others finish early and sit idle.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # for the workers and subprocesses

settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", settings.get_profile("dev"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

#: node id prefixes of the tests that wait most, longest first: the browser tests, the
#: demo, real daemons, CLI runs against the simulator
WAITING_FIRST = ("tests/web/test_browser.py", "tests/test_demo.py", "tests/daemon/", "tests/cli/")


def _waiting_rank(item: pytest.Item) -> int:
    ranks = (n for n, prefix in enumerate(WAITING_FIRST) if item.nodeid.startswith(prefix))
    return next(ranks, len(WAITING_FIRST))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_waiting_rank)  # stable: the collection order within each rank


@pytest.fixture(autouse=True)
def _every_apprise_plugin() -> Iterator[None]:
    """A daemon run in a test's process keeps only the Apprise plugins its channels use
    (``plugins.keep_used_only``): the next test has them all again."""
    yield
    plugins = sys.modules.get("agent.notify.plugins")
    if plugins is not None and plugins._used is not None:
        plugins._used = None
        plugins.building(None)


@dataclass
class Received:
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class HttpReceiver:
    """Records JSON posts; ``fail`` makes it answer 503 (an outage), ``refuse()`` stops
    listening (connection refused) until ``accept()`` listens on the port again;
    ``close()`` lets the port go."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    fail: bool = False
    respond: Callable[[Received], tuple[int, dict[str, Any]]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    #: while refusing: the port, bound but not listening
    _hold: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def posts(self, path: str | None = None) -> list[Any]:
        with self.lock:
            return [r.body for r in self.requests if path is None or r.path.startswith(path)]

    def accept(self) -> None:
        """Listen (again, on the same port)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                item = Received(self.path, body, dict(self.headers))
                if receiver.fail:
                    status, answer = 503, {"error": "unavailable"}
                else:
                    with receiver.lock:
                        receiver.requests.append(item)
                    status, answer = receiver.respond(item) if receiver.respond else (202, {})
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._release()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        thread.start()

    def refuse(self) -> None:
        """Stop listening: connections are refused until ``accept``. The port stays bound
        (a socket that does not listen), so no other test's server is given it meanwhile
        and gets this test's notifications."""
        self._stop()
        self._hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._hold.bind(("127.0.0.1", self.port))

    def close(self) -> None:
        self._stop()
        self._release()

    def _stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def _release(self) -> None:
        hold, self._hold = self._hold, None
        if hold is not None:
            hold.close()


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    with serve_receiver() as receiver:
        yield receiver


@contextmanager
def serve_receiver() -> Iterator[HttpReceiver]:
    """An ``HttpReceiver`` listening on 127.0.0.1 (for fixtures of any scope)."""
    receiver = HttpReceiver()
    receiver.accept()
    yield receiver
    receiver.close()
