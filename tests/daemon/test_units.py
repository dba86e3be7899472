"""Unit tests of the daemon's parts: persistence, grouping, reload, HTTP auth, status."""

from __future__ import annotations

import gc
import itertools
import json
import tomllib
import urllib.error
import urllib.request
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent import cli
from agent.collect.models import Sample
from agent.config import load_settings
from agent.daemon import persistence
from agent.daemon import service as service_module
from agent.daemon.grouping import first_run_delays, group_rules
from agent.daemon.http_api import ApiServer
from agent.daemon.operations import NotFound
from agent.daemon.service import Daemon
from agent.daemon.status import format_table, read_state_file
from agent.daemon.transitions import CONFIG_FINGERPRINT
from agent.evaluate.alerts import AlertState, Transition
from agent.evaluate.anomaly import AnomalyTracker
from agent.evaluate.engine import SOURCE_DOWN, Engine, Instance
from agent.evaluate.loader import load_rules
from agent.evaluate.planner import query_keys
from agent.evaluate.rules import Rule, resolve_stacks
from agent.evaluate.state import InstanceState
from agent.notify import Notifier, NotifyConfig, Silence
from agent.store import Store

from .support import MOBILE, ROOT, WEBSITE, ratio_rule

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
STACKS = {"production": "blt0000000000000prod", "staging": "blt00000000000stage"}


def shipped_rules() -> list[Any]:
    return [resolve_stacks(item.rule, STACKS) for item in load_rules([ROOT / "rules"])]


# -- persistence ------------------------------------------------------------------------


def test_instances_round_trip_with_anomaly_tracker(tmp_path: Path) -> None:
    rules = {rule.name: rule for rule in shipped_rules()}
    anomaly = rules["cdn-traffic-anomaly"]
    instance = Instance(
        anomaly.name,
        (("stack", "blt0000000000000prod"),),
        {"alertname": anomaly.name, "stack": "blt0000000000000prod"},
        "abcdef0123456789",
        state=InstanceState(
            AlertState.PENDING, since=NOW, pending_since=NOW, value=12.5, evaluated_at=NOW
        ),
        annotations={"summary": "odd"},
    )
    instance.tracker = AnomalyTracker(anomaly.condition)  # type: ignore[arg-type]
    for minute in range(40):
        instance.tracker.observe(NOW + timedelta(minutes=minute), 100.0 + minute % 7)
    store = Store(tmp_path / "state.db")
    persistence.migrate(store)
    hashes = {anomaly.name: persistence.rule_hash(anomaly)}
    with store.tx() as conn:
        persistence.save(conn, [instance], hashes, NOW)
    (stored,) = persistence.load(store.connection())
    assert isinstance(stored, persistence.StoredInstance)
    back = stored.to_instance(anomaly)
    assert back.state == instance.state
    assert back.key == instance.key and back.labels == instance.labels
    assert back.annotations == {"summary": "odd"}
    assert back.tracker is not None
    assert back.tracker.to_state() == instance.tracker.to_state()
    # an older evaluation never overwrites a newer one (two groups save the same row)
    older = Instance(
        instance.rule, instance.key, instance.labels, instance.fingerprint,
        state=InstanceState(AlertState.INACTIVE, evaluated_at=NOW - timedelta(minutes=1)),
    )  # fmt: skip
    with store.tx() as conn:
        persistence.save(conn, [older], hashes, NOW)
    assert persistence.load(store.connection())[0].state.state is AlertState.PENDING
    store.close()


def test_restore_skips_changed_rules_and_prune_forgets_old_quiet_rows(tmp_path: Path) -> None:
    from agent.evaluate.engine import Engine
    from agent.evaluate.sources import MemorySource

    rules = shipped_rules()
    engine = Engine(rules, MemorySource([]))
    store = Store(tmp_path / "state.db")
    persistence.migrate(store)
    firing = InstanceState(
        AlertState.FIRING, since=NOW, firing_since=NOW, evaluated_at=NOW, unavailable_since=NOW
    )
    rows = [
        Instance("cdn-5xx-share", (("stack", "a"),), {}, "f1", state=firing),
        Instance("cma-5xx-share", (("stack", "a"),), {}, "f2", state=firing),
        Instance("gone-rule", (), {}, "f3", state=InstanceState(AlertState.RESOLVED)),
    ]
    hashes = {r.name: persistence.rule_hash(r) for r in rules}
    hashes["cma-5xx-share"] = "edited-since"
    with store.tx() as conn:
        persistence.save(conn, rows, hashes, NOW - timedelta(days=40))
    restored, skipped = persistence.restore(engine, persistence.load(store.connection()))
    assert (restored, skipped) == (1, 2)
    assert engine.instances["cdn-5xx-share"][(("stack", "a"),)].state == firing
    assert engine.instances["cma-5xx-share"] == {}
    with store.tx() as conn:
        deleted, _ = persistence.prune(conn, NOW - timedelta(days=30), NOW - timedelta(days=1))
    assert deleted == 1  # the resolved row; firing rows are never pruned
    store.close()


def test_recent_samples_are_kept_per_instance_and_pruned(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    persistence.migrate(store)
    for minutes, value, state in ((90, 0.01, AlertState.INACTIVE), (5, 0.2, AlertState.FIRING)):
        at = NOW - timedelta(minutes=minutes)
        instance = Instance(
            "r", (), {}, "fp1", state=InstanceState(state, value=value, evaluated_at=at)
        )
        with store.tx() as conn:
            assert persistence.record_samples(conn, [instance]) == 1
    shown = persistence.samples(store.connection(), "fp1")
    assert [(s["value"], s["state"]) for s in shown] == [(0.01, "inactive"), (0.2, "firing")]
    assert shown[1]["at"] == (NOW - timedelta(minutes=5)).isoformat()
    with store.tx() as conn:
        persistence.prune(conn, NOW - timedelta(days=30), NOW - timedelta(hours=1))
    assert [s["value"] for s in persistence.samples(store.connection(), "fp1")] == [0.2]
    assert persistence.samples(store.connection(), "other") == []
    store.close()


def test_notifier_dedupes_a_repeated_firing_transition(tmp_path: Path) -> None:
    """What restart safety relies on: submitting the same firing twice queues one message."""
    from agent.clock import ManualClock

    clock = ManualClock(NOW)
    config = NotifyConfig.model_validate(
        {
            "channels": [{"name": "hook", "urls": ["json://127.0.0.1:9/"]}],
            "route": {"channels": ["hook"], "group_wait": "0s", "group_interval": "1m"},
        }
    )
    store = Store(tmp_path / "state.db")
    notifier = Notifier(config, store, clock)
    firing = Transition(
        rule="r", fingerprint="fp1", labels={"alertname": "r"},
        previous=AlertState.PENDING, state=AlertState.FIRING, at=NOW, value=1.0, firing_since=NOW,
    )  # fmt: skip
    notifier.submit([firing])
    assert notifier.tick() == 1
    clock.advance(120)
    notifier.submit([firing])  # e.g. replayed after a crash before the state was saved
    assert notifier.tick() == 0
    assert sum(notifier.outbox_counts().values()) == 1
    store.close()


class _Switchable:
    """A data source that fails while ``error`` is set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.error: Exception | None = None

    def fetch(self, request: Any) -> Any:
        if self.error is not None:
            raise self.error
        return self.inner.fetch(request)


def _two_group_engine(tmp_path: Path) -> tuple[Engine, _Switchable, Notifier, Store]:
    from agent.clock import ManualClock
    from agent.evaluate.sources import MemorySource

    rules = [
        resolve_stacks(
            Rule.model_validate(
                tomllib.loads(ratio_rule(name, stack=stack, above=0.5, clear_below=0.4))["rule"][0]
            ),
            {"Website": WEBSITE, "Mobile": MOBILE},
        )
        for name, stack in (("web", "Website"), ("mobile", "Mobile"))
    ]
    rows = [
        Sample("http-statuses", NOW - timedelta(minutes=m), labels, {"count": 100.0})
        for m in range(1, 4)
        for labels in (
            {"service": "cdn", "stack": WEBSITE, "status": "2xx"},
            {"service": "cdn", "stack": MOBILE, "status": "2xx"},
        )
    ]
    source = _Switchable(MemorySource(rows))
    config = NotifyConfig.model_validate(
        {
            "channels": [{"name": "hook", "urls": ["json://127.0.0.1:9/"]}],
            "route": {"channels": ["hook"], "group_wait": "0s", "group_interval": "1m"},
        }
    )
    store = Store(tmp_path / "state.db")
    return Engine(rules, source), source, Notifier(config, store, ManualClock(NOW)), store


def _source_down_state(notifier: Notifier) -> str:
    (alert,) = [a for a in notifier.alerts() if a.alertname == SOURCE_DOWN]
    return alert.state


def test_a_slow_cycle_that_finds_the_source_back_resolves_it(tmp_path: Path) -> None:
    """Rule groups run at once: a cycle that began before another may judge the source
    after it. Its "back" must still resolve the page the other raised (it once carried
    the earlier start time, so notify dropped it as out of order and paged for ever)."""
    engine, source, notifier, store = _two_group_engine(tmp_path)
    web, mobile = engine.rules["web"], engine.rules["mobile"]
    engine.evaluate(NOW - timedelta(minutes=1), [web, mobile])
    source.error = RuntimeError("API unreachable")
    engine.evaluate(NOW - timedelta(seconds=20), [web])
    down = engine.evaluate(NOW, [mobile]).transitions  # began later, judged first
    source.error = None
    back = engine.evaluate(NOW - timedelta(seconds=10), [web]).transitions
    with store.tx():
        notifier.submit(down)
        assert _source_down_state(notifier) == "firing"
        notifier.submit(back)
    assert _source_down_state(notifier) == "resolved"
    assert engine.source_state.state.state is AlertState.RESOLVED
    store.close()


def test_source_judgements_committed_in_reverse_order_leave_notify_on_the_latest(
    tmp_path: Path,
) -> None:
    """Two groups judge the source at the same instant; the second commits first."""
    engine, source, notifier, store = _two_group_engine(tmp_path)
    web, mobile = engine.rules["web"], engine.rules["mobile"]
    engine.evaluate(NOW - timedelta(minutes=1), [web, mobile])
    source.error = RuntimeError("API unreachable")
    engine.evaluate(NOW - timedelta(seconds=20), [web])
    down = engine.evaluate(NOW, [mobile]).transitions
    source.error = None
    back = engine.evaluate(NOW, [web]).transitions
    assert [t.state for t in back if t.rule == SOURCE_DOWN] == [AlertState.RESOLVED]
    with store.tx():
        notifier.submit(back)
        notifier.submit(down)
    assert _source_down_state(notifier) != "firing"
    store.close()


# -- grouping ---------------------------------------------------------------------------


def test_groups_share_queries_and_split_by_api_and_interval() -> None:
    groups = group_rules(shipped_rules(), timedelta(minutes=1))
    of = {name: group for group in groups for name in group.rules}
    # CDN and CMA status-code rules read one merged query per stack: evaluated together
    assert of["cdn-5xx-share"] is of["cma-5xx-share"]
    assert of["cdn-5xx-share"] is of["cdn-traffic-drop-to-zero"]
    # execution logs and cache ratios are other APIs/queries: their own jobs
    assert of["automation-failures"] is not of["cdn-5xx-share"]
    assert of["cdn-cache-hit-ratio-drop"] is not of["cdn-5xx-share"]
    assert of["automation-failures"].rules == ("automation-failures",)
    # another interval is another job even on the same data
    assert of["cdn-traffic-anomaly"] is not of["cdn-5xx-share"]
    assert len({g.job_id for g in groups}) == len(groups)


def test_first_runs_are_staggered_largest_group_first_by_the_submissions_ahead() -> None:
    rules = shipped_rules()
    keys = {rule.name: query_keys(rule) for rule in rules}
    groups = group_rules(rules, timedelta(minutes=1), keys)
    assert groups == group_rules(rules, timedelta(minutes=1))  # the engine's keys or its own
    delays = first_run_delays(groups, keys, rate=4.0)
    order = sorted(groups, key=lambda g: delays[g.job_id])
    assert len(order[0].rules) == max(len(g.rules) for g in groups)
    assert delays[order[0].job_id] == 0.0
    for before, after in itertools.pairwise(order):
        queries = len({key for name in before.rules for key in keys[name]})
        assert delays[after.job_id] == delays[before.job_id] + queries / 4.0


# -- reload -----------------------------------------------------------------------------


def _daemon_config(folder: Path) -> Path:
    (folder / "rules").mkdir()
    (folder / "rules" / "a.toml").write_text(
        ratio_rule("kept", stack="Website", above=0.05, clear_below=0.02)
    )
    config = folder / "config.toml"
    config.write_text(
        f"""
[contentstack]
organization_uid = "org"
authtoken = "unit-test-token-1234"
analytics_base_url = "http://127.0.0.1:9"
automations_base_url = "http://127.0.0.1:9"
[contentstack.stacks]
Website = "{WEBSITE}"
[agent]
rule_paths = ["rules"]
state_path = "state.db"
http_port = 0
[[notify.channels]]
name = "hook"
urls = ["json://127.0.0.1:9/"]
[notify.route]
channels = ["hook"]
"""
    )
    return config


@pytest.fixture
def reloadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    """A daemon of ``_daemon_config`` (not started) whose config a test changes and
    reloads; closed afterwards."""
    monkeypatch.setattr(service_module, "configure_logging", lambda *a, **k: None)
    config = _daemon_config(tmp_path)
    daemon = Daemon(load_settings(config), config)
    try:
        yield daemon
    finally:
        daemon.pipeline.close()
        daemon.store.close()


def test_reload_keeps_running_rules_on_error_and_raises_meta_alert(
    reloadable: Daemon, tmp_path: Path
) -> None:
    daemon = reloadable
    engine = daemon.pipeline.engine
    clients, notifier = daemon.pipeline.clients, daemon.pipeline.notifier
    key = (("stack", WEBSITE),)
    state = InstanceState(AlertState.FIRING, since=NOW, firing_since=NOW, evaluated_at=NOW)
    engine.instances["kept"][key] = Instance("kept", key, {}, "fp", state=state)
    (tmp_path / "rules" / "b.toml").write_text('[[rule]]\nname = "bad"\n')
    assert daemon.reload() is False
    assert list(daemon.pipeline.engine.rules) == ["kept"]
    meta = [a for a in daemon.notifier.alerts() if a.fingerprint == CONFIG_FINGERPRINT]
    assert meta and meta[0].state == "firing"

    (tmp_path / "rules" / "b.toml").write_text(
        ratio_rule("added", stack="Website", above=0.1, clear_below=0.05)
    )
    assert daemon.reload() is True
    assert daemon.pipeline.engine is not engine  # the reload swapped in a new pipeline
    # ... reusing what the unchanged settings had built: connections, the notifier
    assert daemon.pipeline.clients is clients and daemon.pipeline.notifier is notifier
    engine = daemon.pipeline.engine
    assert sorted(engine.rules) == ["added", "kept"]
    assert engine.instances["kept"][key].state == state  # unchanged rule kept its state
    meta = [a for a in daemon.notifier.alerts() if a.fingerprint == CONFIG_FINGERPRINT]
    assert meta[0].state == "resolved"


def test_the_pipeline_a_reload_replaced_is_freed(reloadable: Daemon, tmp_path: Path) -> None:
    # the reload settles the heap (gc.freeze): the old pipeline must be garbage by then,
    # or its cycles stay in the frozen generation for good
    replaced = weakref.ref(reloadable.pipeline)
    (tmp_path / "rules" / "b.toml").write_text(
        ratio_rule("added", stack="Website", above=0.1, clear_below=0.05)
    )
    try:
        assert reloadable.reload() is True
        gc.collect()
        assert replaced() is None
    finally:
        gc.unfreeze()


# -- HTTP API ---------------------------------------------------------------------------


class FakeOperations:
    def __init__(self) -> None:
        self.silenced: list[Silence] = []

    def alerts(self, *, include_inactive: bool) -> list[dict[str, Any]]:
        return [{"rule": "r", "state": "firing"}]

    def samples(self, fingerprint: str) -> list[dict[str, Any]]:
        return [{"at": "2024-01-01T00:00:00+00:00", "value": 1.0, "state": "firing"}]

    def silences(self, *, include_expired: bool) -> list[Silence]:
        return self.silenced

    def add_silence(self, matchers: list[str], *, actor: str, **_: Any) -> Silence:
        silence = Silence("s1", tuple(matchers), NOW, NOW + timedelta(hours=1), actor, "", NOW)
        self.silenced.append(silence)
        return silence

    def expire_silence(self, silence_id: str, *, actor: str) -> None:
        if silence_id != "s1":
            raise NotFound(f"no active silence {silence_id!r}")

    def ack(self, fingerprint: str, *, actor: str, comment: str) -> list[str]:
        return ["hook"]


class FakeBackend:
    def __init__(self) -> None:
        self.ops = FakeOperations()

    def healthy(self) -> bool:
        return True

    def ready(self) -> bool:
        return False

    def metrics_text(self) -> bytes:
        return b"# nothing\n"

    def operations(self) -> FakeOperations:
        return self.ops


def _call(
    url: str, method: str, body: dict[str, Any] | None = None, token: str | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_http_api_mutations_need_the_token() -> None:
    server = ApiServer(FakeBackend(), "127.0.0.1", 0, "s3cret-api-token").start()
    base = server.url
    try:
        assert _call(base + "/healthz", "GET")[0] == 200
        assert _call(base + "/readyz", "GET")[0] == 503
        assert _call(base + "/api/v1/alerts", "GET") == (
            200,
            {"alerts": [{"rule": "r", "state": "firing"}]},
        )
        silence = {"matchers": ["alertname=r"], "duration": "1h"}
        assert _call(base + "/api/v1/silences", "POST", silence)[0] == 401
        assert _call(base + "/api/v1/silences", "POST", silence, token="wrong")[0] == 401
        assert _call(base + "/api/v1/silences/s1", "DELETE")[0] == 401
        assert _call(base + "/api/v1/alerts/abc123/ack", "POST", {})[0] == 401
        token = "s3cret-api-token"
        status, body = _call(base + "/api/v1/silences", "POST", silence, token=token)
        assert (status, body["id"]) == (201, "s1")
        assert _call(base + "/api/v1/silences/s1", "DELETE", token=token)[0] == 200
        assert _call(base + "/api/v1/silences/zz", "DELETE", token=token)[0] == 404
        status, body = _call(base + "/api/v1/alerts/abc123/ack", "POST", {"by": "ann"}, token)
        assert status == 200 and body["channels"] == ["hook"] and body["by"] == "ann"
        status, body = _call(base + "/api/v1/alerts/abc123/samples", "GET")
        assert status == 200 and body["samples"][0]["value"] == 1.0
        assert _call(base + "/nowhere", "GET")[0] == 404
    finally:
        server.stop()


def test_api_silences_land_in_the_audit_trail(tmp_path: Path) -> None:
    config = _daemon_config(tmp_path)
    daemon = Daemon(load_settings(config), config)
    server = ApiServer(daemon, "127.0.0.1", 0, None).start()
    base = server.url
    try:
        silence = {"matchers": ["alertname=kept"], "duration": "1h", "created_by": "ann"}
        status, body = _call(base + "/api/v1/silences", "POST", silence)
        assert status == 201 and body["created_by"] == "ann"
        assert (
            _call(base + "/api/v1/silences", "POST", {"matchers": ["bad"], "duration": "1h"})[0]
            == 400
        )
        assert _call(base + f"/api/v1/silences/{body['id']}", "DELETE")[0] == 200
        status, trail = _call(base + "/api/v1/audit?limit=10", "GET")
        assert status == 200
        assert [(row["actor"], row["action"]) for row in trail["audit"]] == [
            ("api@127.0.0.1", "silence_expire"),
            ("ann", "silence_add"),
        ]
        assert {row["detail"]["via"] for row in trail["audit"]} == {"api"}
        assert _call(base + "/api/v1/audit?limit=zero", "GET")[0] == 400
    finally:
        server.stop()
        daemon.pipeline.close()
        daemon.store.close()


# -- status -----------------------------------------------------------------------------


def test_status_reads_the_state_file_when_no_daemon_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("agent.logs.configure_logging", lambda *a, **k: None)
    config = _daemon_config(tmp_path)
    store = Store(tmp_path / "state.db")
    persistence.migrate(store)
    firing = InstanceState(AlertState.FIRING, since=NOW, firing_since=NOW, value=0.25)
    quiet = InstanceState(AlertState.INACTIVE, value=0.0)
    with store.tx() as conn:
        persistence.save(
            conn,
            [
                Instance("kept", (("stack", WEBSITE),), {"stack": WEBSITE}, "fp1", state=firing),
                Instance("calm", (), {}, "fp2", state=quiet),
            ],
            {},
            NOW,
        )
        persistence.set_meta(conn, "http_url", "http://127.0.0.1:9")  # nobody listens there
    store.close()

    assert cli.main(["status", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["STATE", "RULE", "SINCE", "VALUE", "LABELS", "NOTE"]
    assert lines[1].split()[:2] == ["firing", "kept"] and "0.25" in lines[1]
    assert len(lines) == 2  # inactive instances are not alerts
    assert "state file" in err

    assert cli.main(["status", "--config", str(config), "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [a["rule"] for a in body["alerts"]] == ["kept"]
    assert read_state_file(tmp_path / "state.db")[0]["fingerprint"] == "fp1"
    assert format_table([]) == "No alerts."


# -- systemd ----------------------------------------------------------------------------


def test_systemd_notify_and_watchdog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import socket

    from agent.daemon import systemd

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False  # not under systemd: a no-op
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert systemd.notify("READY=1") is True
        assert sock.recv(100) == b"READY=1"
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert systemd.watchdog_interval() is None


def test_the_allocator_is_tuned_where_it_is_glibcs() -> None:
    import platform

    from agent.daemon import heap

    assert heap.limit_fragmentation() is (platform.libc_ver()[0] == "glibc")


def test_trim_gives_the_pages_freed_amid_the_heap_back() -> None:
    import os
    import platform

    from agent.daemon import heap

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")

    def resident() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    heap.trim()
    blocks = [bytearray(4000) for _ in range(10_000)]  # 40 MB of the heap, not mapped apart
    pinned = bytearray(4000)  # (above them: the heap's top cannot shrink past it)
    del blocks
    before = resident()
    heap.trim()
    assert before - resident() > 20 * 2**20
    del pinned
