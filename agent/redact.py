"""Keep secrets out of logs and error messages.

Secrets are registered once when they are loaded (config, credentials files,
OAuth tokens) and every log line and error message passes through ``redact``.
Pattern rules catch secrets that were never registered: credentials inside
URLs and the values of auth headers.
"""

from __future__ import annotations

import re
import threading

MASK = "***"
_MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secrets: set[str] = set()

_PATTERNS = [
    # scheme://user:password@host and scheme://token@host
    (re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)([^/\s@]+)@"), r"\1" + MASK + "@"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + MASK),
    (
        re.compile(
            r"(?i)((?:authtoken|ah-http-key|authorization|client_secret|access_token|password)"
            r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',&}]+)"
        ),
        r"\1" + MASK,
    ),
]


def register_secret(value: str | None) -> None:
    """Remember a secret so that ``redact`` masks it wherever it appears."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
