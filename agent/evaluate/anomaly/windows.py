"""Bounded rolling windows with O(log n) order statistics and O(1) time-window counts."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta


class SortedWindow:
    """The last ``size`` values, kept both in arrival order and sorted.

    Insertion and eviction are a binary search plus a memmove of the sorted list, which is
    faster in CPython than any tree for the few thousand values a baseline holds.
    """

    __slots__ = ("_fifo", "_sorted", "size")

    def __init__(self, size: int, values: Iterable[float] = ()) -> None:
        if size < 1:
            raise ValueError("window size must be at least 1")
        self.size = size
        self._fifo: deque[float] = deque()
        self._sorted: list[float] = []
        for value in values:
            self.add(value)

    def __len__(self) -> int:
        return len(self._fifo)

    def add(self, value: float) -> None:
        self._fifo.append(value)
        insort(self._sorted, value)
        if len(self._fifo) > self.size:
            del self._sorted[bisect_left(self._sorted, self._fifo.popleft())]

    def at_rank(self, rank: int) -> float:
        """The ``rank``-th smallest value (0-based; negative counts from the largest)."""
        return self._sorted[rank]

    def median(self) -> float:
        s = self._sorted
        n = len(s)
        return (s[(n - 1) // 2] + s[n // 2]) / 2.0

    def mad(self, centre: float | None = None) -> float:
        """Median absolute deviation from ``centre`` (default: the median), in O(log n).

        Distances to the values left of the centre and to those right of it are two sorted
        sequences; their merged median is a k-th-smallest-of-two-sorted-arrays search.
        """
        s = self._sorted
        n = len(s)
        if n == 0:
            return 0.0
        m = self.median() if centre is None else centre
        split = bisect_left(s, m)

        def left(i: int) -> float:
            return m - s[split - 1 - i]

        def right(j: int) -> float:
            return s[split + j] - m

        size_left, size_right = split, n - split
        lower = _kth_of_two(left, size_left, right, size_right, (n - 1) // 2)
        upper = _kth_of_two(left, size_left, right, size_right, n // 2)
        return (lower + upper) / 2.0

    def values(self) -> list[float]:
        """Values in arrival order (for serialisation)."""
        return list(self._fifo)


def _kth_of_two(
    a: Callable[[int], float], len_a: int, b: Callable[[int], float], len_b: int, k: int
) -> float:
    """The k-th smallest (0-based) element of two ascending sequences given as accessors."""
    # Take i elements from a and k + 1 - i from b; the right i is the first where a(i) is not
    # below b's last taken element.
    lo, hi = max(0, k + 1 - len_b), min(k + 1, len_a)
    while lo < hi:
        i = (lo + hi) // 2
        if a(i) < b(k - i):
            lo = i + 1
        else:
            hi = i
    i, j = lo, k + 1 - lo
    if i == 0:
        return b(j - 1)
    if j == 0:
        return a(i - 1)
    return max(a(i - 1), b(j - 1))


class FlagWindow:
    """Counts of points and of flagged points observed within the last ``span`` of time.

    A point at ``t`` stays in the window while ``now - t < span``; the newest point is always
    in it, so a zero span means "this point only".
    """

    __slots__ = ("_events", "flagged", "span")

    def __init__(self, span: timedelta) -> None:
        self.span = span
        self._events: deque[tuple[datetime, bool]] = deque()
        self.flagged = 0

    def __len__(self) -> int:
        return len(self._events)

    def add(self, at: datetime, flag: bool) -> None:
        self._events.append((at, flag))
        self.flagged += flag
        while len(self._events) > 1 and at - self._events[0][0] >= self.span:
            _, old = self._events.popleft()
            self.flagged -= old

    def oldest(self) -> datetime | None:
        return self._events[0][0] if self._events else None

    def to_state(self) -> list[list[object]]:
        return [[at.isoformat(), flag] for at, flag in self._events]

    @classmethod
    def from_state(cls, span: timedelta, state: list[list[object]]) -> FlagWindow:
        window = cls(span)
        for at, flag in state:
            window._events.append((datetime.fromisoformat(str(at)), bool(flag)))
            window.flagged += bool(flag)
        return window
