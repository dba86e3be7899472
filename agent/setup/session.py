"""The user session: an authtoken from ``POST /v3/user-session``, ended by ``DELETE``.

A user has at most 20 live authtokens and every login silently evicts the oldest,
so a token is obtained once, kept in a file only its owner can read, and reused
while it works. Passwords, codes and tokens are registered as secrets before any
request, so no log line or error can show them.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.clock import Clock, SystemClock
from agent.collect.errors import ContentstackError, MalformedResponse
from agent.redact import register_secret

if TYPE_CHECKING:
    from agent.config import ContentstackSettings

SESSION_PATH = "/v3/user-session"
#: the documented question for a 2FA user is unverified: any 4xx naming the token means "ask".
_TWO_FACTOR = re.compile(r"\btfa|two[- ]?factor|\b2fa\b", re.IGNORECASE)
_SSO = re.compile(r"\bsso\b|single[- ]sign[- ]on", re.IGNORECASE)
#: Contentstack's reported ``error_code`` for "this login needs the two-factor token".
TFA_REQUIRED_CODE = 294


class LoginFailed(Exception):
    """A login that did not give an authtoken, phrased for the operator."""


class TwoFactorRequired(LoginFailed):
    """The account has two-factor authentication and no (valid) code was given."""


class SsoOnlyAccount(LoginFailed):
    """The account signs in through single sign-on and cannot get an authtoken."""


@dataclass(frozen=True)
class Session:
    authtoken: str
    user_uid: str
    #: organizations the user belongs to, when the answer lists them.
    organization_uids: tuple[str, ...]


def default_token_path() -> Path:
    """``$XDG_CONFIG_HOME/stackwatch/authtoken``, else ``~/.config/stackwatch/authtoken``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "stackwatch" / "authtoken"


def write_private(path: Path, secret: str) -> None:
    """Write a secret atomically into a file only its owner may read, whatever the umask."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(descriptor, 0o600)  # mkstemp makes 0600 too; say it, whatever changes
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_token(path: Path) -> str | None:
    """The stored token, or None when there is no (non-empty) file."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if token:
        register_secret(token)
    return token or None


class UserSessions:
    """Login, logout and a cheap "does this token still work?" on the shared HTTP layer."""

    def __init__(self, settings: ContentstackSettings, clock: Clock | None = None) -> None:
        from agent.collect.http import HttpClient  # httpx: not for ``stackwatch --help``

        self.settings = settings
        self.http = HttpClient(settings, clock or SystemClock(), anonymous=True)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> UserSessions:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def login(self, email: str, password: str, tfa_code: str | None = None) -> Session:
        register_secret(password)
        register_secret(tfa_code)
        user: dict[str, str] = {"email": email, "password": password}
        if tfa_code:
            user["tfa_token"] = tfa_code
        try:
            answer = self.http.get_json(
                "POST",
                self.settings.cma_url + SESSION_PATH,
                json={"user": user},
                authenticate=False,
                rate_limited=False,  # the CMA host, not the organization's analytics budget
                idempotent=False,  # a repeated login would use up one more token
            )
        except ContentstackError as error:
            raise _login_failure(error, tfa_code is not None) from None
        return _session(answer)

    def logout(self, authtoken: str) -> bool:
        """End the session; False when the token was already invalid (or evicted)."""
        register_secret(authtoken)
        try:
            self.http.request(
                "DELETE",
                self.settings.cma_url + SESSION_PATH,
                headers={"authtoken": authtoken},
                authenticate=False,
                rate_limited=False,
            )
        except ContentstackError as error:
            if error.status == 401:
                return False
            raise
        return True

    def token_works(self, authtoken: str) -> bool:
        """Whether the organization's Automations API accepts the token (one small list call).

        401 means invalid or evicted; 403 means the token is valid but lacks access.
        Other failures raise: they say nothing about the token.
        """
        register_secret(authtoken)
        try:
            self.http.request(
                "GET",
                self.settings.automations_url + "/v1/projects",
                params={"limit": "1"},
                headers={
                    "authtoken": authtoken,
                    "organization_uid": self.settings.organization_uid,
                },
                authenticate=False,
            )
        except ContentstackError as error:
            if error.status == 401:
                return False
            if error.status == 403:
                return True
            raise
        return True


def _login_failure(error: ContentstackError, sent_code: bool) -> Exception:
    if error.status is None or not 400 <= error.status < 500:
        return error  # unavailable, server error: not an answer about the credentials
    text = error.message
    if _SSO.search(text):
        return SsoOnlyAccount(
            "this account signs in through SSO (single sign-on), which gives no authtoken: "
            "log in as a non-SSO organization Owner or Admin, or use OAuth client "
            "credentials (contentstack.oauth_client_id and oauth_client_secret_file)"
        )
    if error.error_code == TFA_REQUIRED_CODE or _TWO_FACTOR.search(text):
        if sent_code:
            return TwoFactorRequired(
                f"the two-factor code was not accepted (HTTP {error.status}); try a fresh one"
            )
        return TwoFactorRequired("this account uses two-factor authentication: a code is needed")
    return LoginFailed(f"login refused: {text}")


def _session(answer: Any) -> Session:
    user = answer.get("user") if isinstance(answer, dict) else None
    token = user.get("authtoken") if isinstance(user, dict) else None
    if not isinstance(user, dict) or not isinstance(token, str) or not token.strip():
        raise MalformedResponse(
            f"POST {SESSION_PATH} answered without user.authtoken", endpoint=f"POST {SESSION_PATH}"
        )
    register_secret(token.strip())
    organizations = user.get("org_uid")
    return Session(
        authtoken=token.strip(),
        user_uid=str(user.get("uid") or ""),
        organization_uids=tuple(
            str(uid) for uid in (organizations if isinstance(organizations, list) else [])
        ),
    )
