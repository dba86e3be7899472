"""Faults scripted at run time: transport failures and misbehaving Analytics jobs.

``http_status``, ``slow``, ``timeout``, ``disconnect`` (closed without an answer),
``reset`` (a TCP reset instead of an answer), ``truncated`` (the answer's headers and half
its body, then closed) and ``malformed_json`` act on any request whose path starts with
``path_prefix``; ``job_never_finishes`` acts when a job
is submitted on a matching path and ``job_failed`` when Retrieve Data is called on one;
``not_activated`` makes an HTTP trigger on a matching path answer that its automation is
being tested or not activated (as one in test mode does), starting nothing.
A fault applies with ``probability`` and is used up after ``times`` applications.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

REQUEST_FAULTS = frozenset(
    {"http_status", "slow", "timeout", "disconnect", "reset", "truncated", "malformed_json"}
)
JOB_FAULTS = frozenset({"job_never_finishes", "job_failed"})
TRIGGER_FAULTS = frozenset({"not_activated"})
FAULT_KINDS = REQUEST_FAULTS | JOB_FAULTS | TRIGGER_FAULTS


@dataclass(frozen=True)
class Fault:
    kind: str
    path_prefix: str = "/"
    #: how many times it applies; None = until cleared.
    times: int | None = None
    probability: float = 1.0
    #: http_status: the status to answer.
    status: int = 500
    #: slow: seconds before answering; timeout: seconds before dropping the connection.
    delay: float = 0.0
    #: http_status: value of a Retry-After header, if any.
    retry_after: float | None = None
    #: only requests with this HTTP method (e.g. "PATCH"); None = any method.
    method: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(FAULT_KINDS)}")
        if self.times is not None and self.times < 1:
            raise ValueError("fault times must be None or at least 1")
        if not 0 <= self.probability <= 1:
            raise ValueError("fault probability must be within [0, 1]")
        if not 100 <= self.status <= 599:
            raise ValueError("fault status must be an HTTP status")
        if self.delay < 0:
            raise ValueError("fault delay must not be negative")


@dataclass
class _Entry:
    fault: Fault
    remaining: int | None


class FaultSet:
    """The active faults, in the order they were added; the first that applies wins."""

    def __init__(self, seed: int = 0) -> None:
        self._entries: list[_Entry] = []
        self._lock = threading.Lock()
        # Seeded so that probabilistic faults replay the same way run after run.
        self._random = random.Random(seed)

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._entries.append(_Entry(fault, fault.times))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def active(self) -> list[Fault]:
        with self._lock:
            return [entry.fault for entry in self._entries]

    def take(self, path: str, kinds: frozenset[str], method: str | None = None) -> Fault | None:
        """The first fault of one of ``kinds`` that applies to ``path`` (and ``method``),
        consuming one use."""
        with self._lock:
            for entry in self._entries:
                fault = entry.fault
                if fault.kind not in kinds or not path.startswith(fault.path_prefix):
                    continue
                if fault.method is not None and method is not None and fault.method != method:
                    continue
                if fault.probability < 1 and self._random.random() >= fault.probability:
                    continue
                if entry.remaining is not None:
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        self._entries.remove(entry)
                return fault
            return None
