"""Run an automation from outside through its HTTP Request trigger.

There is no "run now" endpoint in the Management API; an automation with an
HTTP trigger is started by calling ``https://{app-host}/automations-api/run/{trigger_id}``.
No authtoken goes with it (the trigger URL is its own credential, optionally backed
by the ``ah-http-key`` secret), so trigger ids are kept out of errors and logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx
import structlog
from pydantic import SecretStr

from agent.collect.errors import TriggerInactive
from agent.collect.http import HttpClient, json_body
from agent.redact import register_secret

log = structlog.get_logger(__name__)

#: the documented answer of an automation that is inactive or in test mode.
INACTIVE_MARKER = "currently being tested or not activated"
_ENDPOINT_PATH = "/automations-api/run/{trigger_id}"


@dataclass(frozen=True)
class TriggerResult:
    status: int
    #: the decoded JSON answer, or its text when it is not JSON (the answer is undocumented).
    body: Any


class TriggerCaller:
    def __init__(self, http: HttpClient, base_url: str | None = None) -> None:
        self.http = http
        # triggers live on the region's app host, the same host as Analytics
        self.base_url = (base_url or http.settings.analytics_url).rstrip("/")

    def url_for(self, trigger_id: str) -> str:
        return f"{self.base_url}/automations-api/run/{quote(trigger_id, safe='')}"

    def call(
        self,
        trigger: str,
        *,
        method: Literal["GET", "POST"] = "POST",
        body: Any = None,
        secret: SecretStr | None = None,
        idempotent: bool = False,
    ) -> TriggerResult:
        """Call a trigger (its id or full URL); raise TriggerInactive if the automation is off.

        Calls are not retried when the automation may already have run (timeouts after
        sending, 5xx other than 503) unless ``idempotent`` says repeating is harmless.
        """
        url = trigger if trigger.startswith(("https://", "http://")) else self.url_for(trigger)
        method_name = method.upper()
        endpoint = f"{method_name} {_ENDPOINT_PATH}"
        headers: dict[str, str] = {}
        if secret is not None:
            register_secret(secret.get_secret_value())
            headers["ah-http-key"] = secret.get_secret_value()
        kwargs: dict[str, Any] = {}
        if method_name == "POST":
            kwargs["json"] = {} if body is None else body
        response = self.http.request(
            method_name,
            url,
            headers=headers,
            authenticate=False,
            idempotent=idempotent,
            endpoint=endpoint,
            on_response=lambda answer: _raise_if_inactive(answer, endpoint),
            **kwargs,
        )
        log.info("automations.trigger.called", endpoint=endpoint, status=response.status_code)
        return TriggerResult(status=response.status_code, body=_body(response))


def _raise_if_inactive(response: httpx.Response, endpoint: str) -> None:
    body = _body(response)
    result = body.get("result") if isinstance(body, dict) else body
    if isinstance(result, str) and INACTIVE_MARKER in result.lower():
        raise TriggerInactive(
            f"{endpoint}: the automation is being tested or not activated",
            status=response.status_code,
            endpoint=endpoint,
        )


def _body(response: httpx.Response) -> Any:
    try:
        return json_body(response)
    except ValueError:
        return response.text
