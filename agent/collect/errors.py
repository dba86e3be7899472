"""Typed errors raised by the Contentstack clients.

Every error carries the HTTP ``status`` (None when no answer came), the
``endpoint`` (method and path, never the query string), Contentstack's internal
``error_code`` when the body had one, and a message. Message and endpoint pass
through ``redact`` on construction, so neither ``str()`` nor ``repr()`` of an
error can leak a registered secret, even if the server echoed one back.
"""

from __future__ import annotations

from agent.redact import redact


class ContentstackError(Exception):
    """Base class; also used as-is for statuses the documentation does not list."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        endpoint: str = "",
        error_code: int | str | None = None,
    ) -> None:
        self.message = redact(message)
        self.status = status
        self.endpoint = redact(endpoint)
        self.error_code = error_code
        super().__init__(self.message)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, endpoint={self.endpoint!r}, "
            f"error_code={self.error_code!r}, message={self.message!r})"
        )

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # keep the keyword-only constructor usable by pickle / copy (e.g. across processes)
        return (
            _rebuild,
            (type(self), self.message, self.status, self.endpoint, self.error_code),
        )


def _rebuild(
    cls: type[ContentstackError],
    message: str,
    status: int | None,
    endpoint: str,
    error_code: int | str | None,
) -> ContentstackError:
    return cls(message, status=status, endpoint=endpoint, error_code=error_code)


class BadRequest(ContentstackError):
    """HTTP 400: a parameter was refused (e.g. an unknown ``duration``)."""


class AuthenticationFailed(ContentstackError):
    """HTTP 401: the authtoken or OAuth token is invalid."""


class PermissionDenied(ContentstackError):
    """HTTP 403: authenticated, but e.g. not an organization Owner/Admin."""


class NotFound(ContentstackError):
    """HTTP 404."""


class InvalidApiKey(ContentstackError):
    """HTTP 412: the stack API key is invalid."""


class ValidationFailed(ContentstackError):
    """HTTP 422: semantically invalid request."""


class RateLimited(ContentstackError):
    """HTTP 429, still returned after every retry."""


class ServerError(ContentstackError):
    """HTTP 5xx, still returned after every retry (or not retryable)."""


class ApiUnavailable(ContentstackError):
    """Timeouts or connection failures, after every retry."""


class MalformedResponse(ContentstackError):
    """A success answer that is not JSON or does not have the documented shape."""


class JobFailed(ContentstackError):
    """An Analytics job ended in failure (Retrieve Data answered 500 "Job Failed")."""


class ResultTooLarge(ContentstackError):
    """An Analytics result longer than the agent reads: an error, never a silent partial."""


class JobTimeout(ContentstackError):
    """An Analytics job did not finish within ``job_timeout``."""


class TriggerInactive(ContentstackError):
    """An HTTP trigger answered that its automation is being tested or not activated."""


#: documented HTTP statuses → error type; other 5xx map to ServerError, other codes to the base.
STATUS_ERRORS: dict[int, type[ContentstackError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    412: InvalidApiKey,
    422: ValidationFailed,
    429: RateLimited,
}


def error_for_status(status: int) -> type[ContentstackError]:
    if status in STATUS_ERRORS:
        return STATUS_ERRORS[status]
    if 500 <= status <= 599:
        return ServerError
    return ContentstackError
