"""Poll submitted Analytics jobs as one batch, and read each finished job's pages.

The poller knows jobs and their timing, not endpoints: one Retrieve Data call is the
``retrieve`` function it is given (the client's).
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import structlog

from agent.clock import Clock
from agent.collect.errors import JobTimeout, ResultTooLarge
from agent.collect.models import AnalyticsQuery

log = structlog.get_logger("agent.collect.analytics")

POLL_INITIAL = 0.5
POLL_MAX = 8.0
#: a job found done on its first retrieve shortens the next first wait by this factor
LATENCY_EASING = 0.9
#: threads polling one batch (the caller's among them)
POLL_THREADS = 4
#: hard stop for servers that ignore ``page`` and keep answering.
MAX_PAGES = 1000


@dataclass(frozen=True, eq=False)
class Page:
    """One Retrieve Data answer: its rows (raw, or parsed already as they were read) and
    the number of rows the whole result announces, if it does."""

    data: Sequence[Any]
    total: int | None = None


@dataclass(frozen=True, eq=False)
class Job:
    id: str
    paginated: bool
    start: date
    end: date
    query: AnalyticsQuery
    #: ``clock.monotonic()`` when it was submitted
    submitted: float
    #: rows dated before this are held by the caller already: they need not be parsed
    newer_than: datetime | None = None

    def __str__(self) -> str:
        return f"Analytics job {self.id} ({self.query.metric.value} {self.start}..{self.end})"

    @property
    def endpoint(self) -> str:
        return f"GET /analytics/v2/job/{quote(self.id, safe='')}/data"


#: retrieve(job, page): that page of the job's rows, or None while the job still runs
Retrieve = Callable[[Job, int], Page | None]


class JobPoller:
    def __init__(self, clock: Clock, retrieve: Retrieve) -> None:
        self.clock = clock
        self.retrieve = retrieve
        #: how long after submission jobs have been answering (None: not known yet)
        self.latency: float | None = None

    def collect(
        self,
        jobs: list[Job],
        timeout: float,
        done: Callable[[Job, Sequence[Any] | Exception], None],
    ) -> None:
        """Poll submitted jobs as one batch until each has its rows, failed or timed out
        (``timeout`` seconds after its submission); each outcome goes to ``done`` as soon
        as it is known.

        A few threads share the batch, earliest due first: while one waits for an answer
        (a big day of rows takes the server a while) or parses it, the others keep
        asking, so the rate limit rather than the answers' latency bounds a cycle.
        """
        # until a latency is known, ask at once (a fast server answers the first retrieve)
        first_wait = self.latency or 0.0
        # (when to ask, submission order, job, the pause after a "still running")
        due = [
            (job.submitted + first_wait, order, job, POLL_INITIAL) for order, job in enumerate(jobs)
        ]
        heapq.heapify(due)
        polls: dict[Job, int] = {}
        state = threading.Condition()
        # outcomes are handed over one at a time, outside ``state`` so that parsing one
        # answer never keeps the other threads from asking for theirs
        handing_over = threading.Lock()
        open_jobs = len(jobs)

        def next_job() -> tuple[float, int, Job, float] | None:
            with state:
                while not due and open_jobs:
                    state.wait()  # another thread holds the last jobs; one may come back
                return heapq.heappop(due) if due else None

        def settle(job: Job, outcome: Sequence[Any] | Exception) -> None:
            nonlocal open_jobs
            with handing_over:
                done(job, outcome)
            with state:
                open_jobs -= 1
                state.notify_all()

        def work() -> None:
            while (entry := next_job()) is not None:
                at, order, job, interval = entry
                wait = at - self.clock.monotonic()
                if wait > 0:
                    self.clock.sleep(wait)
                polls[job] = polls.get(job, 0) + 1
                deadline = job.submitted + timeout
                try:
                    first = self.retrieve(job, 0)
                    if first is not None:
                        self._observe_latency(job, polls[job])
                        rows = self._remaining_pages(job, first, deadline, timeout)
                except Exception as error:  # this job's verdict; the others go on
                    settle(job, error)
                    continue
                if first is not None:
                    settle(job, rows)
                    continue
                now = self.clock.monotonic()
                if now >= deadline:
                    settle(job, _timed_out(job, timeout, polls[job]))
                    continue
                log.debug("analytics.job.waiting", job_id=job.id, wait=interval)
                with state:
                    heapq.heappush(
                        due,
                        (min(now + interval, deadline), order, job, min(interval * 2, POLL_MAX)),
                    )
                    state.notify_all()

        threads = [
            threading.Thread(target=work, name=f"analytics-poll-{n}", daemon=True)
            for n in range(min(POLL_THREADS, len(jobs)) - 1)
        ]
        for thread in threads:
            thread.start()
        work()
        for thread in threads:
            thread.join()

    def _observe_latency(self, job: Job, polls: int) -> None:
        """Learn how long jobs take: first polls that find the rows done ease the wait
        down, a job that needed more polls sets it to how long that one took."""
        elapsed = self.clock.monotonic() - job.submitted
        if polls > 1 or self.latency is None:
            self.latency = elapsed if polls > 1 else None
        else:
            self.latency = max(POLL_INITIAL, self.latency * LATENCY_EASING)

    def _remaining_pages(
        self, job: Job, first: Page, deadline: float, timeout: float
    ) -> Sequence[Any]:
        if not job.paginated:
            return first.data
        rows = list(first.data)
        total = first.total
        previous = first.data
        for page in range(1, MAX_PAGES):
            if total is not None and len(rows) >= total:
                break
            if not previous or (total is None and len(previous) < len(first.data)):
                break  # an empty or short page is the last one
            answer_page = self._wait_for_page(job, page, deadline, timeout)
            if not answer_page.data:
                break
            if answer_page.data == previous:
                log.warning("analytics.page.repeated", job_id=job.id, page=page)
                break
            rows.extend(answer_page.data)
            previous = answer_page.data
        else:
            raise ResultTooLarge(
                f"{job} has more than {MAX_PAGES} pages; narrow the query (fewer days, "
                "services or stacks)",
                endpoint="GET /analytics/v2/job/{id}/data",
            )
        return rows

    def _wait_for_page(self, job: Job, page: int, deadline: float, timeout: float) -> Page:
        """Poll one further page until it has a ``data`` key, with doubling pauses."""
        interval = POLL_INITIAL
        polls = 0
        while True:
            polls += 1
            answer = self.retrieve(job, page)
            if answer is not None:
                return answer
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                raise _timed_out(job, timeout, polls)
            wait = min(interval, remaining)
            log.debug("analytics.job.waiting", job_id=job.id, page=page, wait=wait)
            self.clock.sleep(wait)
            interval = min(interval * 2, POLL_MAX)


def _timed_out(job: Job, timeout: float, polls: int) -> JobTimeout:
    return JobTimeout(
        f"{job} not finished after {timeout:.0f}s ({polls} polls)", endpoint=job.endpoint
    )
