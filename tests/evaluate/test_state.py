"""Every transition of the alert state machine, driven by explicit times."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.evaluate.alerts import AlertState
from agent.evaluate.state import SETTLED, InstanceState, Verdict, holds_firing, observe, step

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def run(verdicts, *, for_=timedelta(0), clear_for=timedelta(0)):
    state = InstanceState()
    states = []
    for minute, verdict in enumerate(verdicts):
        state = step(state, verdict, T0 + minute * MIN, value=1.0, for_=for_, clear_for=clear_for)
        states.append(state.state)
    return state, states


B, C, N, X, E = Verdict.BREACHED, Verdict.CLEARED, Verdict.BETWEEN, Verdict.NODATA, Verdict.ERROR
INACT, P, F, R = AlertState.INACTIVE, AlertState.PENDING, AlertState.FIRING, AlertState.RESOLVED


def test_breach_without_for_fires_at_once_and_records_since():
    state, states = run([C, B])
    assert states == [INACT, F]
    assert state.firing_since == T0 + MIN
    assert state.since == T0 + MIN


def test_pending_until_for_has_elapsed():
    state, states = run([B, B, B, B], for_=3 * MIN)
    assert states == [P, P, P, F]
    assert state.firing_since == T0 + 3 * MIN


def test_pending_goes_back_to_inactive_when_the_breach_stops():
    _, states = run([B, B, C, B], for_=5 * MIN)
    assert states == [P, P, INACT, P]


def test_pending_resets_in_the_hysteresis_band():
    _, states = run([B, N], for_=5 * MIN)
    assert states == [P, INACT]


def test_firing_resolves_only_after_clear_for():
    state, states = run([B, C, C, C], clear_for=2 * MIN)
    assert states == [F, F, F, R]
    assert state.firing_since == T0  # the resolved episode remembers when it began


def test_hysteresis_band_keeps_firing_and_restarts_the_clear_timer():
    _, states = run([B, C, N, C, C, C], clear_for=2 * MIN)
    assert states == [F, F, F, F, F, R]


def test_breach_during_clearing_restarts_clear_timer():
    _, states = run([B, C, B, C, C], clear_for=MIN)
    assert states == [F, F, F, F, R]


def test_resolved_fires_again_on_a_new_breach_with_a_new_episode():
    state, states = run([B, C, C, B])
    assert states == [F, R, R, F]
    assert state.firing_since == T0 + 3 * MIN


@pytest.mark.parametrize("verdict,target", [(X, AlertState.NODATA), (E, AlertState.ERROR)])
def test_nodata_and_error_are_states_of_their_own(verdict, target):
    state, states = run([C, verdict, verdict, C])
    assert states == [INACT, target, target, INACT]
    assert state.firing_since is None


@pytest.mark.parametrize("verdict", [X, E])
def test_firing_stays_firing_while_its_data_is_unavailable(verdict):
    state, states = run([B, verdict, verdict])
    assert states == [F, F, F]
    assert state.firing_since == T0  # the same episode: nothing to announce again
    assert state.unavailable_since == T0 + MIN  # the first blind evaluation, kept


@pytest.mark.parametrize("verdict", [X, E])
def test_only_data_resolves_a_firing_alert_that_went_blind(verdict):
    state, states = run([B, verdict, B, verdict, C, C], clear_for=MIN)
    assert states == [F, F, F, F, F, R]
    assert state.unavailable_since is None  # data came back before the resolution


def test_error_message_is_kept_on_the_state():
    state = step(InstanceState(), E, T0, error="API down")
    assert state.state is AlertState.ERROR
    assert state.error == "API down"


def test_breach_after_nodata_goes_through_pending():
    _, states = run([X, B, B], for_=MIN)
    assert states == [AlertState.NODATA, P, F]


def test_value_and_evaluation_time_are_recorded():
    state = step(InstanceState(), C, T0, value=0.25)
    assert state.value == 0.25
    assert state.evaluated_at == T0


_TIMES = st.one_of(st.none(), st.integers(0, 10).map(lambda m: T0 + m * MIN))


@settings(max_examples=500, deadline=None)
@given(
    previous=st.builds(
        InstanceState,
        state=st.sampled_from(list(AlertState)),
        since=_TIMES,
        pending_since=_TIMES,
        firing_since=_TIMES,
        clearing_since=_TIMES,
        value=st.one_of(st.none(), st.floats(-5, 5)),
        evaluated_at=_TIMES,
        error=st.one_of(st.none(), st.just("HTTP 500")),
        unavailable_since=_TIMES,
    ),
    verdict=st.sampled_from(list(Verdict)),
    value=st.one_of(st.none(), st.floats(-5, 5)),
    minutes=st.integers(0, 3),
)
def test_a_verdict_that_settles_only_records_the_reading(previous, verdict, value, minutes):
    """The engine skips ``step`` for these (most instances, most cycles): ``step`` must do
    nothing more than record the reading."""
    if previous.state is AlertState.PENDING and previous.pending_since is None:
        previous = previous._replace(pending_since=T0)  # (pending always has one)
    now = T0 + 11 * MIN
    stepped = step(previous, verdict, now, value=value, for_=minutes * MIN, clear_for=MIN)
    settles = previous.state in SETTLED[verdict] or holds_firing(previous, verdict)
    if settles:
        assert stepped == observe(previous, value, now)
    if verdict is Verdict.CLEARED and previous.state in (AlertState.INACTIVE, AlertState.RESOLVED):
        assert settles  # (the common case must take the short way)
