"""The ``ContentstackSourceDown`` meta-alert: one alert when the data source itself is
down, instead of a storm of per-rule errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.collect.errors import AuthenticationFailed
from agent.collect.models import AnalyticsQuery, Sample
from agent.evaluate.alerts import Transition, fingerprint
from agent.evaluate.instances import Instance
from agent.evaluate.planner import DataRequest, merge_key
from agent.evaluate.state import Verdict, step
from agent.redact import redact

SOURCE_DOWN = "ContentstackSourceDown"
#: the smallest step of a datetime: how far a late judgement of the source is moved past the last.
_TICK = timedelta(microseconds=1)


def source_instance() -> Instance:
    return Instance(
        SOURCE_DOWN,
        (),
        {"alertname": SOURCE_DOWN, "severity": "critical"},
        fingerprint(SOURCE_DOWN, {}),
    )


@dataclass(frozen=True)
class _Outcome:
    failed: bool
    refused: bool
    analytics: bool
    empty: bool
    #: when the cycle that fetched it began
    fetched_at: datetime


class SourceWatch:
    """Judges the latest outcome of every query family, not just one group's queries
    (else a group of failing executions queries and a group of healthy analytics
    queries would flap the meta-alert on every other cycle)."""

    def __init__(self) -> None:
        #: query family → its newest outcome
        self.outcomes: dict[tuple[object, ...], _Outcome] = {}

    def observe(
        self,
        instance: Instance,
        results: Mapping[DataRequest, list[Sample] | Exception],
        now: datetime,
    ) -> Transition | None:
        """Step the meta-alert by one cycle's results (fetched from ``now`` on); its
        transition, if any."""
        failures = [r for r in results.values() if isinstance(r, Exception)]
        for request, result in results.items():
            key = merge_key(request)
            known = self.outcomes.get(key)
            # A cycle that began before the family's newest outcome was fetched tells older
            # news: a refusal from before the token was fixed must not page again.
            if known is None or known.fetched_at <= now:
                self.outcomes[key] = _Outcome(
                    failed=isinstance(result, Exception),
                    refused=isinstance(result, AuthenticationFailed),
                    analytics=isinstance(request, AnalyticsQuery),
                    empty=isinstance(result, list) and not result,
                    fetched_at=now,
                )
        outcomes = list(self.outcomes.values())
        failed = sum(1 for o in outcomes if o.failed)
        analytics = [o.empty for o in outcomes if o.analytics]
        # An empty execution log is normal; an organization with no traffic rows at all is not.
        empty = bool(analytics) and all(analytics)
        # A rejected credential fails every query sooner or later: down at the first one,
        # and until that family answers again.
        refused = any(o.refused for o in outcomes)
        down = refused or (failed > 0 and failed == len(outcomes)) or (failed == 0 and empty)
        if down and failures:
            auth = [f for f in failures if isinstance(f, AuthenticationFailed)]
            first = (auth or failures)[0]
            reason = redact(str(first)) or type(first).__name__
        elif refused:
            reason = "credentials refused"
        else:
            reason = "no data for the whole organization"
        previous = instance.state
        # Groups run at once and a slow cycle may finish after one that began later, so its
        # own ``now`` can lie before the watcher's last judgement. Stamped that early, a
        # "back" would be dropped by notify as older than the "down" it follows (a resolve
        # lost for good), and two judgements committed in reverse order would leave notify
        # on the older one. Each judgement is therefore stamped strictly after the last:
        # notify keeps the latest decision whatever order the cycles commit in.
        last = previous.evaluated_at
        if last is not None and now <= last:
            now = last + _TICK
        instance.state = step(previous, Verdict.BREACHED if down else Verdict.CLEARED, now)
        if instance.state.state == previous.state:
            return None
        summary = (
            f"Contentstack data source down: {reason}"
            if down
            else "Contentstack data source is back"
        )
        instance.annotations = {"summary": summary}
        return Transition(
            rule=SOURCE_DOWN,
            fingerprint=instance.fingerprint,
            labels=dict(instance.labels),
            previous=previous.state,
            state=instance.state.state,
            at=now,
            value=float(len(failures)),
            annotations=dict(instance.annotations),
            firing_since=instance.state.firing_since,
        )
