"""Who may change something through the web pages, and proof that a form is ours.

A browser proves it holds the API token once, on the login form: the session cookie it
then carries is an HMAC of the token and the time of login under a secret of this
process (never the token itself), valid for ``SESSION_TTL``. Every form carries a CSRF
token (an HMAC of its issue time under the same secret) and every POST must come with an
``Origin`` (or ``Referer``) of the page's own host: another site can neither read our
forms' tokens nor post with our origin. A restart makes a new secret, so old sessions
and forms are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Protocol
from urllib.parse import urlsplit

from agent.clock import Clock

SESSION_COOKIE = "stackwatch_session"
SESSION_TTL = timedelta(hours=12)
FORM_TTL = timedelta(hours=12)


class Headers(Protocol):
    """A request's headers: ``http.server``'s ``Message`` or a dict."""

    def get(self, name: str, /) -> str | None: ...


class Guard:
    def __init__(self, token: str | None, clock: Clock) -> None:
        self._token = token
        self._clock = clock
        self._secret = secrets.token_bytes(32)

    def _sign(self, *parts: str) -> str:
        return hmac.new(self._secret, "\n".join(parts).encode(), hashlib.sha256).hexdigest()

    def _fresh(self, value: str, ttl: timedelta, *parts: str) -> bool:
        stamp, _, signature = value.partition(".")
        if not stamp.isdigit() or not hmac.compare_digest(signature, self._sign(*parts, stamp)):
            return False
        age = self._clock.now().timestamp() - int(stamp)
        return -60 <= age <= ttl.total_seconds()

    def _stamp(self) -> str:
        return str(int(self._clock.now().timestamp()))

    # -- forms ------------------------------------------------------------------------

    def form_token(self) -> str:
        stamp = self._stamp()
        return f"{stamp}.{self._sign('csrf', stamp)}"

    def form_ok(self, value: str) -> bool:
        return self._fresh(value, FORM_TTL, "csrf")

    # -- sessions ---------------------------------------------------------------------

    def token_ok(self, given: str) -> bool:
        if self._token is None:
            return True
        return hmac.compare_digest(given.strip().encode(), self._token.encode())

    def session_for(self, given_token: str) -> str | None:
        """A session cookie value for a correct API token, else None."""
        if not self.token_ok(given_token):
            return None
        stamp = self._stamp()
        return f"{stamp}.{self._sign('session', self._token or '', stamp)}"

    def session_ok(self, cookie: str | None) -> bool:
        if self._token is None:
            return True
        return cookie is not None and self._fresh(cookie, SESSION_TTL, "session", self._token)

    def bearer_ok(self, header: str | None) -> bool:
        return header is not None and header.startswith("Bearer ") and self.token_ok(header[7:])


def same_origin(headers: Headers) -> bool:
    """The request's ``Origin`` (or, without one, its ``Referer``) names the host it was
    sent to."""
    host = headers.get("Host")
    source = headers.get("Origin") or headers.get("Referer")
    if not host or not source or source == "null":
        return False
    parts = urlsplit(source)
    return parts.scheme in ("http", "https") and parts.netloc == host
