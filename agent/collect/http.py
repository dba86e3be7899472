"""The HTTP layer shared by every Contentstack client.

One ``HttpClient`` per configured organization: authentication, the shared
rate limiter, retries with exponential backoff and full jitter, and the mapping
of failed answers to typed errors. All waiting goes through the injected
``Clock`` so tests run on a ``ManualClock`` without sleeping.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog

from agent.clock import Clock
from agent.collect.auth import Auth, AuthtokenAuth, NoAuth, OAuthClientCredentials
from agent.collect.errors import (
    ApiUnavailable,
    ContentstackError,
    MalformedResponse,
    error_for_status,
)
from agent.collect.health import ApiHealth
from agent.collect.ratelimit import RateLimiter, shared_limiter
from agent.config import ContentstackSettings

log = structlog.get_logger(__name__)

USER_AGENT = "stackwatch/0.1"
#: answers worth another try: rate limited, or the server/gateway had a bad moment.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: statuses that mean "not processed", so even a non-idempotent request may be repeated.
_UNPROCESSED_STATUSES = frozenset({429, 503})
_MISSING: Any = object()

#: inspects every final answer before it is mapped to a result or an error; may raise.
ResponseHook = Callable[[httpx.Response], None]
#: told of every attempt: (endpoint, HTTP status or 0 when no answer came); for metrics.
RequestObserver = Callable[[str, int], None]


class HttpClient:
    """Sync HTTP client for one organization; thread-safe (``httpx.Client`` is)."""

    def __init__(
        self,
        settings: ContentstackSettings,
        clock: Clock,
        *,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
        limiter: RateLimiter | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_after: float = 120.0,
        anonymous: bool = False,
    ) -> None:
        """``anonymous``: no configured credentials (login, logout); requests that need
        some pass them in ``headers`` with ``authenticate=False``."""
        problem = None if anonymous else settings.credentials_problem()
        if problem is not None:
            raise ValueError(problem)
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self.limiter = limiter or shared_limiter(
            settings.organization_uid, settings.rate_limit, clock
        )
        self.max_retries = settings.max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        # a server asking for a longer pause than this gets an error instead of a blocked thread
        self.max_retry_after = max_retry_after
        self._client_built: Future[httpx.Client] = Future()
        options: dict[str, Any] = {
            "transport": transport,
            "timeout": httpx.Timeout(settings.request_timeout.total_seconds()),
            "headers": {"user-agent": USER_AGENT, "accept": "application/json"},
            "follow_redirects": False,
        }
        if transport is None:
            # loading the CA bundle takes a few tenths of a second, mostly outside the GIL:
            # it loads on a thread while the caller goes on (the daemon's start-up)
            threading.Thread(
                target=self._build_client, args=(options,), name="http-client", daemon=True
            ).start()
        else:
            self._build_client(options)
        self.auth: Auth = NoAuth() if anonymous else self._make_auth()
        self.observer: RequestObserver | None = None
        self.health = ApiHealth(clock)

    def _build_client(self, options: dict[str, Any]) -> None:
        try:
            self._client_built.set_result(httpx.Client(**options))
        except BaseException as error:  # raised again where the client is first used
            self._client_built.set_exception(error)

    @property
    def _client(self) -> httpx.Client:
        return self._client_built.result()

    def _make_auth(self) -> Auth:
        settings = self.settings
        if settings.uses_oauth:
            assert settings.oauth_client_id and settings.oauth_client_secret  # config validates
            return OAuthClientCredentials(
                token_url=settings.oauth_token_url,
                client_id=settings.oauth_client_id,
                client_secret=settings.oauth_client_secret,
                clock=self.clock,
                post_form=self._post_token_form,
            )
        assert settings.authtoken is not None  # credentials_problem() checked it
        return AuthtokenAuth(settings.authtoken)

    def _post_token_form(self, url: str, form: dict[str, str]) -> Any:
        # the token host is not the organization's API: no auth, no org rate limit
        return self.get_json(
            "POST", url, data=form, authenticate=False, rate_limited=False, endpoint="POST token"
        )

    def close(self) -> None:
        if self._client_built.exception() is None:  # (a client that failed to build holds nothing)
            self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------------

    def get_json(self, method: str, url: str, **kwargs: Any) -> Any:
        """``request`` and decode the JSON body; MalformedResponse if it is not JSON."""
        response = self.request(method, url, **kwargs)
        return decode_json(response, kwargs.get("endpoint") or endpoint_of(method, url))

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = _MISSING,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
        rate_limited: bool = True,
        idempotent: bool = True,
        retry_statuses: frozenset[int] = RETRYABLE_STATUSES,
        final_if: Callable[[ContentstackError], bool] | None = None,
        endpoint: str | None = None,
        on_response: ResponseHook | None = None,
    ) -> httpx.Response:
        """Send a request, retrying transient failures; return a 2xx answer or raise.

        ``idempotent=False`` (trigger calls) retries only failures that prove the
        request was not processed: connection refused/connect timeout, 429, 503.
        ``final_if`` marks error answers that are a verdict rather than a hiccup (an
        Analytics "Job Failed" is a 500 like any other): those are never retried.
        ``endpoint`` names the request in errors and logs (default: method + path).
        """
        endpoint = endpoint or endpoint_of(method, url)
        retries = 0
        reauthenticated = False
        while True:
            send_headers = dict(headers or {})
            if authenticate:
                send_headers.update(self.auth.headers())
            try:
                response = self._send(
                    method, url, params, json, data, send_headers, rate_limited=rate_limited
                )
            except httpx.HTTPError as error:
                self.health.observe(endpoint, 0)
                if self.observer is not None:
                    self.observer(endpoint, 0)
                retryable = _is_transient(error) and (idempotent or _surely_unsent(error))
                if retryable and retries < self.max_retries:
                    wait = self._backoff(retries)
                    self._log_retry(endpoint, type(error).__name__, retries, wait)
                    self.clock.sleep(wait)
                    retries += 1
                    continue
                what = "timed out" if isinstance(error, httpx.TimeoutException) else "failed"
                failure = ApiUnavailable(
                    f"{endpoint} {what} after {retries + 1} attempt(s): {type(error).__name__}",
                    endpoint=endpoint,
                )
                log.warning("contentstack.unavailable", endpoint=endpoint, error=failure.message)
                raise failure from error

            self.health.observe(endpoint, response.status_code)
            if self.observer is not None:
                self.observer(endpoint, response.status_code)
            if on_response is not None:
                on_response(response)
            status = response.status_code
            if 200 <= status < 300:
                return response
            if status == 401 and authenticate and not reauthenticated and self.auth.invalidate():
                # an OAuth token may have been revoked or expired early: fetch one more, once
                reauthenticated = True
                log.info("contentstack.reauthenticate", endpoint=endpoint)
                continue
            api_error = error_from_response(response, endpoint)
            final = final_if is not None and final_if(api_error)
            if (
                status in retry_statuses
                and not final
                and (idempotent or status in _UNPROCESSED_STATUSES)
            ):
                retry_after = parse_retry_after(response.headers.get("retry-after"), self.clock)
                if retries < self.max_retries and (
                    retry_after is None or retry_after <= self.max_retry_after
                ):
                    wait = retry_after if retry_after is not None else self._backoff(retries)
                    if status == 429:
                        # the whole organization is over its budget, not just this thread
                        wait = max(wait, self.limiter.window if retry_after is None else 0.0)
                        self.limiter.pause(wait, reason="HTTP 429")
                    self._log_retry(endpoint, f"HTTP {status}", retries, wait)
                    self.clock.sleep(wait)
                    retries += 1
                    continue
                if retry_after is not None and retry_after > self.max_retry_after:
                    api_error = type(api_error)(
                        f"{api_error.message} (server asked to retry after {retry_after:.0f}s)",
                        status=api_error.status,
                        endpoint=endpoint,
                        error_code=api_error.error_code,
                    )
            log.warning(
                "contentstack.error",
                endpoint=endpoint,
                status=status,
                error_type=type(api_error).__name__,
                error=api_error.message,
                attempts=retries + 1,
            )
            raise api_error

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        json: Any,
        data: Mapping[str, str] | None,
        headers: dict[str, str],
        *,
        rate_limited: bool,
    ) -> httpx.Response:
        kwargs: dict[str, Any] = {"params": params, "headers": headers}
        if json is not _MISSING:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        if not rate_limited:
            return self._client.request(method, url, **kwargs)
        with self.limiter.slot():
            response = self._client.request(method, url, **kwargs)
        self.limiter.observe(
            response.headers.get("x-ratelimit-limit"), response.headers.get("x-ratelimit-remaining")
        )
        return response

    def _backoff(self, retries: int) -> float:
        # "full jitter": uniform over [0, capped exponential], spreads retrying clients apart
        ceiling = min(self.backoff_cap, self.backoff_base * (2**retries))
        return self.rng.uniform(0.0, ceiling)

    def _log_retry(self, endpoint: str, reason: str, retries: int, wait: float) -> None:
        log.warning(
            "contentstack.retry",
            endpoint=endpoint,
            reason=reason,
            retry=retries + 1,
            max_retries=self.max_retries,
            wait=round(wait, 3),
        )


# -- helpers -----------------------------------------------------------------------------------


def endpoint_of(method: str, url: str) -> str:
    """``"GET /analytics/v2/usage"``: method and path, never the query string."""
    return f"{method.upper()} {httpx.URL(url).path}"


def _is_transient(error: httpx.HTTPError) -> bool:
    return isinstance(
        error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
    )


def _surely_unsent(error: httpx.HTTPError) -> bool:
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def parse_retry_after(value: str | None, clock: Clock) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - clock.now()).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def json_body(response: httpx.Response) -> Any:
    """The decoded body; ValueError when it is not JSON, nested too deep to decode included."""
    try:
        return response.json()
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def error_details(response: httpx.Response) -> tuple[int | str | None, str]:
    """Contentstack's ``error_code`` and a readable message from an error body."""
    try:
        body = json_body(response)
    except ValueError:
        text = " ".join(response.text.split())
        return None, text[:200]
    if not isinstance(body, dict):
        return None, str(body)[:200]
    code = body.get("error_code")
    if not isinstance(code, int | str) or isinstance(code, bool):
        code = None
    message = ""
    for key in ("error_message", "message", "error", "notice", "result"):
        if isinstance(body.get(key), str) and body[key].strip():
            message = body[key].strip()
            break
    errors = body.get("errors")
    if isinstance(errors, dict) and errors:
        fields = "; ".join(f"{name}: {problem}" for name, problem in list(errors.items())[:5])
        message = f"{message} ({fields})" if message else fields
    return code, message[:500]


def error_from_response(response: httpx.Response, endpoint: str) -> ContentstackError:
    status = response.status_code
    code, detail = error_details(response)
    message = f"{endpoint} answered HTTP {status}"
    if detail:
        message += f": {detail}"
    return error_for_status(status)(message, status=status, endpoint=endpoint, error_code=code)


def decode_json(response: httpx.Response, endpoint: str) -> Any:
    try:
        return json_body(response)
    except ValueError:
        raise MalformedResponse(
            f"{endpoint} answered HTTP {response.status_code} with a body that is not JSON",
            status=response.status_code,
            endpoint=endpoint,
        ) from None
