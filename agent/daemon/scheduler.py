"""APScheduler 3 wiring: one interval job per rule group, plus the notifier beat.

Jobs coalesce (a backlog of missed runs becomes one run), never overlap themselves
(``max_instances=1``), and start with a little jitter so groups of one interval do not
hit the API in the same instant. A run that starts late still runs: a cycle evaluates at
the moment it runs, not at the moment it was due, so lateness makes nothing stale, while
skipping late runs would leave a busy machine with no cycles at all. Intervals are
agent-clock spans turned into wall seconds, so a sped-up clock (demos, tests) schedules
proportionally faster.

The notifier beat is not a fixed-rate job: each run schedules the next one an interval
after it ends, so a slow delivery stretches the gap instead of piling up runs that
would be refused. A rule group that overruns its interval is reported once per streak
of skipped runs, not once per skip.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    JobEvent,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from agent.clock import Clock, real_seconds
from agent.daemon.grouping import RuleGroup

log = structlog.get_logger(__name__)

GROUP_PREFIX = "rules-"
BEAT_ID = "notify-beat"
#: jitter: a tenth of the interval, never more than this many wall seconds.
MAX_JITTER = 5.0

GroupRunner = Callable[[RuleGroup], None]
WaitObserver = Callable[[str, float], None]


class EvaluationScheduler:
    def __init__(self, clock: Clock, on_wait: WaitObserver, workers: int = 8) -> None:
        self.clock = clock
        self._on_wait = on_wait
        self._scheduler = BackgroundScheduler(
            executors={
                "default": ThreadPoolExecutor(workers),
                # its own thread: slow evaluations must never hold back notifications
                "beat": ThreadPoolExecutor(1),
            },
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self._scheduler.add_listener(self._executed, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        self._scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)
        self._cond = threading.Condition()
        self._running = 0
        self._started: dict[str, datetime] = {}
        self._labels: dict[str, str] = {}
        #: runs skipped since the job last ran, per job (reported on the first skip)
        self._skips: dict[str, int] = {}
        self._beat: Callable[[], None] | None = None
        #: set by ``wake_beat``; a beat that ends with it set runs again at once
        self._woken = threading.Event()
        #: makes "read ``_woken``, schedule the next beat" one step against a wake: else
        #: a beat ending as a wake arrives could replace the wake's run with its later one
        self._beat_lock = threading.Lock()
        #: the rule jobs of start-up that have not run yet, and since when they wait
        self._first_runs: set[str] = set()
        self._first_runs_since = 0.0

    # -- jobs -------------------------------------------------------------------------

    def sync_groups(
        self,
        groups: Sequence[RuleGroup],
        run: GroupRunner,
        delays: Mapping[str, float] | None = None,
    ) -> None:
        """Make the rule jobs match ``groups``: unchanged groups keep their timing, new
        ones first run now, or ``delays[job_id]`` wall seconds from now (start-up:
        ``first_cycles_done`` is logged once each of them has run)."""
        wanted = {group.job_id: group for group in groups}
        now = datetime.now(UTC)
        if delays is not None:
            self._first_runs, self._first_runs_since = set(wanted), time.monotonic()
        for job in self._scheduler.get_jobs():
            if job.id.startswith(GROUP_PREFIX) and job.id not in wanted:
                self._scheduler.remove_job(job.id)
                self._labels.pop(job.id, None)
        for job_id, group in wanted.items():
            if self._scheduler.get_job(job_id) is not None:
                continue
            seconds = max(real_seconds(group.interval, self.clock), 0.05)
            self._labels[job_id] = group.label
            self._scheduler.add_job(
                self._wrap(job_id, functools.partial(run, group)),
                IntervalTrigger(seconds=seconds, jitter=min(seconds / 10, MAX_JITTER)),
                id=job_id,
                name=group.label,
                next_run_time=now + timedelta(seconds=(delays or {}).get(job_id, 0.0)),
                misfire_grace_time=None,
            )
        log.info("rule_jobs", jobs=[g.label for g in groups])

    def add_beat(self, interval: timedelta, beat: Callable[[], None]) -> None:
        """Run ``beat`` now and then ``interval`` after each run ends (never overlapping)."""
        seconds = max(real_seconds(interval, self.clock), 0.05)
        run = self._wrap(BEAT_ID, beat)

        def beat_then_schedule_next() -> None:
            self._woken.clear()
            try:
                run()
            finally:
                with self._beat_lock:
                    if self._scheduler.running:
                        # woken while it ran: what was queued meanwhile leaves at once
                        delay = 0.0 if self._woken.is_set() else seconds
                        self._schedule_beat(beat_then_schedule_next, delay)

        self._beat = beat_then_schedule_next
        self._schedule_beat(beat_then_schedule_next, 0.0)

    def wake_beat(self) -> None:
        """Run the beat now rather than up to an interval later (a cycle has queued
        notifications: detection latency is the cycle's, not the beat's)."""
        with self._beat_lock:
            self._woken.set()
            if self._beat is not None and self._scheduler.running:
                self._schedule_beat(self._beat, 0.0)

    def _schedule_beat(self, job: Callable[[], None], delay: float) -> None:
        self._scheduler.add_job(
            job,
            DateTrigger(datetime.now(UTC) + timedelta(seconds=delay)),
            id=BEAT_ID,
            name="notify beat",
            executor="beat",
            misfire_grace_time=None,
            replace_existing=True,
            # scheduled from the ``finally`` of the run before, which has not returned yet:
            # on a busy machine the successor falls due first, and with one instance
            # allowed it would be skipped and, a one-shot trigger, the beat gone for good.
            # Its one thread still runs beats one at a time.
            max_instances=2,
        )

    def _wrap(self, job_id: str, body: Callable[[], None]) -> Callable[[], None]:
        def job() -> None:
            with self._cond:
                self._running += 1
            self._started[job_id] = datetime.now(UTC)
            try:
                body()
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

        return job

    def _skipped(self, event: JobEvent) -> None:
        skips = self._skips.get(event.job_id, 0) + 1
        self._skips[event.job_id] = skips
        if skips == 1:
            log.warning(
                "run_skipped",
                job=self._labels.get(event.job_id, event.job_id),
                why="previous run still going",
            )

    def _executed(self, event: JobExecutionEvent) -> None:
        skipped = self._skips.pop(event.job_id, 0)
        if skipped > 1:
            log.warning("runs_skipped", job=self._labels.get(event.job_id), count=skipped)
        started = self._started.pop(event.job_id, None)
        label = self._labels.get(event.job_id)
        if started is not None and label is not None:
            wait = (started - event.scheduled_run_time).total_seconds()
            self._on_wait(label, max(wait, 0.0))
        if event.exception is not None:
            log.error("job_crashed", job=event.job_id, error=str(event.exception))
        with self._cond:
            if event.job_id not in self._first_runs:
                return
            self._first_runs.discard(event.job_id)
            if not self._first_runs:  # the daemon has evaluated every rule once
                waited = time.monotonic() - self._first_runs_since
                log.info("first_cycles_done", jobs=len(self._labels), seconds=round(waited, 3))

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._scheduler.start()

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def pause(self) -> None:
        """No new runs; runs in flight go on."""
        self._scheduler.pause()

    def wait_idle(self, timeout: float) -> bool:
        """Wait for the runs in flight; False if some are still running at the timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._running == 0, timeout)

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
