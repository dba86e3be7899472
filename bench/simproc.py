"""The simulator in a child process, so its CPU never competes with the agent's for the GIL.

The parent reads the child's request log (arrival times on the machine-wide monotonic
clock, paths and statuses) through a pipe: requests are counted where they arrive.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

AUTHTOKEN = "bench-token"
ORGANIZATION = "bench-org"


@dataclass(frozen=True)
class Arrival:
    path: str
    status: int
    received_at: float


def _serve(conn: Connection, stacks: int, job_duration: float, incidents: list[Any]) -> None:
    from agent.clock import SystemClock
    from agent.simulator import Scenario, Simulator, Stack

    scenario = Scenario(
        name="bench",
        seed=3,
        stacks=[Stack(stack_key(i), f"stack-{i}") for i in range(stacks)],
        incidents=incidents,
    )
    with Simulator(
        scenario,
        clock=SystemClock(),
        authtoken=AUTHTOKEN,
        organization_uid=ORGANIZATION,
        job_duration=job_duration,
    ) as sim:
        conn.send(sim.url)
        while True:
            command = conn.recv()
            if command == "log":
                conn.send([(r.path, r.status, r.received_at) for r in sim.requests])
            elif command == "clear":
                sim.clear_requests()
                conn.send(True)
            else:
                conn.send(True)
                return


def stack_key(index: int) -> str:
    return f"blt_bench_{index:03d}"


class SimulatorProcess:
    def __init__(
        self, stacks: int, *, job_duration: float = 2.0, incidents: list[Any] | None = None
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, stacks, job_duration, incidents or []), daemon=True
        )
        self.url = ""

    def __enter__(self) -> SimulatorProcess:
        self._process.start()
        self.url = self._conn.recv()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._conn.send("stop")
        self._conn.recv()
        self._process.join(timeout=10)

    def arrivals(self) -> list[Arrival]:
        self._conn.send("log")
        return [Arrival(*row) for row in self._conn.recv()]

    def clear(self) -> None:
        self._conn.send("clear")
        self._conn.recv()


def peak_rate(arrivals: list[Arrival], window: float = 1.0) -> int:
    """Most requests that arrived within any ``window`` seconds."""
    times = sorted(a.received_at for a in arrivals)
    best = 0
    low = 0
    for high, at in enumerate(times):
        while times[low] <= at - window:
            low += 1
        best = max(best, high - low + 1)
    return best
