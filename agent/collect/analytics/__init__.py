"""Analytics API v2: the client (``client``), the batch poller of its async jobs (``jobs``)
and the parsing of their rows into Samples (``rows``)."""

from __future__ import annotations

from agent.collect.analytics.client import AnalyticsClient, AnswerHook, build_params, split_range
from agent.collect.analytics.rows import BadRow, parse_row, parse_rows

__all__ = [
    "AnalyticsClient",
    "AnswerHook",
    "BadRow",
    "build_params",
    "parse_row",
    "parse_rows",
    "split_range",
]
