"""Render a rule's ``summary``/``description`` templates (Jinja2, sandboxed).

Templates see: ``rule``, ``state``, ``value``, ``threshold``, ``labels``, ``stack``,
``service``, ``window``, ``severity``, ``link``, ``runbook`` and, for anomaly and
change rules, ``expected``, ``expected_lower``, ``expected_upper``, ``reference``.
Filters: ``human`` (1.2k, 3.4M), ``pct`` (0.0234 → 2.34%), ``duration``.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Any

from agent.durations import format_duration


def human(value: Any) -> str:
    if value is None:
        return "n/a"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= size:
            return f"{number / size:.3g}{suffix}"
    if number == int(number):
        return str(int(number))
    return f"{number:.4g}"


def pct(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{float(value) * 100:.3g}%"


def duration(value: Any) -> str:
    return format_duration(value) if isinstance(value, timedelta) else str(value)


@lru_cache(maxsize=1)
def _environment() -> Any:
    # Jinja2 is imported on first use: `--help` and commands that render nothing skip it
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    environment = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    environment.filters.update(human=human, pct=pct, duration=duration)
    return environment


@lru_cache(maxsize=1024)
def _compile(source: str) -> Any:
    return _environment().from_string(source)


def check_template(source: str) -> str | None:
    """The syntax error in a template, or None."""
    if "{" not in source:
        return None  # no tag, no expression, no comment: nothing Jinja could reject
    from jinja2 import TemplateError

    try:
        _compile(source)
    except TemplateError as error:
        return str(error)
    return None


def render(source: str, context: dict[str, Any]) -> str:
    """Render, or fall back to the raw template plus the error: an alert is never lost to a typo."""
    from jinja2 import TemplateError

    if not source:
        return ""
    try:
        return str(_compile(source).render(**context))
    except TemplateError as error:
        return f"{source} [template error: {error}]"
