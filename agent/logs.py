"""structlog set-up: JSON lines off a terminal, readable console output on one, secrets masked."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog

from agent.redact import redact


def _redact_event(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        event[key] = _redacted(value)
    return event


def _redacted(value: Any) -> Any:
    """``value`` with every string in it masked, however deep (an action's ``detail``,
    a list of problems): the renderer prints nested values as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, BaseException):
        return redact(str(value))
    if isinstance(value, dict):
        return {_redacted(k): _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redacted(item) for item in value]
    return value


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing, one whole line at a time.

    structlog's loggers keep the file they were given; binding them to the stream of
    the moment would break when that stream is replaced (test capture, daemonizing).
    Both structlog and the stdlib handler write a record and its newline in one call
    under one lock, so lines from different threads never interleave.
    """

    _lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


#: Libraries whose everyday records are noise at the agent's level: httpx logs a line per
#: request and APScheduler one per job run. Their warnings still come through; missed and
#: overlapping runs are reported by ``agent.daemon.scheduler`` in its own words.
_LIBRARY_LEVELS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "apscheduler": logging.ERROR,
}


def configure_logging(level: str = "info", *, json_output: bool | None = None) -> None:
    """Configure structlog for the whole process, and route stdlib logging through it.

    ``json_output`` None means: JSON unless stderr is a terminal. Records of libraries
    (Apprise, APScheduler, httpx …) get the same format, timestamps and masking as the
    agent's own events, so stderr is one stream of one format.
    """
    if json_output is None:
        json_output = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact_event,
    ]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.WriteLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(numeric_level, shared, renderer)


class _StructlogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one root handler this module installs (found again, and replaced, on reconfigure)."""


def _route_stdlib_logging(level: int, shared: list[Any], renderer: Any) -> None:
    handler = _StructlogHandler(_CurrentStderr())  # type: ignore[arg-type]
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StructlogHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name, floor in _LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(max(level, floor))
