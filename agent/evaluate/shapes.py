"""The windows of a rule's alert instances over the columns, per query shape.

Rules that read the same queries, split into instances by the same labels and keep
the same services have one shape: their windows are built once and kept while the
columns' layout holds (no new series or field, no rebuild), so a cycle bringing one
new minute only reads the new sums. An instance's window is one object whatever the
shape that reaches it (the 5xx of one stack, for rules of every stack and for rules
of a few): values are shared by window (``values.SharedValues``), so rules of
different shapes compute them once.
"""

from __future__ import annotations

from agent.evaluate.history import QueryHistory, Series, SeriesWindow
from agent.evaluate.rules import Rule
from agent.evaluate.values import InstanceKey, Window

#: what a rule's windows are built from: its queries' columns, its instance labels, services
Shape = tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]
#: how many cycles' reads are remembered (more than the daemon has groups)
_READS_KEPT = 64
#: the columns windows were built over (each with its layout) and the windows
_Built = tuple[list[tuple[QueryHistory, int]], dict[InstanceKey, Window]]


class ShapeWindows:
    """Not thread safe: the engine calls it under its history lock."""

    def __init__(self) -> None:
        self._built: dict[Shape, _Built] = {}
        #: the shapes' windows by the series they read (see ``_pooled``)
        self._pool: dict[tuple[tuple[int, int, int], ...], SeriesWindow] = {}
        #: the shapes found valid, or built, in this cycle
        self._checked: dict[Shape, dict[InstanceKey, Window]] = {}
        self._rebuilt = False
        #: what recent cycles read (see ``begin_cycle``), the latest first; this cycle's
        self._reads: list[tuple[object, ...]] = []
        self._current: tuple[object, ...] = ()
        #: rule name → what it read when its windows were last found, and those windows
        self._by_rule: dict[str, tuple[tuple[object, ...], dict[InstanceKey, Window]]] = {}

    def begin_cycle(self, reads: tuple[object, ...]) -> None:
        """``reads``: what this cycle's rules read (their plan, and each of its queries
        with its columns and their layout). A rule's windows found in a cycle that read
        the same are its windows now (``kept``): one comparison a cycle instead of a
        check per rule. (The daemon's groups each have a plan: a few are remembered.)"""
        self._checked = {}
        self._rebuilt = False
        for known in self._reads:  # (a plan by identity: the planner keeps it while valid)
            if known[0] is reads[0] and known[1:] == reads[1:]:
                self._current = known
                return
        self._reads = [reads, *self._reads[: _READS_KEPT - 1]]
        self._current = reads

    def kept(self, rule: Rule) -> dict[InstanceKey, Window] | None:
        """The rule's windows if it read the same in a cycle before."""
        found = self._by_rule.get(rule.name)
        return found[1] if found is not None and found[0] is self._current else None

    def end_cycle(self) -> None:
        """Forget the windows no shape reads any more (their columns' layout moved on)."""
        if self._rebuilt:
            live = {id(w) for _, windows in self._built.values() for w in windows.values()}
            self._pool = {k: w for k, w in self._pool.items() if id(w) in live}

    def of(self, rule: Rule, histories: list[QueryHistory]) -> dict[InstanceKey, Window]:
        """Per alert instance of ``rule``, its series in each of the rule's queries."""
        services = tuple(sorted(rule.query.services))
        shape = (tuple(map(id, histories)), rule.query.instance_labels, services)
        found = self._checked.get(shape)
        if found is not None:
            self._by_rule[rule.name] = (self._current, found)
            return found
        built = self._built.get(shape)
        layout = [(history, history.layout) for history in histories]
        if (
            built is not None
            and len(built[0]) == len(layout)
            and all(
                old is new and old_layout == new_layout
                for (old, old_layout), (new, new_layout) in zip(built[0], layout, strict=True)
            )
        ):
            self._checked[shape] = built[1]
            self._by_rule[rule.name] = (self._current, built[1])
            return built[1]
        parts: dict[InstanceKey, list[tuple[QueryHistory, list[Series]]]] = {}
        for history in histories:
            for key, series in history.split(rule.query.instance_labels, services).items():
                parts.setdefault(key, []).append((history, series))
        windows: dict[InstanceKey, Window] = {
            key: self._pooled(found) for key, found in parts.items()
        }
        self._built[shape] = (layout, windows)
        self._checked[shape] = windows
        self._by_rule[rule.name] = (self._current, windows)
        self._rebuilt = True
        return windows

    def _pooled(self, parts: list[tuple[QueryHistory, list[Series]]]) -> SeriesWindow:
        """The window over these series: one object for every shape that reads them, while
        the columns' layouts hold (the pool keeps its windows, hence their ids, alive)."""
        key = tuple((id(history), history.layout, id(series)) for history, series in parts)
        window = self._pool.get(key)
        if window is None:
            window = self._pool[key] = SeriesWindow(parts)
        return window
