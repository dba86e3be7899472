"""Each action kind, guardrail and failure against the simulator: the audit trail says what
happened, and the simulator's request log shows that nothing else was called."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from agent.evaluate.alerts import AlertState
from agent.remediate import Guardrail, Outcome
from agent.simulator import Fault, Incident

from .conftest import (
    DRAFT,
    NOTIFY,
    NOW,
    PROJECT,
    PURGE,
    PURGE_KEY,
    World,
    actions,
    transition,
)

pytestmark = pytest.mark.timeout(60)

PATCH_NOTIFY = ("PATCH", f"/v1/projects/{PROJECT}/automations/{NOTIFY}")
TRIGGER_PURGE = ("POST", "/automations-api/run/purge-cache")


def outcomes(world: World) -> list[tuple[str, str, str | None]]:
    return [
        (r.action, r.outcome.value, r.guardrail.value if r.guardrail else None)
        for r in world.audit()
    ]


# -- trigger --------------------------------------------------------------------------------


def test_trigger_with_key_runs_the_automation_and_reports_its_execution(world: World) -> None:
    rem = world.remediator(actions=actions("purge"))
    world.fire(rem, "purge")
    [record] = rem.run_once()

    assert record.outcome is Outcome.SUCCEEDED
    assert record.detail["execution_status"] == "success"
    assert outcomes(world) == [("purge", "attempted", None), ("purge", "succeeded", None)]
    [call] = [r for r in world.sim.requests if r.path.startswith("/automations-api/")]
    assert call.headers["ah-http-key"] == PURGE_KEY
    assert json.loads(call.body) == {
        "reason": f"runaway-automation fired on {NOTIFY}",
        "value": "7.0",
    }
    assert "authtoken" not in call.headers  # the trigger URL is its own credential
    assert world.calls(writes_only=True) == [TRIGGER_PURGE]
    assert PURGE_KEY not in json.dumps([r.to_json() for r in world.audit()])
    assert (
        "ran automation Purge CDN cache through its HTTP trigger in project Operations"
        in (world.announced[-1])
    )
    assert ("purge", "succeeded") in world.counted


def test_trigger_without_key_on_an_open_trigger_and_by_get(world: World) -> None:
    open_trigger = {
        "name": "notify-get",
        "kind": "trigger",
        "trigger": "notify-publish",
        "method": "GET",
        "project": PROJECT,
        "automation_title": "Notify on publish",
    }
    rem = world.remediator(actions=[open_trigger])
    world.fire(rem, "notify-get")
    [record] = rem.run_once()

    assert record.outcome is Outcome.SUCCEEDED, record.message
    assert record.automation == NOTIFY
    [call] = [r for r in world.sim.requests if r.path.startswith("/automations-api/")]
    assert (call.method, call.body, "ah-http-key" in call.headers) == ("GET", b"", False)


def test_trigger_missing_key_is_a_401_failure_called_once(world: World) -> None:
    rem = world.remediator(actions=actions("purge", purge={"http_key": None}))
    world.fire(rem, "purge")
    [record] = rem.run_once()

    assert (record.outcome, record.detail["http_status"]) == (Outcome.FAILED, 401)
    assert world.calls(writes_only=True) == [TRIGGER_PURGE]
    assert "failed to run automation Purge CDN cache" in world.announced[-1]


def test_not_activated_answer_is_a_failure(world: World) -> None:
    world.sim.add_fault(Fault("not_activated", path_prefix="/automations-api/run/purge-cache"))
    rem = world.remediator(actions=actions("purge"))
    world.fire(rem, "purge")
    [record] = rem.run_once()

    assert record.outcome is Outcome.FAILED
    assert record.detail["not_activated"] is True
    assert world.calls(writes_only=True) == [TRIGGER_PURGE]
    executions = world.clients.automations.list_executions(PROJECT)
    assert not [e for e in executions if e.automation_id == PURGE]


@pytest.mark.parametrize(("status", "calls"), [(404, 1), (422, 1), (500, 1), (502, 1), (429, 2)])
def test_trigger_failures(world: World, status: int, calls: int) -> None:
    # a trigger is not repeated on an answer that may mean it ran (5xx); 429 means it did not
    world.sim.add_fault(
        Fault("http_status", path_prefix="/automations-api/", status=status, retry_after=0)
    )
    rem = world.remediator(actions=actions("purge"))
    world.fire(rem, "purge")
    [record] = rem.run_once()

    assert (record.outcome, record.detail["http_status"]) == (Outcome.FAILED, status)
    assert world.calls(writes_only=True) == [TRIGGER_PURGE] * calls


def test_execution_that_failed_makes_the_action_failed(world: World) -> None:
    world.sim.scenario.incidents.append(
        Incident("automation_failures", NOW, NOW + timedelta(hours=1), automation=NOTIFY)
    )
    failing = {
        "name": "notify-run",
        "kind": "trigger",
        "trigger": "notify-publish",
        "project": PROJECT,
        "automation": NOTIFY,
    }
    rem = world.remediator(actions=[failing])
    world.fire(rem, "notify-run")
    [record] = rem.run_once()
    assert (record.outcome, record.detail["execution_status"]) == (Outcome.FAILED, "failed")
    assert "Execution" in world.announced[-1] and "failed" in world.announced[-1]


# -- disable, enable, revert ----------------------------------------------------------------


def test_disable_reads_back_and_reverts_on_resolve(world: World) -> None:
    rem = world.remediator(actions=actions("disable-runaway"))
    fired_at = world.clock.now()
    world.fire(rem, "disable-runaway")
    [record] = rem.run_once()

    assert record.outcome is Outcome.SUCCEEDED
    assert (record.detail["read_back"], record.detail["prior_active"]) == (False, True)
    assert record.automation_title == "Notify on publish"
    assert not world.active(NOTIFY)
    patch = [r for r in world.sim.requests if r.method == "PATCH"]
    assert [json.loads(r.body) for r in patch] == [{"active": False}]
    assert world.announced[-1].startswith(
        "Stackwatch disabled automation Notify on publish in project Operations because rule "
        "runaway-automation fired: 7 failed runs in 15m."
    )

    world.clock.advance(timedelta(minutes=20))
    world.resolve(rem, "disable-runaway", since=fired_at)
    [revert] = rem.run_once()
    assert (revert.outcome, revert.kind, revert.detail["read_back"]) == (
        Outcome.SUCCEEDED,
        "enable",
        True,
    )
    assert world.active(NOTIFY)
    assert world.calls(writes_only=True) == [PATCH_NOTIFY, PATCH_NOTIFY]
    assert "re-enabled automation Notify on publish" in world.announced[-1]


def test_no_revert_when_a_person_re_enabled_it(world: World) -> None:
    rem = world.remediator(actions=actions("disable-runaway"))
    fired_at = world.clock.now()
    world.fire(rem, "disable-runaway")
    rem.run_once()
    world.clock.advance(timedelta(minutes=5))
    world.clients.automations.enable(PROJECT, NOTIFY)  # an operator, in the UI
    world.clock.advance(timedelta(minutes=5))
    world.clients.automations.disable(PROJECT, NOTIFY)  # ... and off again, by hand
    world.sim.clear_requests()

    world.resolve(rem, "disable-runaway", since=fired_at)
    [revert] = rem.run_once()
    assert (revert.outcome, revert.guardrail) == (Outcome.SKIPPED, Guardrail.CHANGED_MEANWHILE)
    assert world.calls(writes_only=True) == []
    assert not world.active(NOTIFY)


def test_revert_skips_when_re_enabled_and_left_on(world: World) -> None:
    rem = world.remediator(actions=actions("disable-runaway"))
    fired_at = world.clock.now()
    world.fire(rem, "disable-runaway")
    rem.run_once()
    world.clients.automations.enable(PROJECT, NOTIFY)
    world.sim.clear_requests()
    world.resolve(rem, "disable-runaway", since=fired_at)
    [revert] = rem.run_once()
    assert (revert.outcome, revert.guardrail) == (Outcome.SKIPPED, Guardrail.CHANGED_MEANWHILE)
    assert world.calls(writes_only=True) == []


def test_already_disabled_is_not_disabled_again_and_not_reverted(world: World) -> None:
    world.clients.automations.disable(PROJECT, NOTIFY)
    world.sim.clear_requests()
    rem = world.remediator(actions=actions("disable-runaway"))
    fired_at = world.clock.now()
    world.fire(rem, "disable-runaway")
    [record] = rem.run_once()
    assert (record.outcome, record.guardrail) == (Outcome.SKIPPED, Guardrail.ALREADY_DONE)
    assert record.detail == {"prior_active": False}

    world.resolve(rem, "disable-runaway", since=fired_at)
    [revert] = rem.run_once()
    assert revert.guardrail is Guardrail.NOT_DISABLED_BY_STACKWATCH
    assert world.calls(writes_only=True) == []
    assert not world.active(NOTIFY)


def test_enable_by_title(world: World) -> None:
    world.clients.automations.disable(PROJECT, NOTIFY)
    world.sim.clear_requests()
    enable = {
        "name": "enable-notify",
        "kind": "enable",
        "project": PROJECT,
        "automation_title": "notify on publish",
        "when": "resolved",
    }
    rem = world.remediator(actions=[enable])
    world.resolve(rem, "enable-notify", since=world.clock.now() - timedelta(minutes=10))
    [record] = rem.run_once()
    assert (record.outcome, record.automation) == (Outcome.SUCCEEDED, NOTIFY)
    assert world.active(NOTIFY)
    assert world.calls(writes_only=True) == [PATCH_NOTIFY]


@pytest.mark.parametrize(
    ("fault", "automation", "status", "patches"),
    [
        (401, NOTIFY, 401, 1),
        (None, "0" * 32, 404, 0),  # the lookup fails: nothing is patched
        (None, DRAFT, 422, 1),  # no configured trigger and action: the API refuses
        (429, NOTIFY, 429, 2),
        (500, NOTIFY, 500, 2),  # {"active": ...} twice is harmless: retried
        (502, NOTIFY, 502, 2),
    ],
)
def test_set_active_failures(
    world: World, fault: int | None, automation: str, status: int, patches: int
) -> None:
    path = f"/v1/projects/{PROJECT}/automations/{automation}"
    if fault is not None:
        world.sim.add_fault(
            Fault("http_status", path_prefix=path, status=fault, retry_after=0, method="PATCH")
        )
    kind = "enable" if automation == DRAFT else "disable"  # the draft is inactive
    action = {"name": "set", "kind": kind, "project": PROJECT, "automation": automation}
    rem = world.remediator(actions=[action], allowlist=[automation])
    world.fire(rem, "set")
    [record] = rem.run_once()

    assert (record.outcome, record.detail.get("http_status")) == (Outcome.FAILED, status)
    assert world.calls(writes_only=True) == [("PATCH", path)] * patches
    assert world.active(NOTIFY)
    assert (
        f"failed to {kind if kind == 'disable' else 're-enable'} automation" in world.announced[-1]
    )


# -- guardrails -----------------------------------------------------------------------------


def test_dry_run_records_and_announces_and_calls_nothing(world: World) -> None:
    rem = world.remediator(actions=actions("purge", "disable-runaway"), dry_run=True)
    world.sim.clear_requests()
    world.fire(rem, "purge", "disable-runaway")
    records = rem.run_once()

    assert [r.outcome for r in records] == [Outcome.DRY_RUN, Outcome.DRY_RUN]
    assert world.sim.requests == []
    assert [t.split(" (")[0] for t in world.announced] == [
        "Stackwatch would run automation "
        f"{PURGE} through its HTTP trigger in project {PROJECT} because rule runaway-automation"
        " fired: 7 failed runs in 15m",
        f"Stackwatch would disable automation {NOTIFY} in project {PROJECT} because rule "
        "runaway-automation fired: 7 failed runs in 15m",
    ]


def test_disabled_remediation_skips_and_calls_nothing(world: World) -> None:
    rem = world.remediator(actions=actions("purge"), enabled=False, allowlist=[])
    world.sim.clear_requests()
    world.fire(rem, "purge")
    [record] = rem.run_once()
    assert (record.outcome, record.guardrail) == (Outcome.SKIPPED, Guardrail.DISABLED)
    assert world.sim.requests == []
    assert world.announced == []


def test_cooldown_per_action(world: World) -> None:
    rem = world.remediator(actions=actions("purge", purge={"cooldown": "30m"}))
    world.fire(rem, "purge")
    rem.run_once()
    world.clock.advance(timedelta(minutes=10))
    world.fire(rem, "purge", labels={"stack": "other"})  # another alert, same action
    [second] = rem.run_once()
    assert (second.outcome, second.guardrail) == (Outcome.SKIPPED, Guardrail.COOLDOWN)
    world.clock.advance(timedelta(minutes=21))
    world.fire(rem, "purge", labels={"stack": "third"})
    [third] = rem.run_once()
    assert third.outcome is Outcome.SUCCEEDED
    assert world.calls(writes_only=True) == [TRIGGER_PURGE, TRIGGER_PURGE]


def test_hourly_cap_over_all_actions(world: World) -> None:
    rem = world.remediator(actions=actions("purge", "disable-runaway"), max_actions_per_hour=1)
    world.fire(rem, "purge", "disable-runaway")
    first, second = rem.run_once()
    assert first.outcome is Outcome.SUCCEEDED
    assert (second.outcome, second.guardrail) == (Outcome.SKIPPED, Guardrail.HOURLY_CAP)
    assert world.calls(writes_only=True) == [TRIGGER_PURGE]
    assert "the hourly cap of actions is reached" in world.announced[-1]


def test_allowlist(world: World) -> None:
    rem = world.remediator(
        actions=actions("purge", "disable-runaway"), allowlist=["Purge CDN cache"]
    )
    world.sim.clear_requests()
    world.fire(rem, "purge", "disable-runaway")
    purge, disable = rem.run_once()
    assert purge.outcome is Outcome.SUCCEEDED  # allowed by title, resolved through the API
    assert (disable.outcome, disable.guardrail) == (Outcome.SKIPPED, Guardrail.ALLOWLIST)
    assert world.calls(writes_only=True) == [TRIGGER_PURGE]
    assert world.active(NOTIFY)


@pytest.mark.parametrize("guard", [Guardrail.NODATA, Guardrail.ERROR, Guardrail.SOURCE_DOWN])
def test_no_action_on_untrustworthy_data(world: World, guard: Guardrail) -> None:
    world.health.guard = guard
    rem = world.remediator(actions=actions("purge", "disable-runaway"))
    world.sim.clear_requests()
    world.fire(rem, "purge", "disable-runaway")
    records = rem.run_once()
    assert [(r.outcome, r.guardrail) for r in records] == [(Outcome.SKIPPED, guard)] * 2
    assert world.sim.requests == []


def test_firing_for_waits_and_is_skipped_once_no_longer_firing(world: World) -> None:
    rem = world.remediator(actions=actions("purge", purge={"when": "firing_for", "after": "10m"}))
    world.fire(rem, "purge")
    assert rem.run_once() == []  # not due yet
    world.clock.advance(timedelta(minutes=10))
    [ran] = rem.run_once()
    assert ran.outcome is Outcome.SUCCEEDED

    later = transition(("purge",), AlertState.FIRING, at=world.clock.now(), labels={"stack": "b"})
    world.submit(rem, later)
    world.health.stopped.add(later.fingerprint)  # it resolves before its 10 minutes are up
    world.clock.advance(timedelta(minutes=10))
    [skipped] = rem.run_once()
    assert (skipped.outcome, skipped.guardrail) == (Outcome.SKIPPED, Guardrail.NO_LONGER_FIRING)
    assert world.calls(writes_only=True) == [TRIGGER_PURGE]


def test_disable_due_after_its_alert_resolved_is_moot_and_so_is_the_revert(world: World) -> None:
    rem = world.remediator(actions=actions("disable-runaway"))
    fired_at = world.clock.now()
    world.fire(rem, "disable-runaway")
    world.clock.advance(timedelta(minutes=5))
    world.resolve(rem, "disable-runaway", since=fired_at)  # both due before the runner ran
    world.health.stopped.add(transition((), AlertState.FIRING, at=fired_at).fingerprint)
    records = rem.run_once()
    assert [r.guardrail for r in records] == [
        Guardrail.NO_LONGER_FIRING,
        Guardrail.NOT_DISABLED_BY_STACKWATCH,
    ]
    assert world.calls(writes_only=True) == []
    assert world.active(NOTIFY)


def test_min_severity(world: World) -> None:
    rem = world.remediator(actions=actions("purge", purge={"min_severity": "critical"}))
    world.fire(rem, "purge", severity="warning")
    assert rem.run_once() == []
    assert world.audit() == []
