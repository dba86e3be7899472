"""Random, mangled and truncated answers to every request the clients make give a result
or a typed error (``ContentstackError`` and its kinds), never any other exception.

The volume runs on httpx's MockTransport with a ManualClock (retries and job polling
cost no time); a real server on 127.0.0.1 sends what MockTransport cannot: bodies
shorter than their Content-Length, broken chunking, garbage instead of a status line.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from agent.clock import ManualClock
from agent.collect import (
    ApiUnavailable,
    Clients,
    ContentstackError,
    MalformedResponse,
    RateLimiter,
    ServerError,
    build_clients,
)
from agent.collect.models import PAGINATED_METRICS, AnalyticsQuery, ExecutionsQuery, Metric

from .conftest import make_settings

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
TOKEN_URL = "https://auth.test/token"
DAY = date(2024, 3, 9)

#: a well-formed answer per endpoint (method, path); a fuzzed endpoint gets junk instead
VALID: dict[tuple[str, str], Any] = {
    ("POST", "/token"): {"access_token": "tok-1", "expires_in": 3600, "token_type": "bearer"},
    ("GET", "/analytics/v2/job/j1/data"): {
        "data": [{"date": "2024-03-09", "type": "cdn", "status": "2xx", "count": 5}],
        "totalDocs": 1,
    },
    ("GET", "/v1/projects"): {"projects": [{"id": "p1", "name": "Ops"}]},
    ("GET", "/v1/projects/p1"): {"project": {"id": "p1", "name": "Ops"}},
    ("GET", "/v1/projects/p1/automations"): {
        "rules": [{"id": "a1", "title": "Purge", "active": True, "project_uid": "p1"}]
    },
    ("GET", "/v1/projects/p1/automations/a1"): {"id": "a1", "title": "Purge", "active": True},
    ("PATCH", "/v1/projects/p1/automations/a1"): {"message": "Automation updated"},
    ("GET", "/v1/projects/p1/executions"): {
        "executions": [
            {"id": "e1", "status": "success", "created_at": "2024-03-10T11:00:00Z", "rule": "a1"}
        ]
    },
    ("GET", "/v1/projects/p1/executions/e1"): {
        "executions": [{"id": "e1", "status": "failed", "created_at": "2024-03-10T11:00:00Z"}]
    },
    ("GET", "/v1/projects/p1/audit-logs"): {"logs": [{"action": "update"}]},
    ("POST", "/automations-api/run/purge"): {"status": "triggered"},
}
for _metric in Metric:
    VALID[("GET", f"/analytics/v2/{_metric.value}")] = {
        "jobId": "j1",
        "paginated": _metric in PAGINATED_METRICS,
    }


def _query(metric: Metric) -> AnalyticsQuery:
    return AnalyticsQuery(metric=metric, start=DAY, end=DAY, duration="day", services=("cdn",))


#: what the clients do, and the endpoint whose answer is fuzzed while they do it
CALLS: list[tuple[str, tuple[str, str], Callable[[Clients], Any]]] = [
    *[
        (
            f"submit {m.value}",
            ("GET", f"/analytics/v2/{m.value}"),
            lambda c, m=m: c.analytics.fetch(_query(m)),
        )
        for m in Metric
    ],
    (
        "retrieve data",
        ("GET", "/analytics/v2/job/j1/data"),
        lambda c: c.analytics.fetch(_query(Metric.HTTP_STATUSES)),
    ),
    (
        "retrieve pages",
        ("GET", "/analytics/v2/job/j1/data"),
        lambda c: c.analytics.fetch(_query(Metric.DEVICES)),
    ),
    ("list projects", ("GET", "/v1/projects"), lambda c: c.automations.list_projects()),
    ("get project", ("GET", "/v1/projects/p1"), lambda c: c.automations.get_project("p1")),
    (
        "list automations",
        ("GET", "/v1/projects/p1/automations"),
        lambda c: c.automations.list_automations("p1"),
    ),
    (
        "get automation",
        ("GET", "/v1/projects/p1/automations/a1"),
        lambda c: c.automations.get_automation("p1", "a1"),
    ),
    (
        "disable automation",
        ("PATCH", "/v1/projects/p1/automations/a1"),
        lambda c: c.automations.disable("p1", "a1"),
    ),
    (
        "execution log",
        ("GET", "/v1/projects/p1/executions"),
        lambda c: c.automations.fetch(ExecutionsQuery(project_id="p1", limit=30)),
    ),
    (
        "execution samples",
        ("GET", "/v1/projects/p1/executions"),
        lambda c: c.automations.execution_samples("p1", NOW.replace(hour=0)),
    ),
    (
        "get execution",
        ("GET", "/v1/projects/p1/executions/e1"),
        lambda c: c.automations.get_execution("p1", "e1"),
    ),
    ("audit log", ("GET", "/v1/projects/p1/audit-logs"), lambda c: c.automations.audit_logs("p1")),
    (
        "trigger",
        ("POST", "/automations-api/run/purge"),
        lambda c: c.trigger.call("purge", secret=SecretStr("key-1")),
    ),
    ("OAuth token", ("POST", "/token"), lambda c: c.automations.list_projects()),
]

_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "j1", "2024-03-09", "true", "Job Failed", "NaN", "1e400"])
)
json_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def bodies(draw: st.DrawFn, valid: Any) -> bytes:
    """Junk of every sort, most of it close to what the endpoint really answers."""
    kinds = ["value", "reshaped", "nested deep", "truncated", "bytes", "deep", "bad utf-8"]
    kind = draw(st.sampled_from(kinds))
    if kind == "value":
        return json.dumps(draw(json_values)).encode()
    # the real keys (and a stranger)
    keys = [*valid, "data", "x"] if isinstance(valid, dict) else ["data", "x"]
    reshaped = dict(valid) if isinstance(valid, dict) else {}
    if kind == "reshaped":  # each holding anything at all
        reshaped.update(draw(st.dictionaries(st.sampled_from(keys), json_values, max_size=3)))
        return json.dumps(reshaped).encode()
    if kind == "nested deep":  # one of them a valid JSON array nested up to the parser's limit
        reshaped[draw(st.sampled_from(keys))] = "DEEP"
        depth = draw(st.integers(min_value=100, max_value=1_000))
        return json.dumps(reshaped).replace('"DEEP"', "[" * depth + "]" * depth).encode()
    if kind == "truncated":
        text = json.dumps(valid).encode()
        return text[: draw(st.integers(min_value=0, max_value=len(text) - 1))]
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "deep":
        depth = draw(st.integers(min_value=500, max_value=20_000))
        opener = draw(st.sampled_from([b"[", b'{"data":', b'{"jobId":[']))
        return opener * depth
    return b'{"jobId": "\xff\xfe", "data": ["\xc3"]}'


_STATUSES = [200, 200, 200, 200, 201, 204, 302, 400, 401, 403, 404, 412, 422, 429, 500, 502, 503]


@st.composite
def answers(draw: st.DrawFn, valid: Any) -> list[httpx.Response]:
    """One to three answers, the last repeated for every further request to the endpoint."""
    drawn = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        headers = {"content-type": "application/json"}
        if draw(st.booleans()):
            header = draw(
                st.sampled_from(["retry-after", "x-ratelimit-limit", "x-ratelimit-remaining"])
            )
            headers[header] = draw(
                st.sampled_from(["0", "-3", "1", "2.5", "abc", "1e400", "nan", ""])
            )
        status = draw(st.sampled_from(_STATUSES))
        drawn.append(httpx.Response(status, content=draw(bodies(valid)), headers=headers))
    return drawn


_JOB_DATA = re.compile(r"^/analytics/v2/job/[^/]+/data$")


def _clients(target: tuple[str, str], fuzzed: list[httpx.Response]) -> Clients:
    clock = ManualClock(NOW)
    left = list(fuzzed)

    def handler(request: httpx.Request) -> httpx.Response:
        # whatever job id the fuzzed submission named (still percent-encoded in the raw
        # path), its rows are at the one data path
        path = request.url.raw_path.decode().partition("?")[0]
        key = (request.method, _JOB_DATA.sub("/analytics/v2/job/j1/data", path))
        if key == target:
            answer = left.pop(0) if len(left) > 1 else left[0]
            # a fresh copy each time: an httpx.Response is read once
            return httpx.Response(
                answer.status_code, content=answer.content, headers=answer.headers
            )
        return httpx.Response(200, json=VALID[key])

    oauth = target == ("POST", "/token")
    overrides: dict[str, Any] = {"max_retries": 1, "job_timeout": 20}
    if oauth:
        overrides.update(
            authtoken=None,
            oauth_client_id="client-1",
            oauth_client_secret=SecretStr("client-secret-1"),
            oauth_token_url=TOKEN_URL,
        )
    return build_clients(
        make_settings(**overrides),
        clock,
        transport=httpx.MockTransport(handler),
        rng=random.Random(0),
        limiter=RateLimiter(10, clock),
    )


@pytest.mark.parametrize(("call", "target", "run"), CALLS, ids=[c[0] for c in CALLS])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_junk_answers_give_typed_errors_only(
    call: str, target: tuple[str, str], run: Callable[[Clients], Any], data: st.DataObject
) -> None:
    fuzzed = data.draw(answers(VALID[target]), label="answers")
    with _clients(target, fuzzed) as clients:
        try:
            run(clients)
        except ContentstackError as error:
            assert error.message  # a typed error that says something


# -- over a real socket -------------------------------------------------------------------------


class RawServer:
    """Answers every request on 127.0.0.1 with the same bytes, then closes the connection."""

    def __init__(self) -> None:
        self.answer = b""
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                conn.sendall(self.answer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


def _head(status: str, *headers: str) -> bytes:
    # the server closes after each answer: a retry must not race it on the same connection
    lines = [f"HTTP/1.1 {status}", *headers, "Connection: close", "", ""]
    return "\r\n".join(lines).encode()


WIRE = {
    "body shorter than its length": (
        _head("200 OK", "Content-Type: application/json", "Content-Length: 100") + b'{"jobId": ',
        ApiUnavailable,
    ),
    "broken chunking": (
        _head("200 OK", "Transfer-Encoding: chunked") + b"ZZ\r\nabc\r\n",
        ApiUnavailable,
    ),
    "no status line": (b"garbage\r\n\r\n", ApiUnavailable),
    "closed without a byte": (b"", ApiUnavailable),
    "gzip that is not": (
        _head("200 OK", "Content-Encoding: gzip", "Content-Length: 5") + b"hello",
        ApiUnavailable,
    ),
    "deep JSON": (
        _head("200 OK", "Content-Type: application/json", "Content-Length: 60000") + b"[" * 60000,
        MalformedResponse,
    ),
    "HTML error page": (
        _head("502 Bad Gateway", "Content-Type: text/html", "Content-Length: 24")
        + b"<html>bad gateway</html>",
        ServerError,
    ),
}


@pytest.mark.parametrize(("answer", "expected"), WIRE.values(), ids=list(WIRE))
def test_garbage_on_the_wire_gives_typed_errors(
    raw_server: RawServer, answer: bytes, expected: type[ContentstackError]
) -> None:
    raw_server.answer = answer
    clock = ManualClock(NOW)
    settings_ = make_settings(
        analytics_base_url=raw_server.url, automations_base_url=raw_server.url, max_retries=1
    )
    with build_clients(settings_, clock, limiter=RateLimiter(10, clock)) as clients:
        with pytest.raises(expected):
            clients.analytics.fetch(_query(Metric.USAGE))
        with pytest.raises(expected):
            clients.automations.list_projects()
