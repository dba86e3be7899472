"""Which rules evaluate together: one scheduler job per group.

Two pulls: the planner fetches each distinct query once *per evaluate call*, so rules
that read the same data should be evaluated together; and a slow or failing API should
delay only the rules that need it, so rules with disjoint data should not. A group is
therefore a connected component of "same interval and share a planned request": rules
on CDN and CMA status codes (one merged Analytics query per stack) evaluate together,
execution-log rules and cache rules each get their own job.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from agent.evaluate.planner import query_keys
from agent.evaluate.rules import Rule


@dataclass(frozen=True)
class RuleGroup:
    interval: timedelta
    rules: tuple[str, ...]

    @property
    def job_id(self) -> str:
        """Stable across reloads while the membership and interval are unchanged."""
        digest = hashlib.sha256(
            f"{self.interval.total_seconds()}|{'|'.join(self.rules)}".encode()
        ).hexdigest()[:12]
        return f"rules-{digest}"

    @property
    def label(self) -> str:
        """A short name for logs and metrics."""
        first = self.rules[0]
        return first if len(self.rules) == 1 else f"{first}+{len(self.rules) - 1}"


def group_rules(
    rules: Sequence[Rule],
    default_interval: timedelta,
    keys: Mapping[str, Sequence[tuple[object, ...]]] | None = None,
) -> list[RuleGroup]:
    """``keys``: each rule's ``planner.query_keys``, where the engine holds them already
    (a thousand rules take a few tenths of a second to plan)."""
    by_interval: dict[timedelta, list[Rule]] = defaultdict(list)
    for rule in rules:
        if rule.enabled:
            by_interval[rule.interval or default_interval].append(rule)
    groups: list[RuleGroup] = []
    for interval, members in sorted(by_interval.items()):
        # the planner merges the requests of one key: rules sharing a key are linked
        parent = {rule.name: rule.name for rule in members}
        holder: dict[object, str] = {}
        for rule in members:
            for key in keys[rule.name] if keys is not None else query_keys(rule):
                other = holder.setdefault(key, rule.name)
                parent[_find(parent, rule.name)] = _find(parent, other)
        components: dict[str, list[str]] = defaultdict(list)
        for rule in members:
            components[_find(parent, rule.name)].append(rule.name)
        groups.extend(RuleGroup(interval, tuple(sorted(names))) for names in components.values())
    return sorted(groups, key=lambda g: (g.interval, g.rules))


def first_run_delays(
    groups: Sequence[RuleGroup], keys: Mapping[str, Sequence[tuple[object, ...]]], rate: float
) -> dict[str, float]:
    """Seconds after start-up each group's first cycle begins, by job id: the groups of
    most rules first, each once the submissions of those before it (one per query) have
    had their turn at the API's ``rate``. Started all at once, every group would get its
    last answer near the end of the first round of requests, and their evaluations would
    queue up after it; staggered, the large groups are evaluated while the later ones
    still fetch (whose submissions fill the wait for the earlier ones' jobs)."""
    delays: dict[str, float] = {}
    ahead = 0  # submissions of the groups before this one
    for group in sorted(groups, key=lambda g: (-len(g.rules), g.rules)):
        delays[group.job_id] = ahead / rate
        ahead += len({key for name in group.rules for key in keys[name]})
    return delays


def _find(parent: dict[str, str], name: str) -> str:
    """Union-find root, with path halving."""
    while parent[name] != name:
        parent[name] = parent[parent[name]]
        name = parent[name]
    return name
