"""Analytics jobs: submitted by a metric endpoint, read back through Retrieve Data.

A job is "active" for ``job_duration`` seconds of ``clock.monotonic()`` (so tests
advance a ManualClock instead of sleeping), then either done or failed. Its data is
cut off at the simulated "now" of submission and computed once, on first read, so
every page of one job comes from the same snapshot.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from agent.clock import Clock
from agent.simulator.analytics import AnalyticsRequest, Result

#: Jobs that would produce more time buckets than this fail like over-long ranges.
MAX_BUCKETS = 200_000


class JobState(StrEnum):
    ACTIVE = "active"
    DONE = "done"
    FAILED = "failed"


@dataclass
class Job:
    id: str
    org: str
    request: AnalyticsRequest
    submitted: float
    now: datetime
    never_finishes: bool = False
    failed: bool = False
    result: Result | None = None


class JobStore:
    def __init__(self, clock: Clock, job_duration: float, max_range_days: int) -> None:
        self._clock = clock
        self.job_duration = job_duration
        self.max_range_days = max_range_days
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, org: str, request: AnalyticsRequest, *, never_finishes: bool) -> Job:
        job = Job(
            id=uuid.uuid4().hex,
            org=org,
            request=request,
            submitted=self._clock.monotonic(),
            now=self._clock.now(),
            never_finishes=never_finishes,
            failed=self.fails(request),
        )
        with self._lock:
            self._jobs[job.id] = job
        return job

    def fails(self, request: AnalyticsRequest) -> bool:
        # The real API accepts an over-long range and only the job fails. The bucket cap is
        # the simulator's own guard (e.g. 90 days by the second would be 7.8 M rows).
        return request.days > self.max_range_days or request.buckets > MAX_BUCKETS

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def state(self, job: Job) -> JobState:
        if job.never_finishes or self._clock.monotonic() - job.submitted < self.job_duration:
            return JobState.ACTIVE
        return JobState.FAILED if job.failed else JobState.DONE

    def result(self, job: Job, compute: Callable[[Job], Result]) -> Result:
        # Computed outside the lock: it is pure, so a rare double computation is harmless.
        if job.result is None:
            job.result = compute(job)
        return job.result
