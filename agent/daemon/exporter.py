"""Contentstack's own numbers on ``/metrics``, from what the engine already fetched.

No request is made for Prometheus: the collector reads the engine's columns
(``evaluate.history``: one ``QueryHistory`` per query family) at scrape time. For each
family it exports the **last complete bucket** (one whose whole width has passed on
the agent's clock; the newest bucket may still be filling) as gauges, and the bucket's
start as ``stackwatch_contentstack_bucket_timestamp_seconds``:

- ``stackwatch_contentstack_requests{stack,service,status_class,granularity}``
  (HTTP statuses, summed per class: 2xx … 5xx);
- ``stackwatch_contentstack_cache_requests{stack,service,cache,granularity}`` (hit, miss);
- ``stackwatch_contentstack_usage_requests{stack,kind,granularity}`` and
  ``stackwatch_contentstack_bandwidth_bytes{stack,kind,granularity}`` (kind: api, cdn).

Why gauges stamped with a companion gauge, not samples carrying their own timestamps:
Analytics buckets arrive minutes to hours late, and Prometheus drops samples older than
its head block and turns off staleness for explicit timestamps; a gauge sampled at
scrape time always lands, and the bucket time says what it describes (compare it with
``time()`` to see the lag). The value is per bucket, so sum over time with
``sum_over_time`` only after ``max by (...)``-ing one sample per bucket, or just chart it.

Label values never carry secrets: ``stack`` is the stack's configured name (``all`` for
organization-wide queries, ``unnamed-<hash>`` for an API key without a name).
"""

from __future__ import annotations

import bisect
import hashlib
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agent.clock import Clock
from agent.collect.models import Metric

if TYPE_CHECKING:
    from agent.evaluate.engine import Engine
    from agent.evaluate.history import QueryHistory

_WIDTH = {"sec": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
_KINDS = (("api", "total_api_count", "total_api_bandwidth"),
          ("cdn", "total_cdn_count", "total_cdn_bandwidth"))  # fmt: skip
_FAMILY = {Metric.HTTP_STATUSES: "requests", Metric.CACHE: "cache", Metric.USAGE: "usage"}
PREFIX = "stackwatch_contentstack_"


def status_class(status: str) -> str:
    return f"{status[0]}xx" if len(status) == 3 and status.isdigit() else "other"


def stack_label(api_key: str | None, names: dict[str, str]) -> str:
    if api_key is None:
        return "all"
    if api_key in names:
        return names[api_key]
    return "unnamed-" + hashlib.sha256(api_key.encode()).hexdigest()[:8]


def _last_complete(history: QueryHistory, granularity: str, now: float) -> int | None:
    times = history.times
    width = _WIDTH.get(granularity) or (times[-1] - times[-2] if len(times) > 1 else 3600.0)
    index = bisect.bisect_right(times, now - width) - 1
    return index if index >= 0 else None


class ContentstackCollector(Collector):
    def __init__(self, engine: Callable[[], Engine], clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def _families(self) -> dict[str, GaugeMetricFamily]:
        made = [
            ("requests", "Requests in the bucket by status class",
             ["stack", "service", "status_class", "granularity"]),
            ("cache_requests", "CDN cache hits and misses in the bucket",
             ["stack", "service", "cache", "granularity"]),
            ("usage_requests", "API and CDN requests in the bucket (usage totals)",
             ["stack", "kind", "granularity"]),
            ("bandwidth_bytes", "API and CDN bandwidth in the bucket, as the API reports it",
             ["stack", "kind", "granularity"]),
            ("bucket_timestamp_seconds", "Start of the bucket the other gauges show",
             ["metric", "stack", "granularity"]),
        ]  # fmt: skip
        return {
            name: GaugeMetricFamily(PREFIX + name, text, labels=labels)
            for name, text, labels in made
        }

    def _chosen(self, engine: Engine) -> dict[tuple[str, str, str], tuple[QueryHistory, str]]:
        """One history per (family, stack, granularity): the least filtered (fewest
        params, widest services), so two rules' differently filtered queries of one
        metric do not export the same series twice."""
        best: dict[tuple[str, str, str], tuple[tuple[int, int, float], QueryHistory, str]]
        best = {}
        for key, history in engine.history.items():
            metric = key[1] if len(key) > 4 and key[0] == "analytics" else None
            if not isinstance(metric, Metric) or metric not in _FAMILY or not history.times:
                continue
            api_key = key[3] if isinstance(key[3], str) else None
            params = key[4] if isinstance(key[4], tuple) else ()
            services = key[5] if len(key) > 5 and isinstance(key[5], tuple) else ()
            granularity = str(key[2] or "default")
            slot = (_FAMILY[metric], stack_label(api_key, engine.stack_names), granularity)
            # every service (an empty tuple) is the widest
            rank = (len(params), -len(services) if services else -100, -history.times[-1])
            if slot not in best or rank < best[slot][0]:
                best[slot] = (rank, history, granularity)
        return {slot: (history, granularity) for slot, (_, history, granularity) in best.items()}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = self._families()
        engine = self._engine()
        now = self._clock.now().timestamp()
        with engine.history_lock:
            for (family, stack, granularity), (history, _) in sorted(
                self._chosen(engine).items(), key=lambda item: item[0]
            ):
                index = _last_complete(history, granularity, now)
                if index is None:
                    continue
                if self._bucket(families, family, stack, granularity, history, index):
                    families["bucket_timestamp_seconds"].add_metric(
                        [family, stack, granularity], history.times[index]
                    )
        yield from families.values()

    @staticmethod
    def _bucket(
        families: dict[str, GaugeMetricFamily],
        family: str,
        stack: str,
        granularity: str,
        history: QueryHistory,
        index: int,
    ) -> bool:
        """Add one bucket's values; whether it had any rows."""
        totals: dict[tuple[str, ...], float] = defaultdict(float)
        found = False
        for series in history.series:
            at = index - series.first  # (its readers look back less far than the others')
            if at < 0 or series.present[at + 1] == series.present[at]:
                continue  # no row in this bucket
            found = True

            def value(
                name: str, sums: dict[str, array[float]] = series.sums, at: int = at
            ) -> float:
                column = sums.get(name)
                return column[at + 1] - column[at] if column is not None else 0.0

            service = series.labels.get("service", "")
            if family == "requests":
                status = status_class(series.labels.get("status", ""))
                totals[("requests", service, status)] += value("count")
            elif family == "cache":
                cache = series.labels.get("cache", "").lower() or "all"
                totals[("cache_requests", service, cache)] += value("count")
            else:
                for kind, count, bandwidth in _KINDS:
                    totals[("usage_requests", kind)] += value(count)
                    totals[("bandwidth_bytes", kind)] += value(bandwidth)
        for (name, *labels), total in sorted(totals.items()):
            families[name].add_metric([stack, *labels, granularity], total)
        return found
