"""Credentials → request headers.

Two schemes: a user ``authtoken`` (long-lived; the agent never logs in itself,
because every login evicts one of the user's 20 live tokens), or an OAuth M2M
bearer token from a client-credentials grant, refreshed before it expires.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from agent.clock import Clock
from agent.collect.errors import MalformedResponse
from agent.redact import register_secret

log = structlog.get_logger(__name__)

#: refresh this long before ``expires_in`` runs out (capped to a tenth of the lifetime).
REFRESH_MARGIN = 60.0
#: lifetime assumed when the token answer has no usable ``expires_in``.
DEFAULT_TOKEN_LIFETIME = 3600.0


class Auth(Protocol):
    def headers(self) -> dict[str, str]:
        """Headers that authenticate one request."""
        ...

    def invalidate(self) -> bool:
        """Forget cached credentials after a 401; True if retrying can help."""
        ...


class AuthtokenAuth:
    def __init__(self, authtoken: SecretStr) -> None:
        self._token = authtoken
        register_secret(authtoken.get_secret_value())

    def headers(self) -> dict[str, str]:
        return {"authtoken": self._token.get_secret_value()}

    def invalidate(self) -> bool:
        return False  # a rejected authtoken stays rejected

    def __repr__(self) -> str:
        return "AuthtokenAuth(authtoken=***)"


class NoAuth:
    """No credentials: requests go out as they are (logging in, for one)."""

    def headers(self) -> dict[str, str]:
        return {}

    def invalidate(self) -> bool:
        return False


class _TokenAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # it goes out in an Authorization header: visible ASCII only (no spaces, no newlines)
    access_token: str = Field(pattern=r"^[\x21-\x7e]+$")
    expires_in: float | None = None
    token_type: str | None = None
    organization_uid: str | None = None


#: posts a form to a URL and returns the decoded JSON answer (the shared HTTP layer).
PostForm = Callable[[str, dict[str, str]], Any]


class OAuthClientCredentials:
    """OAuth M2M: ``grant_type=client_credentials``, form-encoded, cached until near expiry."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        clock: Clock,
        post_form: PostForm,
    ) -> None:
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        self._post_form = post_form
        self._lock = threading.Lock()
        self._token: SecretStr | None = None
        self._refresh_at = 0.0
        register_secret(client_secret.get_secret_value())

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._current().get_secret_value()}"}

    def invalidate(self) -> bool:
        with self._lock:
            self._token = None
        return True

    def _current(self) -> SecretStr:
        # one lock around the fetch: concurrent requests wait for a single token grant
        with self._lock:
            if self._token is None or self._clock.monotonic() >= self._refresh_at:
                self._token, lifetime = self._fetch()
                self._refresh_at = self._clock.monotonic() + lifetime - _margin(lifetime)
            return self._token

    def _fetch(self) -> tuple[SecretStr, float]:
        answer = self._post_form(
            self._token_url,
            {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret.get_secret_value(),
            },
        )
        try:
            token = _TokenAnswer.model_validate(answer)
        except ValidationError:
            raise MalformedResponse(
                "OAuth token answer has no usable access_token", endpoint="POST token"
            ) from None
        register_secret(token.access_token)
        lifetime = token.expires_in
        if lifetime is None or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        log.info("contentstack.oauth.token", expires_in=lifetime)
        return SecretStr(token.access_token), lifetime

    def __repr__(self) -> str:
        return f"OAuthClientCredentials(client_id={self._client_id!r}, client_secret=***)"


def _margin(lifetime: float) -> float:
    return min(REFRESH_MARGIN, lifetime / 10)
