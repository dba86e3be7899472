"""The scheduler's beat in real threads (APScheduler's own timing, a short real wait)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from agent.clock import SystemClock
from agent.daemon.scheduler import EvaluationScheduler

from .support import wait_until


def test_the_beat_goes_on_when_its_successor_is_due_before_it_returned() -> None:
    """Each beat schedules the next in its ``finally``; on a busy machine (or a fast demo
    clock) the next falls due before that run has returned. It must wait its turn: skipped,
    the one-shot successor would be dropped and no notification sent again."""
    scheduler = EvaluationScheduler(SystemClock(), lambda _group, _wait: None)
    schedule = scheduler._schedule_beat
    beats: list[float] = []
    running = threading.Lock()
    overlapped: list[bool] = []

    def slow_to_return(job: Callable[[], None], delay: float) -> None:
        schedule(job, delay)
        time.sleep(0.2)  # the run is still going when its successor falls due

    def beat() -> None:
        overlapped.append(not running.acquire(blocking=False))
        beats.append(time.monotonic())
        running.release()

    scheduler._schedule_beat = slow_to_return  # type: ignore[method-assign]
    scheduler.add_beat(timedelta(0), beat)
    scheduler.start()
    try:
        wait_until(lambda: len(beats) >= 3, 20, "three beats")
    finally:
        scheduler.shutdown()
    assert not any(overlapped)
