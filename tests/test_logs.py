"""Log records are masked however deep a secret sits in them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from agent.logs import configure_logging
from agent.redact import register_secret

SECRET = "nested-secret-4f0c9e"


@pytest.fixture
def debug_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("debug", json_output=True)
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("debug_logging")
def test_secrets_are_masked_in_nested_values_and_library_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    register_secret(SECRET)
    structlog.get_logger("test").info(
        "action",
        detail={"error": f"echoed {SECRET}", SECRET: 1, "steps": [("call", SECRET)]},
        problems=[ValueError(SECRET)],
        count=3,
    )
    logging.getLogger("library").warning("sent to %s", SECRET)
    lines = capsys.readouterr().err.splitlines()
    assert SECRET not in "\n".join(lines)
    record = json.loads(lines[0])
    assert record["detail"] == {"error": "echoed ***", "***": 1, "steps": [["call", "***"]]}
    assert record["problems"] == ["***"]
    assert record["count"] == 3
    assert json.loads(lines[1])["event"] == "sent to ***"
