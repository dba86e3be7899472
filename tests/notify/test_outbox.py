"""The durable outbox: retries, restarts, concurrent deliverers, dead letters."""

from __future__ import annotations

import socket
import threading

from agent.notify.outbox import DEAD

from .conftest import json_url


def config(receiver, *, urls=None, **outbox):
    return {
        "channels": [
            {"name": "hook", "urls": urls or [json_url(receiver, "hook")]},
            {"name": "fallback", "urls": [json_url(receiver, "fallback")]},
        ],
        "route": {"channels": ["hook"], "group_wait": "0s", "group_by": ["..."]},
        "outbox": {
            "retry_initial": "1m",
            "retry_max": "10m",
            "dead_letter_after": "1h",
            "claim_timeout": "5m",
            "dead_letter_channel": "fallback",
            **outbox,
        },
    }


def fail_on(receiver, prefix):
    receiver.respond = lambda item: (503, {}) if item.path.startswith(prefix) else (202, {})


def test_redelivery_after_an_outage_with_backoff(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(config(http_receiver))
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    notifier.tick()
    http_receiver.fail = True
    report = notifier.deliver()
    assert (report.claimed, report.delivered, report.retrying) == (1, 0, 1)
    assert "503" in report.errors[0] or "hook" in report.errors[0]
    assert notifier.deliver().claimed == 0  # backing off
    clock.advance(61)
    assert notifier.deliver().retrying == 1  # second failure: now waits 2 minutes
    clock.advance(61)
    assert notifier.deliver().claimed == 0
    http_receiver.fail = False
    clock.advance(60)
    assert notifier.deliver().delivered == 1
    assert len(http_receiver.posts()) == 1
    assert notifier.outbox_counts() == {"delivered": 1}


def test_unreachable_receiver_fails_fast_and_retries(make_notifier, alerts, clock, http_receiver):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    notifier = make_notifier(
        config(http_receiver, urls=[f"json://127.0.0.1:{closed}/x?cto=0.5&rto=0.5"])
    )
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    notifier.tick()
    assert notifier.deliver().retrying == 1


def test_only_failed_destinations_are_retried(make_notifier, alerts, clock, http_receiver):
    urls = [json_url(http_receiver, "a"), json_url(http_receiver, "b")]
    notifier = make_notifier(config(http_receiver, urls=urls))
    fail_on(http_receiver, "/b")
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    notifier.tick()
    assert notifier.deliver().retrying == 1
    http_receiver.respond = None
    clock.advance(60)
    assert notifier.deliver().delivered == 1
    assert [r.path for r in http_receiver.requests] == ["/a", "/b", "/b"]  # /b: 503 then OK


def test_survives_a_restart_and_reclaims_expired_claims(
    make_notifier, alerts, clock, http_receiver
):
    first = make_notifier(config(http_receiver))
    first.submit([alerts.t("HighErrors", "firing", stack=s) for s in ("a", "b", "c")])
    first.tick()
    claimed = first.outbox.claim(2)  # ...and the process dies before sending them
    assert len(claimed) == 2

    second = make_notifier(config(http_receiver))  # a new process, same SQLite file
    report = second.deliver()
    assert (report.claimed, report.delivered) == (1, 1)  # the unclaimed row
    clock.advance(301)  # the dead process's claims expire
    assert second.deliver().delivered == 2
    assert len(http_receiver.posts()) == 3
    assert second.deliver().claimed == 0


def test_two_concurrent_deliverers_never_send_twice(make_notifier, alerts, clock, http_receiver):
    a = make_notifier(config(http_receiver))
    b = make_notifier(config(http_receiver))
    a.submit([alerts.t("HighErrors", "firing", stack=f"s{i}") for i in range(30)])
    a.tick()
    barrier = threading.Barrier(2)
    reports = []

    def work(notifier):
        barrier.wait()
        while True:
            report = notifier.deliver(max_items=3)
            reports.append(report)
            if report.claimed == 0:
                return

    threads = [threading.Thread(target=work, args=(n,)) for n in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    titles = [post["message"].split("\n")[0] for post in http_receiver.posts()]
    assert len(titles) == 30 and len(set(titles)) == 30
    assert sum(r.delivered for r in reports) == 30


def test_dead_letter_after_max_age(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(config(http_receiver))
    fail_on(http_receiver, "/hook")
    before = DEAD.labels("hook")._value.get()
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    notifier.tick()
    dead = 0
    for _ in range(20):
        dead += notifier.deliver().dead
        clock.advance(600)
    assert dead == 1
    assert DEAD.labels("hook")._value.get() == before + 1
    assert notifier.outbox_counts() == {"dead": 1, "delivered": 1}
    [meta] = http_receiver.posts("/fallback")
    assert meta["title"] == "Stackwatch: notification undeliverable"
    assert "HighErrors" in meta["message"] and "channel 'hook'" in meta["message"]
    hook_attempts = [r for r in http_receiver.requests if r.path == "/hook"]
    assert 5 <= len(hook_attempts) <= 9  # 1m, 2m, 4m, 8m, then every 10m until 1h
    row = notifier.store.connection().execute("SELECT * FROM notify_dead_letters").fetchone()
    assert row["channel"] == "hook" and row["attempts"] == len(hook_attempts)
