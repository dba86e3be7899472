"""Names operators give things (rules, actions): one spelling rule for all of them."""

from __future__ import annotations

import re

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def check_name(value: str) -> str:
    """pydantic validator: letters, digits, ``_ - . :``, starting with a letter or digit."""
    if not _NAME.match(value):
        raise ValueError("names use letters, digits, '_', '-', '.', ':' and start with one")
    return value
