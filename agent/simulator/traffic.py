"""The traffic model: request counts as a pure function of (seed, stack, service, time).

Counts are built top-down so that every granularity agrees:

* an hour's request total is drawn from the service's baseline, the stack weight,
  a daily cosine seasonality and hour-level noise;
* that total is split exactly over the hour's 60 minutes (and a minute's over its
  60 seconds) by systematic sampling with jittered weights, so an hour always equals
  the sum of its minutes;
* each bucket's total is split into status codes and cache HIT/MISS the same way.
  The split of an hour and the sum of the splits of its minutes agree up to rounding.

Hours touched by an incident, and the hour in progress, are computed minute by minute
(incidents have minute resolution); other hours in one step, which keeps a 90-day query
cheap. "Random" numbers come from a splitmix64 hash of the bucket index, never from a
random generator, so the same query always returns the same numbers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import sub
from typing import Any

from agent.simulator.buckets import SUBDAY, Bucket, epoch
from agent.simulator.scenario import CDN_SERVICES, Scenario, ServiceProfile, Stack

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_U24 = float(1 << 24)
_W21 = 0.5 / (1 << 21)
#: JSON numbers in the real APIs are bounded to signed 32-bit integers.
INT32_MAX = 2**31 - 1

#: An aggregate: (requests, *per-status counts in TrafficModel.codes order, hits, bytes).
Agg = tuple[int, ...]


def mix64(value: int) -> int:
    """splitmix64's finaliser: a cheap, well-distributed 64-bit hash."""
    value = (value + _GOLDEN) & MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK64
    return value ^ (value >> 31)


def stream_id(seed: int, *names: str) -> int:
    """A 64-bit stream key for one (seed, names) combination, stable across processes."""
    digest = hashlib.blake2b("\x1f".join(names).encode(), digest_size=8).digest()
    return mix64(int.from_bytes(digest, "big") ^ (seed & MASK64))


def draw(stream: int, index: int) -> int:
    return mix64(stream ^ ((index * _GOLDEN) & MASK64))


def uniforms(stream: int, index: int) -> tuple[float, float, float]:
    """Three independent uniforms in [0, 1) from one hash."""
    h = draw(stream, index)
    return (h >> 40) / _U24, ((h >> 16) & 0xFFFFFF) / _U24, (h & 0xFFFF) / 65536.0


def split(total: int, cumulative: Sequence[float], u: float) -> list[int]:
    """Systematic sampling: split ``total`` by cumulative shares; parts sum to ``total``.

    Each part is unbiased (even a 0.2 % share gets its due over many buckets), unlike
    largest-remainder rounding which would always round small shares away. The last
    cumulative share is exactly 1.0, so the last cut is exactly ``total``.
    """
    cuts = [int(total * share + u) for share in cumulative]
    return [cuts[0], *map(sub, cuts[1:], cuts)]


def cumulative(shares: Iterable[float]) -> list[float]:
    values = list(shares)
    total = sum(values) or 1.0
    out, running = [], 0.0
    for value in values:
        running += value / total
        out.append(running)
    if out:
        out[-1] = 1.0
    return out


@dataclass(frozen=True)
class _Window:
    kind: str
    start: int
    end: int
    level: float


class _BoundedCache(dict[object, Any]):
    """A dict that forgets its oldest entries past ``limit`` (the model is pure, so a
    forgotten value is merely recomputed)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: object, value: object) -> None:
        if len(self) >= self.limit:
            for old in list(self)[: self.limit // 4]:
                self.pop(old, None)
        self[key] = value


class Channel:
    """Traffic of one service on one stack."""

    def __init__(
        self,
        seed: int,
        stack: Stack,
        service: str,
        profile: ServiceProfile,
        codes: Sequence[str],
        windows: Sequence[_Window],
    ) -> None:
        self.profile = profile
        self.per_minute = profile.rpm * stack.weight
        self.codes = codes
        self.width = len(codes) + 3
        self.zero: Agg = (0,) * self.width
        self.windows = tuple(windows)
        base = [profile.status_mix.get(code, 0.0) for code in codes]
        total = sum(base)
        self._base = [b / total for b in base]
        self._five = [i for i, code in enumerate(codes) if code.startswith("5")]
        self._base_five = sum(self._base[i] for i in self._five)
        self._fallback_five = codes.index("500")
        self._cum_cache: dict[float | None, list[float]] = {}
        self._base_cum = self._cumulative_statuses(None)
        self._bytes = profile.bytes_per_request
        name = (stack.api_key, service)
        self._s_hour = stream_id(seed, *name, "hour")
        self._s_minute = stream_id(seed, *name, "minute")
        self._s_second = stream_id(seed, *name, "second")
        self._s_split_hour = stream_id(seed, *name, "split-hour")
        self._s_split_minute = stream_id(seed, *name, "split-minute")
        self._s_split_second = stream_id(seed, *name, "split-second")
        self._minutes = _BoundedCache(2048)
        self._hours = _BoundedCache(65536)

    # -- shares under incidents ---------------------------------------------------------

    def _cumulative_statuses(self, five_share: float | None) -> list[float]:
        key = None if five_share is None else round(five_share, 4)
        cached = self._cum_cache.get(key)
        if cached is not None:
            return cached
        shares = list(self._base)
        if key is not None:
            rest = 1.0 - self._base_five
            for i in range(len(shares)):
                if i in self._five:
                    shares[i] = shares[i] * key / self._base_five if self._base_five else 0.0
                else:
                    shares[i] = shares[i] * (1.0 - key) / rest if rest > 0 else 0.0
            if not self._base_five:
                shares[self._fallback_five] = key
        result = cumulative(shares)
        self._cum_cache[key] = result
        return result

    def _effects(self, at: int) -> tuple[float | None, float, bool]:
        """(5xx share or None for baseline, cache hit ratio, traffic zeroed) at second ``at``."""
        five: float | None = None
        hit = self.profile.hit_ratio
        for w in self.windows:
            if not w.start <= at < w.end:
                continue
            if w.kind == "traffic_zero":
                return None, hit, True
            if w.kind == "5xx_spike":
                five = max(five or 0.0, w.level)
            elif w.kind == "slow_burn":
                ramp = self._base_five + (w.level - self._base_five) * (
                    (at - w.start) / (w.end - w.start)
                )
                five = max(five or 0.0, ramp)
            elif w.kind == "cache_drop":
                hit = min(hit, w.level)
        return five, hit, False

    def _overlaps(self, start: int, end: int) -> bool:
        return any(w.start < end and w.end > start for w in self.windows)

    # -- totals ---------------------------------------------------------------------------

    def hour_total(self, hour: int) -> int:
        profile = self.profile
        u_noise, u_round, _ = uniforms(self._s_hour, hour)
        phase = 2 * math.pi * ((hour % 24) + 0.5 - profile.peak_hour) / 24
        season = 1.0 + profile.amplitude * math.cos(phase)
        noise = 1.0 + profile.noise * (2 * u_noise - 1)
        expected = max(self.per_minute * 60 * season * noise, 0.0)
        return int(expected + u_round)

    def _spread(self, total: int, stream: int, first: int, u: float) -> list[int]:
        """Split ``total`` over 60 sub-buckets with ±25 % jittered weights."""
        weights: list[float] = []
        for i in range(20):  # three 21-bit weights per hash
            h = draw(stream, first + i)
            weights += (0.75 + (h & 0x1FFFFF) * _W21, 0.75 + ((h >> 21) & 0x1FFFFF) * _W21)
            weights.append(0.75 + (h >> 43) * _W21)
        return split(total, cumulative(weights), u)

    def _agg(self, total: int, five: float | None, hit: float, stream: int, index: int) -> Agg:
        h = draw(stream, index)
        u_status = (h >> 40) / _U24
        shares = self._base_cum if five is None else self._cumulative_statuses(five)
        cuts = [int(total * share + u_status) for share in shares]
        hits = int(total * hit + ((h >> 16) & 0xFFFFFF) / _U24)
        size = int(total * self._bytes * (0.9 + 0.2 * (h & 0xFFFF) / 65536.0))
        return (total, cuts[0], *map(sub, cuts[1:], cuts), hits, size)

    def minute_aggs(self, hour: int) -> list[Agg]:
        """The 60 minute aggregates of ``hour`` (whole hour, regardless of "now")."""
        cached = self._minutes.get(hour)
        if cached is not None:
            return cached
        u_spread = uniforms(self._s_split_hour, hour)[2]
        totals = self._spread(self.hour_total(hour), self._s_minute, hour * 60, u_spread)
        affected = self._overlaps(hour * 3600, hour * 3600 + 3600)
        hit = self.profile.hit_ratio
        stream, first = self._s_split_minute, hour * 60
        if not affected:
            out = [self._agg(n, None, hit, stream, first + i) for i, n in enumerate(totals)]
        else:
            out = []
            for i, total in enumerate(totals):
                five, hit_now, zero = self._effects((first + i) * 60)
                out.append(
                    self.zero if zero else self._agg(total, five, hit_now, stream, first + i)
                )
        self._minutes.put(hour, out)
        return out

    def hour_agg(self, hour: int, now_minute: int) -> Agg:
        """An hour's aggregate, counting only minutes that started by ``now_minute``."""
        complete = hour * 60 + 59 <= now_minute
        if complete and not self._overlaps(hour * 3600, hour * 3600 + 3600):
            cached = self._hours.get(hour)
            if cached is None:
                total = self.hour_total(hour)
                cached = self._agg(total, None, self.profile.hit_ratio, self._s_split_hour, hour)
                self._hours.put(hour, cached)
            return cached
        minutes = self.minute_aggs(hour)
        if not complete:
            minutes = minutes[: max(0, now_minute - hour * 60 + 1)]
        return add_all(minutes, self.width)

    def second_aggs(self, minute: int) -> list[Agg]:
        total = self.minute_aggs(minute // 60)[minute % 60][0]
        five, hit, zero = self._effects(minute * 60)
        if zero:
            return [self.zero] * 60
        u_spread = uniforms(self._s_split_minute, minute)[0]
        totals = self._spread(total, self._s_second, minute * 60, u_spread)
        return [
            self._agg(n, five, hit, self._s_split_second, minute * 60 + i)
            for i, n in enumerate(totals)
        ]


def add_all(aggs: Sequence[Agg], width: int) -> Agg:
    if not aggs:
        return (0,) * width
    if len(aggs) == 1:
        return aggs[0]
    return tuple(map(sum, zip(*aggs, strict=True)))


class TrafficModel:
    """All channels of a resolved scenario, queried by bucket."""

    def __init__(self, scenario: Scenario) -> None:
        if scenario.start is None:
            raise ValueError("TrafficModel needs a resolved scenario (Scenario.resolve)")
        self.scenario = scenario
        codes = {"500"}
        for profile in scenario.services.values():
            codes.update(profile.status_mix)
        self.codes: tuple[str, ...] = tuple(sorted(codes))
        self.width = len(self.codes) + 3
        self.stacks = {stack.api_key: stack for stack in scenario.stacks}
        self._streams: dict[tuple[str, ...], int] = {}
        self.channels: dict[tuple[str, str], Channel] = {}
        for stack in scenario.stacks:
            for service, profile in scenario.services.items():
                windows = [
                    _Window(i.kind, epoch(i.window()[0]), epoch(i.window()[1]), i.level)
                    for i in scenario.incidents
                    if i.kind != "automation_failures"
                    and i.stack in (None, stack.api_key, stack.name)
                    and i.service in (None, service)
                ]
                self.channels[(stack.api_key, service)] = Channel(
                    scenario.seed, stack, service, profile, self.codes, windows
                )

    def cacheable(self, service: str) -> bool:
        profile = self.scenario.services.get(service)
        if profile is None:
            return False
        return profile.cacheable if profile.cacheable is not None else service in CDN_SERVICES

    def series(
        self,
        api_keys: Sequence[str],
        service: str,
        granularity: str,
        buckets: Sequence[Bucket],
        now_seconds: int,
    ) -> list[Agg]:
        """One aggregate per bucket for ``service`` summed over the given stacks."""
        channels = [self.channels[(k, service)] for k in api_keys if (k, service) in self.channels]
        if not channels:
            return [(0,) * self.width for _ in buckets]
        now_minute = now_seconds // 60
        out: list[Agg] = []
        if granularity == "sec":
            per_minute: dict[tuple[int, int], list[Agg]] = {}
            for bucket in buckets:
                minute = bucket.start // 60
                parts = []
                for n, channel in enumerate(channels):
                    seconds = per_minute.get((n, minute))
                    if seconds is None:
                        seconds = per_minute[(n, minute)] = channel.second_aggs(minute)
                    parts.append(seconds[bucket.start % 60])
                out.append(add_all(parts, self.width))
            return out
        if granularity == "minute":
            for bucket in buckets:
                minute = bucket.start // 60
                parts = [c.minute_aggs(minute // 60)[minute % 60] for c in channels]
                out.append(add_all(parts, self.width))
            return out
        for bucket in buckets:
            # Coarser buckets are whole hours: the day-aligned range clips them to hours.
            first = bucket.start // SUBDAY["hour"]
            last = -(-bucket.end // SUBDAY["hour"])
            parts = [
                channel.hour_agg(hour, now_minute)
                for channel in channels
                for hour in range(first, last)
                if hour * 60 <= now_minute
            ]
            out.append(add_all(parts, self.width))
        return out

    def uniform_for(self, *names: str | int) -> tuple[float, float, float]:
        """Deterministic uniforms for the analytics layer (device, SDK and URL mixes)."""
        *labels, index = names
        key = tuple(map(str, labels))
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = stream_id(self.scenario.seed, *key)
        return uniforms(stream, int(index))
