"""Safe defaults outside systemd: private state files, a token for every mutating call,
and no tokenless HTTP API on an address others can reach."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from agent.redact import register_secret

#: the generated API token, next to the state database.
TOKEN_FILE = "api-token"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def bind_problem(host: str, token_configured: bool) -> str | None:
    """Why the daemon must not start on ``host``, or None."""
    if is_loopback(host) or token_configured:
        return None
    return (
        f"http_bind = {host!r} is reachable from other machines but no api_token is "
        "configured: set [agent] api_token or api_token_file (or bind 127.0.0.1)"
    )


def daemon_token(configured: SecretStr | None, state_dir: Path) -> str:
    """The token mutations need: the configured one, else the one generated on first start."""
    return configured.get_secret_value() if configured else api_token(state_dir)


def api_token(state_dir: Path) -> str:
    """The daemon's generated API token: read from ``state_dir/api-token``, written there
    (0600) on first start. Clients on the same machine read the same file."""
    path = state_dir / TOKEN_FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if not token:
        token = secrets.token_urlsafe(32)
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
    os.chmod(path, 0o600)
    register_secret(token)
    return token


def read_api_token(state_dir: Path) -> str | None:
    """The generated token for a client (CLI), or None when the daemon never wrote one."""
    try:
        return (state_dir / TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None
