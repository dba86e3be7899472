"""The project's own scorer for the NAB subset in ``shared/nab`` (rules in its README).

A detector's output is a set of alert rows per file. Per file:

* rows before the probationary length ``min(floor(0.15 * n), 750)`` are ignored;
* each labelled window rewards only its earliest alert, ``tp * S(-(b - i + 1) / w) / S(-1)``,
  and costs ``-fn`` when it has none;
* any other alert costs ``fp * S((i - b') / (w' - 1))`` against the nearest preceding window
  (``S`` is -1 beyond three widths), or ``-fp`` when no window precedes it;

with ``S(x) = 2 / (1 + exp(5x)) - 1``. The normalized score is
``100 * (raw - null) / (perfect - null)`` over the files scored together.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class Profile:
    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


STANDARD = Profile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0)
REWARD_LOW_FP = Profile("reward_low_FP_rate", tp_weight=1.0, fp_weight=0.22, fn_weight=1.0)
REWARD_LOW_FN = Profile("reward_low_FN_rate", tp_weight=1.0, fp_weight=0.11, fn_weight=2.0)
PROFILES: dict[str, Profile] = {p.name: p for p in (STANDARD, REWARD_LOW_FP, REWARD_LOW_FN)}


def scaled_sigmoid(x: float) -> float:
    """NAB's ``S``: +1 far before a window's end, 0 at its end, -1 well after (clipped at 3)."""
    if x > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def probationary_length(rows: int) -> int:
    """Rows at the start of a file whose alerts count for nothing."""
    return min(math.floor(0.15 * rows), 750)


@dataclass
class FileScore:
    """Score parts of one file (or, summed, of several)."""

    raw: float = 0.0
    null: float = 0.0
    perfect: float = 0.0
    windows_hit: int = 0
    windows_missed: int = 0
    false_alerts: int = 0
    files: int = 0
    #: earliest counted alert row per window (None = missed), only for a single file.
    hits: list[int | None] = field(default_factory=list)

    @property
    def normalized(self) -> float:
        span = self.perfect - self.null
        return 100.0 * (self.raw - self.null) / span if span else 0.0

    def __add__(self, other: FileScore) -> FileScore:
        return FileScore(
            raw=self.raw + other.raw,
            null=self.null + other.null,
            perfect=self.perfect + other.perfect,
            windows_hit=self.windows_hit + other.windows_hit,
            windows_missed=self.windows_missed + other.windows_missed,
            false_alerts=self.false_alerts + other.false_alerts,
            files=self.files + other.files,
        )


def window_rows(
    timestamps: Sequence[datetime], windows: Iterable[tuple[datetime, datetime]]
) -> list[tuple[int, int]]:
    """Inclusive row ranges ``(a, b)`` of the rows whose timestamps fall inside each window."""
    ranges: list[tuple[int, int]] = []
    for start, end in windows:
        inside = [i for i, t in enumerate(timestamps) if start <= t <= end]
        if inside:
            ranges.append((inside[0], inside[-1]))
    return ranges


def score_rows(
    rows: int,
    windows: Sequence[tuple[int, int]],
    alerts: Iterable[int],
    profile: Profile = STANDARD,
) -> FileScore:
    """Score alert rows of one file of ``rows`` rows against window row ranges ``(a, b)``."""
    probation = probationary_length(rows)
    ordered = sorted(windows)
    best: list[float | None] = [None] * len(ordered)
    first_row: list[int | None] = [None] * len(ordered)
    raw = 0.0
    false_alerts = 0
    for i in sorted(set(alerts)):
        if i < probation or not 0 <= i < rows:
            continue
        inside = next((k for k, (a, b) in enumerate(ordered) if a <= i <= b), None)
        if inside is not None:
            a, b = ordered[inside]
            width = b - a + 1
            reward = profile.tp_weight * scaled_sigmoid(-(b - i + 1) / width)
            reward /= scaled_sigmoid(-1.0)
            # Alerts are visited in row order, so the first one is the earliest and best.
            if best[inside] is None:
                best[inside] = reward
                first_row[inside] = i
            continue
        false_alerts += 1
        preceding = [(a, b) for a, b in ordered if b < i]
        if not preceding:
            raw -= profile.fp_weight
            continue
        a, b = preceding[-1]
        width = b - a + 1
        # A one-row window has no width to scale by: treat the alert as far past it.
        position = (i - b) / (width - 1) if width > 1 else math.inf
        raw += profile.fp_weight * scaled_sigmoid(position)
    hit = sum(1 for r in best if r is not None)
    missed = len(ordered) - hit
    raw += sum(r for r in best if r is not None) - profile.fn_weight * missed
    return FileScore(
        raw=raw,
        null=-profile.fn_weight * len(ordered),
        perfect=profile.tp_weight * len(ordered),
        windows_hit=hit,
        windows_missed=missed,
        false_alerts=false_alerts,
        files=1,
        hits=first_row,
    )


# --- the data folder -------------------------------------------------------------------------


def default_nab_dir() -> Path:
    """``$STACKWATCH_NAB_DIR``, else ``shared/nab`` beside the repository."""
    env = os.environ.get("STACKWATCH_NAB_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "nab"


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


def read_series(path: Path) -> tuple[list[datetime], list[float]]:
    """``timestamp,value`` CSV → parallel lists."""
    times: list[datetime] = []
    values: list[float] = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)  # header
        for row in reader:
            if row:
                times.append(parse_timestamp(row[0]))
                values.append(float(row[1]))
    return times, values


def load_windows(nab_dir: Path) -> dict[str, list[tuple[datetime, datetime]]]:
    """File key (``category/file.csv``) → labelled windows."""
    raw: Mapping[str, list[list[str]]] = json.loads(
        (nab_dir / "labels" / "combined_windows.json").read_text()
    )
    return {
        key: [(parse_timestamp(s), parse_timestamp(e)) for s, e in spans]
        for key, spans in raw.items()
    }


def data_files(nab_dir: Path) -> list[Path]:
    return sorted((nab_dir / "data").glob("*/*.csv"))


def file_key(nab_dir: Path, path: Path) -> str:
    return path.resolve().relative_to((nab_dir / "data").resolve()).as_posix()


def score_alert_times(
    nab_dir: Path,
    alerts: Mapping[str, Iterable[datetime]],
    profile: Profile = STANDARD,
    keys: Iterable[str] | None = None,
) -> dict[str, FileScore]:
    """Score alert timestamps per file key; files without alerts score as null."""
    windows = load_windows(nab_dir)
    scores: dict[str, FileScore] = {}
    for key in sorted(keys if keys is not None else windows):
        times, _ = read_series(nab_dir / "data" / key)
        index = {t: i for i, t in enumerate(times)}
        rows = [index[t] for t in alerts.get(key, ())]
        scores[key] = score_rows(len(times), window_rows(times, windows[key]), rows, profile)
    return scores


def total(scores: Iterable[FileScore]) -> FileScore:
    result = FileScore()
    for score in scores:
        result = result + score
    return result
