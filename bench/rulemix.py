"""A realistic rule set of any size: the kinds of rules a team writes, over a subset of stacks.

Most rules watch every stack; the rest name a few. The mix covers error shares per
service, cache hit ratios, traffic that drops to nothing, per-service splits, missing
data and hourly usage against yesterday, with windows from 5 minutes to an hour.
"""

from __future__ import annotations

import random
from pathlib import Path

from bench.simproc import AUTHTOKEN, ORGANIZATION, stack_key

#: (weight, TOML body after [rule] name); {stacks} is replaced by the rule's stacks
TEMPLATES: list[tuple[int, str]] = [
    (
        4,
        """for = "2m"
[rule.query]
metric = "status_codes"
services = ["cdn"]
stacks = {stacks}
window = "{window}"
[rule.value]
function = "ratio"
numerator = {{ status = "5xx" }}
min_denominator = 50
[rule.condition]
type = "threshold"
op = ">"
value = {threshold}
""",
    ),
    (
        2,
        """[rule.query]
metric = "status_codes"
services = ["cdn", "cma"]
stacks = {stacks}
group_by = ["service"]
window = "{window}"
[rule.value]
function = "ratio"
numerator = {{ status = "4xx" }}
[rule.condition]
type = "threshold"
op = ">"
value = {threshold}
""",
    ),
    (
        2,
        """for = "5m"
[rule.query]
metric = "cache"
services = ["cdn"]
stacks = {stacks}
window = "{window}"
[rule.value]
function = "ratio"
numerator = {{ cache = "HIT" }}
denominator = {{ cache = ["HIT", "MISS"] }}
min_denominator = 100
[rule.condition]
type = "threshold"
op = "<"
value = {threshold}
""",
    ),
    (
        1,
        """on_nodata = "alerting"
[rule.query]
metric = "status_codes"
services = ["cdn"]
stacks = {stacks}
window = "{window}"
[rule.value]
function = "count"
[rule.condition]
type = "threshold"
op = "<"
value = 1
""",
    ),
    (
        1,
        """[rule.query]
metric = "status_codes"
services = ["cma"]
stacks = {stacks}
window = "{window}"
[rule.condition]
type = "nodata"
duration = "{window}"
""",
    ),
    (
        1,
        """interval = "5m"
[rule.query]
metric = "usage"
stacks = {stacks}
window = "1h"
granularity = "hour"
[rule.value]
function = "sum"
field = "total_cdn_count"
[rule.condition]
type = "change"
reference = "1d"
mode = "percent"
op = ">"
value = 100
min_reference = 1000
""",
    ),
]
WINDOWS = ["5m", "10m", "15m", "30m", "1h"]
THRESHOLDS = {"5xx": 0.02, "4xx": 0.2, "cache": 0.7}


def stack_names(stacks: int) -> dict[str, str]:
    return {f"stack-{i}": stack_key(i) for i in range(stacks)}


def rules_toml(count: int, stacks: int, *, seed: int = 7) -> str:
    rng = random.Random(seed)
    names = list(stack_names(stacks))
    weights = [weight for weight, _ in TEMPLATES]
    parts = []
    for index in range(count):
        _, body = rng.choices(TEMPLATES, weights)[0]
        if rng.random() < 0.6 or stacks == 1:
            chosen: list[str] = ["*"]
        else:
            chosen = sorted(rng.sample(names, rng.randint(1, max(1, stacks // 2))))
        threshold = rng.choice(list(THRESHOLDS.values()))
        if "cache" in body:
            threshold = THRESHOLDS["cache"]
        text = body.format(
            stacks="[" + ", ".join(f'"{s}"' for s in chosen) + "]",
            window=rng.choice(WINDOWS),
            threshold=threshold,
        )
        parts.append(f'[[rule]]\nname = "bench-{index:04d}"\nseverity = "warning"\n{text}')
    return "\n".join(parts)


def write_setup(folder: Path, rules: int, stacks: int, url: str = "http://127.0.0.1:9") -> Path:
    """A config file and a rule file for ``stackwatch`` commands; returns the config path."""
    rule_dir = folder / "rules"
    rule_dir.mkdir(parents=True, exist_ok=True)
    (rule_dir / "bench.toml").write_text(rules_toml(rules, stacks))
    stack_table = "\n".join(f'"{name}" = "{key}"' for name, key in stack_names(stacks).items())
    config = folder / "config.toml"
    config.write_text(
        f"""[contentstack]
organization_uid = "{ORGANIZATION}"
authtoken = "{AUTHTOKEN}"
analytics_base_url = "{url}"
automations_base_url = "{url}"
[contentstack.stacks]
{stack_table}
[agent]
rule_paths = ["rules"]
state_path = "{folder / "state.db"}"
log_level = "warning"
[notify]
[[notify.channels]]
name = "console"
urls = ["json://127.0.0.1:9/"]
[notify.route]
channels = ["console"]
"""
    )
    return config
