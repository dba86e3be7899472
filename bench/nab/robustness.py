"""Sensitivity sweep and leave-one-category-out check of the recommended rule.

    python bench/nab/robustness.py [NAB_DIR] [--rule bench/nab/rule.toml]

Replays the rule at several ``sensitivity`` values (everything else unchanged) through the
same path as run.py. Leave-one-category-out picks the sensitivity that scores best on three
categories and scores it on the fourth; the held-out parts are pooled into one score.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.nab.run import RULE, run_alerts, score_all
from bench.nab.scorer import FileScore, default_nab_dir, total

SENSITIVITIES = (0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25)


def with_sensitivity(rule_text: str, sensitivity: float) -> str:
    return re.sub(r"(?m)^sensitivity\s*=.*$", f"sensitivity = {sensitivity}", rule_text, count=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nab_dir", nargs="?", type=Path, default=None)
    parser.add_argument("--rule", type=Path, default=RULE)
    args = parser.parse_args(argv)
    nab_dir: Path = args.nab_dir or default_nab_dir()
    text = args.rule.read_text()
    per_category: dict[float, dict[str, FileScore]] = {}
    print(f"{'sensitivity':>11s} {'score':>7s} {'hit':>4s} {'missed':>6s} {'false':>5s}")
    with tempfile.TemporaryDirectory() as tmp:
        for sensitivity in SENSITIVITIES:
            path = Path(tmp) / "rule.toml"
            path.write_text(with_sensitivity(text, sensitivity))
            alerts, _, _ = run_alerts(path, nab_dir)
            scores = score_all(nab_dir, alerts)
            groups: dict[str, list[FileScore]] = {}
            for key, score in scores.items():
                groups.setdefault(key.split("/")[0], []).append(score)
            per_category[sensitivity] = {c: total(g) for c, g in groups.items()}
            s = total(scores.values())
            print(
                f"{sensitivity:11.2f} {s.normalized:7.2f} {s.windows_hit:4d} "
                f"{s.windows_missed:6d} {s.false_alerts:5d}"
            )
    categories = sorted(next(iter(per_category.values())))
    pooled = FileScore()
    print("\nleave one category out (sensitivity chosen on the other three)")
    for held in categories:
        others = [c for c in categories if c != held]
        best = max(
            SENSITIVITIES,
            key=lambda s: total(per_category[s][c] for c in others).normalized,
        )
        part = per_category[best][held]
        pooled = pooled + part
        print(f"  {held:24s} chosen {best:.2f}  held-out score {part.normalized:6.2f}")
    print(f"  pooled held-out score {pooled.normalized:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
