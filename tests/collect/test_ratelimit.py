"""The client-side limiter: N per second in every window, pauses, sharing per organization."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
import respx

from agent.clock import ManualClock
from agent.collect import Clients, RateLimiter, shared_limiter

from .conftest import AUTOMATIONS


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    """Most requests in any half-open window [t, t + window)."""
    ordered = sorted(times)
    best = 0
    for i, start in enumerate(ordered):
        inside = [t for t in ordered[i:] if t < start + window]
        best = max(best, len(inside))
    return best


def test_never_more_than_capacity_in_any_window() -> None:
    clock = ManualClock()
    limiter = RateLimiter(10, clock)
    admitted = []
    for _ in range(35):
        with limiter.slot():
            admitted.append(clock.monotonic())
    assert max_in_any_window(admitted) == 10
    # the 11th waits for the 1st to leave the window, the 21st for the 11th, ...
    assert admitted[10] > admitted[0] + 1.0 - 1e-9
    assert len(clock.sleeps) == 3


def test_fractional_rate_rounds_down() -> None:
    clock = ManualClock()
    limiter = RateLimiter(2.5, clock)
    admitted = []
    for _ in range(6):
        with limiter.slot():
            admitted.append(clock.monotonic())
    assert limiter.capacity == 2
    assert max_in_any_window(admitted) == 2


def test_low_remaining_waits_for_the_window_to_roll() -> None:
    clock = ManualClock()
    limiter = RateLimiter(10, clock)
    with limiter.slot():
        pass
    limiter.observe("10", "5")
    with limiter.slot():
        pass
    assert clock.sleeps == []
    limiter.observe("10", "2")
    with limiter.slot():
        pass
    assert clock.sleeps == [1.0]


def test_server_limit_lower_than_ours_is_adopted() -> None:
    limiter = RateLimiter(10, ManualClock())
    limiter.observe("4", None)
    assert limiter.capacity == 4
    limiter.observe("junk", "junk")
    assert limiter.capacity == 4


def test_one_limiter_per_organization_and_clock() -> None:
    clock = ManualClock()
    first = shared_limiter("org-a", 10, clock)
    assert shared_limiter("org-a", 8, clock) is first
    assert first.capacity == 8
    assert shared_limiter("org-b", 10, clock) is not first
    assert shared_limiter("org-a", 10, ManualClock()) is not first


def test_in_flight_requests_hold_their_slots() -> None:
    clock = ManualClock()
    limiter = RateLimiter(2, clock)
    limiter.acquire()
    limiter.acquire()
    acquired = threading.Event()

    def third() -> None:
        limiter.acquire()
        acquired.set()

    worker = threading.Thread(target=third)
    worker.start()
    assert not acquired.wait(0.2)  # both slots busy, no time passes on a ManualClock
    limiter.release()
    clock.advance(1.01)
    assert acquired.wait(2)
    worker.join()


def test_rate_limit_headers_slow_the_clients_down(
    router: respx.MockRouter, make_clients: Callable[..., Clients], clock: ManualClock
) -> None:
    clients = make_clients()
    router.get(f"{AUTOMATIONS}/v1/projects").mock(
        return_value=httpx.Response(
            200,
            json={"projects": []},
            headers={"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "1"},
        )
    )
    clients.automations.list_projects()
    clients.automations.list_projects()
    assert clock.sleeps == [1.0]


def test_429_pauses_every_thread_of_the_organization(
    router: respx.MockRouter, make_clients: Callable[..., Clients], clock: ManualClock
) -> None:
    clients = make_clients()
    route = router.get(f"{AUTOMATIONS}/v1/projects")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "4"}),
        httpx.Response(200, json={"projects": []}),
    ]
    clients.automations.list_projects()
    # the limiter's pause ends exactly when the retrying thread wakes up: no double wait
    assert clock.sleeps == [4.0]
    other = clients.http.limiter
    other.acquire()
    other.release()
    assert clock.sleeps == [4.0]
