"""Render a rule's ``summary``/``description`` templates (Jinja2, sandboxed).

Templates see: ``rule``, ``state``, ``value``, ``threshold``, ``labels``, ``stack``,
``service``, ``window``, ``severity``, ``link``, ``runbook`` and, for anomaly and
change rules, ``expected``, ``expected_lower``, ``expected_upper``, ``reference``.
Filters: ``human`` (1.2k, 3.4M), ``pct`` (0.0234 → 2.34%), ``duration``.
"""

from __future__ import annotations

from collections.abc import Callable
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


#: the filters a template may use besides Jinja's own
_FILTERS = {"human": human, "pct": pct, "duration": duration}


@lru_cache(maxsize=1024)
def _compile(source: str) -> Callable[[dict[str, Any]], str]:
    """The template's render function (a syntax error raises ``TemplateError``)."""
    environment = _environment()
    template = environment.from_string(source)
    printed = _printed(environment, source)

    def by_jinja(context: dict[str, Any]) -> str:
        return str(template.render(**context))

    if printed is None:
        return by_jinja

    def joined(context: dict[str, Any]) -> str:
        try:
            return "".join(
                text if show is None else str(show(context[text])) for text, show in printed
            )
        except Exception:  # a name it does not know, a filter failing: Jinja's own answer
            return by_jinja(context)

    return joined


def _printed(environment: Any, source: str) -> list[tuple[str, Callable[[Any], Any] | None]] | None:
    """A template that only prints text and names, raw or through one of ``_FILTERS``
    (the default summary and most that rules write), as its parts: (text, None) or
    (name, how it is shown). Joining them gives Jinja's text (``str`` of each part, as
    its compiled code does without autoescape) in a tenth of the time a render takes,
    and summaries are rendered for every firing instance each cycle. None for any
    other template."""
    from jinja2 import nodes

    body = environment.parse(source).body
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    parts: list[tuple[str, Callable[[Any], Any] | None]] = []
    for node in body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append((node.data, None))
        elif isinstance(node, nodes.Name):
            parts.append((node.name, str))
        elif (
            isinstance(node, nodes.Filter)
            and isinstance(node.node, nodes.Name)
            and node.name in _FILTERS
            and not (node.args or node.kwargs or node.dyn_args or node.dyn_kwargs)
        ):
            parts.append((node.node.name, _FILTERS[node.name]))
        else:
            return None
    return parts


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
        return _compile(source)(context)
    except TemplateError as error:
        return f"{source} [template error: {error}]"
