"""Files that hold secrets (authtokens, OAuth secrets, API tokens, Apprise URLs).

Their paths may name environment variables, so a systemd unit can say
``authtoken_file = "${CREDENTIALS_DIRECTORY}/authtoken"``, and relative paths are
taken from the config file's folder, like every other path in it. Errors name the
path, never the content.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

#: what an HTTP header value may hold here: visible ASCII, no spaces or line breaks.
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
_config_folder: ContextVar[Path | None] = ContextVar("config_folder", default=None)


@contextmanager
def relative_to(folder: Path | None) -> Iterator[None]:
    """Resolve relative secret paths against ``folder`` while a config is being read."""
    token = _config_folder.set(folder)
    try:
        yield
    finally:
        _config_folder.reset(token)


def resolve(path: Path) -> Path:
    expanded = os.path.expandvars(str(path))
    if "$" in expanded:
        raise ValueError(f"{str(path)!r} names an environment variable that is not set")
    result = Path(expanded)
    folder = _config_folder.get()
    return result if result.is_absolute() or folder is None else folder / result


def read_secret(path: Path, what: str) -> str:
    """The file's content, stripped; a clear error if it is missing or empty."""
    resolved = resolve(path)
    try:
        value = resolved.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ValueError(f"cannot read {what} file {str(resolved)!r}: {error.strerror}") from None
    if not value:
        raise ValueError(f"{what} file {str(resolved)!r} is empty")
    return value


def check_header_value(value: str, what: str) -> None:
    """A clear error, at load time, for a credential no HTTP header can carry (else every
    request would fail to encode); the value itself is never named."""
    if not _HEADER_SAFE.fullmatch(value):
        raise ValueError(
            f"{what} must be visible ASCII characters without spaces: it is sent in an HTTP header"
        )
