"""Error answers shaped like Contentstack's: ``{"error_message", "error_code", "errors"}``.

``error_code`` is an internal Contentstack number, deliberately never equal to the HTTP
status, so clients that confuse the two fail against the simulator as they would in
production. The values below are the simulator's own choice.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    LOGIN_FAILED = 104
    NOT_LOGGED_IN = 105
    INVALID_API_KEY = 109
    NOT_FOUND = 118
    INVALID_PARAMETERS = 141
    ACCESS_DENIED = 162
    RATE_LIMITED = 197
    #: the reported answer to a 2FA user's login without ``tfa_token``.
    TFA_REQUIRED = 294
    TFA_INVALID = 295
    SSO_ONLY = 317
    JOB_FAILED = 9001
    UPSTREAM = 9002


class ApiError(Exception):
    """Raised by handlers; the server turns it into a JSON error response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_code: ErrorCode = ErrorCode.INVALID_PARAMETERS,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.errors = errors or {}
        self.headers = headers or {}
        #: a body in another shape (OAuth errors follow RFC 6749, not Contentstack).
        self.payload = payload

    def body(self) -> dict[str, Any]:
        if self.payload is not None:
            return self.payload
        return {
            "error_message": self.message,
            "error_code": int(self.error_code),
            "errors": self.errors,
        }


def invalid(field: str, problem: str, status: int = 400) -> ApiError:
    """A parameter error naming the offending field, as the real API does."""
    return ApiError(
        status,
        f"Invalid parameter {field!r}: {problem}",
        error_code=ErrorCode.INVALID_PARAMETERS,
        errors={field: [problem]},
    )


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found", error_code=ErrorCode.NOT_FOUND)
