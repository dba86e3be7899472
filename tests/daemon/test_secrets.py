"""Known secrets never leave the daemon: a real daemon at debug log level, configured with
every kind of secret, driven through the paths that report errors (a revoked token, a
failing OAuth token endpoint, failing channels, a failing trigger, a bad API token), then
its stderr, its HTTP answers and the bytes of its state directory (database and WAL) are
searched for each secret.
"""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.simulator import Fault, Simulator

from .support import (
    AUTHTOKEN,
    WEBSITE,
    DaemonProcess,
    WebhookReceiver,
    cdn_spike,
    purge_remediation,
    ratio_rule,
    wait_until,
    write_config,
)
from .test_process import SPEED, _simulator

pytestmark = pytest.mark.timeout(180)

OAUTH_ID = "stackwatch-client"
OAUTH_SECRET = "oauth-client-secret-7d2f9a"
TRIGGER_KEY = "trigger-key-e41b07c3"
MAIL_PASSWORD = "mail-password-b9c3aa"
JSON_PASSWORD = "json-password-0a6d71"
CHAT_TOKEN = "chattoken8f1e2d55"
API_TOKEN = "api-token-c55e1f0b9d"
#: the simulator and the daemon share simulated time from here (each process works it out)
ORIGIN = datetime.now(UTC)
SECRETS = [
    AUTHTOKEN,
    OAUTH_SECRET,
    TRIGGER_KEY,
    MAIL_PASSWORD,
    JSON_PASSWORD,
    CHAT_TOKEN,
    API_TOKEN,
]


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound but not listening: every connection to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _config(
    tmp_path: Path, sim: Simulator, hook: WebhookReceiver, port: int, *, oauth: bool
) -> Path:
    credentials = (
        f'oauth_client_id = "{OAUTH_ID}"\noauth_client_secret = "{OAUTH_SECRET}"\n'
        f'oauth_token_url = "{sim.url}/token"'
        if oauth
        else ""
    )
    config = write_config(
        tmp_path,
        simulator_url=sim.url,
        hook_port=hook.port,
        origin=ORIGIN,
        speed=SPEED,
        log_level="debug",
        extra_contentstack=credentials,
        extra_agent=f'api_token = "{API_TOKEN}"',
    )
    text = config.read_text().replace('channels = ["hook"]', 'channels = ["hook", "broken"]')
    config.write_text(
        text
        + f"""
[[notify.channels]]
name = "broken"
urls = [
    "mailto://alerts:{MAIL_PASSWORD}@127.0.0.1:{port}?from=sw@example.com&to=ops@example.com",
    "json://hook:{JSON_PASSWORD}@127.0.0.1:{port}/",
    "mmost://127.0.0.1:{port}/{CHAT_TOKEN}",
]

"""
        + purge_remediation(f'http_key = "{TRIGGER_KEY}"')
    )
    return config


def _post(url: str, token: str, body: Mapping[str, object]) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_no_secret_reaches_logs_api_metrics_or_the_state_files(
    tmp_path: Path, refused_port: int
) -> None:
    with _simulator(ORIGIN) as sim, WebhookReceiver() as hook:
        sim.oauth_clients[OAUTH_ID] = OAUTH_SECRET
        config = _config(tmp_path, sim, hook, refused_port, oauth=False)
        rule = ratio_rule("cdn-5xx", stack="Website", above=0.05, clear_below=0.02)
        rule = rule.replace("\n[rule.query]", 'actions = ["purge"]\n\n[rule.query]', 1)
        (tmp_path / "rules" / "errors.toml").write_text(rule)
        daemon = DaemonProcess(config)
        shown: list[bytes] = []
        try:
            wait_until(lambda: daemon.get("/readyz")[0] == 200, 60, "/readyz 200")
            # an alert whose action's trigger fails, announced on channels that fail
            sim.add_fault(Fault("http_status", path_prefix="/automations-api/run/", status=500))
            cdn_spike(sim, WEBSITE, minutes=120)
            wait_until(lambda: hook.matching("cdn-5xx", "FIRING"), 60, "cdn-5xx page")
            failed = daemon.wait_log("remediation_action", 60, count=2)
            assert failed["outcome"] == "failed"
            retry = wait_until(
                lambda: [
                    e for e in daemon.events("notification_retry") if e["channel"] == "broken"
                ],
                60,
                "a failed delivery",
            )[0]
            assert all(scheme in retry["error"] for scheme in ("mailto", "json", "mmost"))
            # a revoked authtoken
            sim.add_fault(Fault("http_status", path_prefix="/analytics", status=401))
            wait_until(lambda: hook.matching("ContentstackSourceDown", "FIRING"), 60, "page")
            sim.clear_faults()
            # operators: a wrong token, then the right one
            silences = daemon.url + "/api/v1/silences"
            silence = {"matchers": ["alertname=nothing"], "duration": "1h", "comment": "x"}
            status, body = _post(silences, "wrong-token", silence)
            assert status == 401
            shown.append(body)
            status, body = _post(silences, API_TOKEN, silence)
            assert status == 201
            shown.append(body)

            # the same daemon on OAuth, whose token endpoint then refuses the client
            _config(tmp_path, sim, hook, refused_port, oauth=True)
            daemon.signal(signal.SIGHUP)
            wait_until(lambda: [r for r in sim.requests if r.path == "/token"], 60, "/token")
            sim.add_fault(Fault("http_status", path_prefix="/analytics", status=401))
            sim.add_fault(Fault("http_status", path_prefix="/token", status=401))
            wait_until(
                lambda: len([r for r in sim.requests if r.path == "/token" and r.status == 401]),
                60,
                "a refused token request",
            )
            for path in (
                "/metrics",
                "/healthz",
                "/readyz",
                "/api/v1/alerts?all=1",
                "/api/v1/silences?all=1",
                "/api/v1/audit",
            ):
                status, body = daemon.get(path)
                assert status in (200, 503), path
                shown.append(body)
            alerts = json.loads(daemon.get("/api/v1/alerts?all=1")[1])["alerts"]
            for alert in alerts:
                shown.append(daemon.get(f"/api/v1/alerts/{alert['fingerprint']}/samples")[1])
        finally:
            daemon.kill()
        daemon.unparsed()  # waits for the last stderr lines
        logs = "".join(daemon.raw)
        stored = {p.name: p.read_bytes() for p in (tmp_path / "state").iterdir() if p.is_file()}

        # every secret was really used (else finding none of them would prove nothing)
        sent = [r.headers for r in sim.requests]
        assert any(h.get("authtoken") == AUTHTOKEN for h in sent)
        assert any(h.get("ah-http-key") == TRIGGER_KEY for h in sent)
        assert any(OAUTH_SECRET.encode() in r.body for r in sim.requests if r.path == "/token")
        access = {h["authorization"].split()[-1] for h in sent if "authorization" in h}
        assert access
        assert "stackwatch.db-wal" in stored
        assert '"level": "debug"' in logs

        for secret in [*SECRETS, *access]:
            assert secret not in logs, secret
            assert all(secret.encode() not in body for body in shown), secret
            leaked = [name for name, data in stored.items() if secret.encode() in data]
            assert not leaked, (secret, leaked)
