"""A cycle that queued notifications wakes the notify beat: they leave at once, not up to
an interval later."""

from __future__ import annotations

import threading
from datetime import timedelta

from agent.clock import SystemClock
from agent.daemon.scheduler import EvaluationScheduler

from .support import wait_until


def test_a_woken_beat_runs_now_and_a_wake_during_a_beat_runs_it_again() -> None:
    runs: list[int] = []
    inside = threading.Event()
    release = threading.Event()

    def beat() -> None:
        runs.append(len(runs))
        if len(runs) == 2:  # the second beat is held until woken meanwhile
            inside.set()
            release.wait(30)

    scheduler = EvaluationScheduler(SystemClock(), lambda _label, _wait: None)
    scheduler.add_beat(timedelta(hours=1), beat)  # never again on its own within the test
    scheduler.start()
    try:
        wait_until(lambda: len(runs) == 1, 30, "the first beat")
        scheduler.wake_beat()
        wait_until(inside.is_set, 30, "a woken beat")
        scheduler.wake_beat()  # while it runs: what it already claimed is not all
        release.set()
        wait_until(lambda: len(runs) == 3, 30, "a beat right after the woken one")
    finally:
        release.set()
        scheduler.shutdown()
