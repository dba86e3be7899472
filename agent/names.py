"""Names: the spelling rule for what operators name (rules, actions), and who an operator is."""

from __future__ import annotations

import getpass
import re

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def check_name(value: str) -> str:
    """pydantic validator: letters, digits, ``_ - . :``, starting with a letter or digit."""
    if not _NAME.match(value):
        raise ValueError("names use letters, digits, '_', '-', '.', ':' and start with one")
    return value


def operator_name(explicit: str | None) -> str:
    """``--by`` when given, else the login name: who a command-line change is recorded as."""
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "stackwatch"
