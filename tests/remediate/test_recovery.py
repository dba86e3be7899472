"""A runner that dies mid-action: the next one neither loses the action nor repeats a call
that went out (a trigger is looked up in the execution log first)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from agent.remediate import Outcome

from .conftest import NOTIFY, World, actions

pytestmark = pytest.mark.timeout(60)

TRIGGER_PURGE = ("POST", "/automations-api/run/purge-cache")


class Crash(BaseException):
    """Stands for SIGKILL: nothing after it runs (the real-process test is in tests/daemon)."""


def crash_in(
    monkeypatch: pytest.MonkeyPatch, owner: object, method: str, *, after_call: bool
) -> None:
    """Make ``owner.method`` die, after doing its work or before."""
    real = getattr(owner, method)

    def dying(*args: Any, **kwargs: Any) -> Any:
        if after_call:
            real(*args, **kwargs)
        raise Crash

    monkeypatch.setattr(owner, method, dying)


def test_trigger_that_went_out_before_a_crash_is_not_repeated(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rem = world.remediator(actions=actions("purge"))
    world.fire(rem, "purge")
    crash_in(monkeypatch, world.clients.trigger, "call", after_call=True)
    with pytest.raises(Crash):
        rem.run_once()
    monkeypatch.undo()
    restarted = world.remediator(actions=actions("purge"))
    assert restarted.run_once() == []  # the dead runner's lease still holds
    world.clock.advance(timedelta(minutes=3))
    [record] = restarted.run_once()

    assert record.outcome is Outcome.SUCCEEDED
    assert record.detail["recovered"] is True
    assert record.detail["execution_status"] == "success"
    assert world.calls(writes_only=True) == [TRIGGER_PURGE]
    assert [r.outcome for r in world.audit()] == [Outcome.ATTEMPTED, Outcome.SUCCEEDED]
    assert restarted.run_once() == []


def test_trigger_that_had_not_gone_out_is_made_once_after_a_crash(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rem = world.remediator(actions=actions("purge"))
    world.fire(rem, "purge")
    crash_in(monkeypatch, world.clients.trigger, "call", after_call=False)
    with pytest.raises(Crash):
        rem.run_once()
    monkeypatch.undo()
    world.clock.advance(timedelta(minutes=3))
    [record] = world.remediator(actions=actions("purge")).run_once()

    assert record.outcome is Outcome.SUCCEEDED
    assert world.calls(writes_only=True) == [TRIGGER_PURGE]
    attempts = [r for r in world.audit() if r.outcome is Outcome.ATTEMPTED]
    assert [a.detail.get("retried_after_restart") for a in attempts] == [None, True]


def test_disable_that_landed_before_a_crash_is_verified_and_still_reverted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rem = world.remediator(actions=actions("disable-runaway"))
    fired_at = world.clock.now()
    world.fire(rem, "disable-runaway")
    crash_in(monkeypatch, world.clients.automations, "set_active", after_call=True)
    with pytest.raises(Crash):
        rem.run_once()
    monkeypatch.undo()
    world.clock.advance(timedelta(minutes=3))
    restarted = world.remediator(actions=actions("disable-runaway"))
    [record] = restarted.run_once()
    assert (record.outcome, record.detail["recovered"]) == (Outcome.SUCCEEDED, True)
    patches = [json.loads(r.body) for r in world.sim.requests if r.method == "PATCH"]
    assert patches == [{"active": False}]

    world.resolve(restarted, "disable-runaway", since=fired_at)
    [revert] = restarted.run_once()
    assert revert.outcome is Outcome.SUCCEEDED
    assert world.active(NOTIFY)
