"""The user session of the Content Management API: ``POST`` and ``DELETE /v3/user-session``.

A login hands out a new authtoken. A user has at most ``MAX_TOKENS_PER_USER`` live
tokens: the next login silently evicts the oldest, which from then on gets 401
everywhere, as in production. Users with two-factor authentication must send
``tfa_token``; SSO-only users get no authtoken at all.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from agent.simulator.errors import ApiError, ErrorCode
from agent.simulator.scenario import User

SESSION_PATH = "/v3/user-session"
MAX_TOKENS_PER_USER = 20


class Sessions:
    """Live authtokens of the scenario's users, oldest first per user; thread-safe."""

    def __init__(self, users: Iterable[User]) -> None:
        self._users = {user.email.lower(): user for user in users}
        self._lock = threading.Lock()
        #: token → user email, in creation order.
        self._tokens: OrderedDict[str, str] = OrderedDict()
        #: every token ever handed out, evicted or not (for tests counting logins).
        self.issued = 0

    def user_of(self, token: str) -> User | None:
        with self._lock:
            email = self._tokens.get(token)
        return None if email is None else self._users[email]

    def live_tokens(self, email: str) -> list[str]:
        with self._lock:
            return [token for token, owner in self._tokens.items() if owner == email.lower()]

    def login(self, body: bytes) -> dict[str, Any]:
        user, tfa_token = self._credentials(body)
        if user.sso:
            raise ApiError(
                422,
                "This account signs in through SSO (single sign-on) only; it cannot log in "
                "with a password and gets no authtoken.",
                error_code=ErrorCode.SSO_ONLY,
                errors={"sso": ["enabled for this account"]},
            )
        if user.tfa_code is not None:
            if tfa_token is None:
                raise ApiError(
                    422,
                    "Please login using the two-factor verification token (tfa_token).",
                    error_code=ErrorCode.TFA_REQUIRED,
                    errors={"tfa_token": ["is required"]},
                )
            if tfa_token != user.tfa_code:
                raise ApiError(
                    401,
                    "The two-factor verification token (tfa_token) is invalid.",
                    error_code=ErrorCode.TFA_INVALID,
                    errors={"tfa_token": ["is invalid"]},
                )
        token = "blt" + secrets.token_hex(12)
        email = user.email.lower()
        with self._lock:
            owned = [t for t, owner in self._tokens.items() if owner == email]
            for evicted in owned[: max(0, len(owned) - MAX_TOKENS_PER_USER + 1)]:
                del self._tokens[evicted]
            self._tokens[token] = email
            self.issued += 1
        return {
            "notice": "Login Successful.",
            "user": {
                "uid": user.uid,
                "email": user.email,
                "authtoken": token,
                "org_uid": [],  # filled in by the server, which knows the organization
            },
        }

    def logout(self, token: str | None) -> dict[str, Any]:
        with self._lock:
            known = token is not None and self._tokens.pop(token, None) is not None
        if not known:
            raise ApiError(
                401,
                "You're not allowed in here unless you're logged in.",
                error_code=ErrorCode.NOT_LOGGED_IN,
            )
        return {"notice": "You've logged out successfully!"}

    def _credentials(self, body: bytes) -> tuple[User, str | None]:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "The request body is not valid JSON.") from None
        fields = payload.get("user") if isinstance(payload, dict) else None
        if not isinstance(fields, dict):
            raise ApiError(422, "Please provide the user's email and password.")
        email, password = fields.get("email"), fields.get("password")
        if not isinstance(email, str) or not isinstance(password, str):
            raise ApiError(
                422,
                "Please provide the user's email and password.",
                errors={"email": ["is required"], "password": ["is required"]},
            )
        user = self._users.get(email.lower())
        if user is None or (not user.sso and password != user.password):
            raise ApiError(
                422,
                "Looks like your email or password is invalid. Please try again.",
                error_code=ErrorCode.LOGIN_FAILED,
                errors={"email": ["or password is invalid"]},
            )
        tfa_token = fields.get("tfa_token")
        return user, tfa_token if isinstance(tfa_token, str) and tfa_token else None
