"""`once`, `once --notify` and `backtest --from/--to` against the simulator over real HTTP."""

import json
from datetime import UTC, datetime, timedelta

from agent.cli import main

from .conftest import BROKEN, HEALTHY, RULE, TOKEN, write_config


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_once_json_prints_one_line_per_instance(tmp_path, simulator, capsys):
    config = write_config(tmp_path, simulator)
    code, out, err = run(capsys, "once", "--config", config, "--format", "json")
    assert code == 0, err
    rows = {json.loads(line)["labels"]["stack"]: json.loads(line) for line in out.splitlines()}
    assert set(rows) == {BROKEN.api_key, HEALTHY.api_key}
    assert rows[BROKEN.api_key]["state"] == "firing"
    assert rows[BROKEN.api_key]["value"] > 0.05
    assert rows[HEALTHY.api_key]["state"] == "inactive"
    assert rows[HEALTHY.api_key]["value"] < 0.05
    assert all(r["rule"] == "cdn-5xx-share" for r in rows.values())
    assert TOKEN not in out + err


def test_once_fetches_one_job_per_stack_for_many_rules(tmp_path, simulator, capsys):
    many = "\n".join(
        RULE.replace('name = "cdn-5xx-share"', f'name = "rule-{i}"') for i in range(50)
    )
    config = write_config(tmp_path, simulator, rules=many)
    simulator.clear_requests()
    code, out, _ = run(capsys, "once", "--config", config, "--format", "json")
    assert code == 0
    assert len(out.splitlines()) == 100  # 50 rules x 2 stacks
    submits = [r for r in simulator.requests if r.path == "/analytics/v2/http-statuses"]
    assert sorted(r.query["apiKey"][0] for r in submits) == sorted(
        [BROKEN.api_key, HEALTHY.api_key]
    )


def test_once_table_and_no_notification_without_the_flag(tmp_path, simulator, capsys):
    config = write_config(tmp_path, simulator)
    code, out, _ = run(capsys, "once", "--config", config)
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split() == ["RULE", "STATE", "VALUE", "LABELS"]
    assert any("firing" in line and f"stack={BROKEN.api_key}" in line for line in lines)
    assert not (tmp_path / "state.db").exists()


def test_once_notify_delivers_the_firing_alert(tmp_path, simulator, http_receiver, capsys):
    extra = f"""
[notify]
[[notify.channels]]
name = "hook"
urls = ["json://{http_receiver.url}/alerts"]
[notify.route]
channels = ["hook"]
group_by = ["alertname", "stack"]
group_wait = "30s"
"""
    config = write_config(tmp_path, simulator, extra=extra)
    code, _, err = run(capsys, "once", "--config", config, "--notify")
    assert code == 0, err
    posts = http_receiver.posts("/alerts")
    assert len(posts) == 1
    assert "cdn-5xx-share" in json.dumps(posts[0]) and "broken" in json.dumps(posts[0])
    assert "1 delivered" in err


def test_backtest_from_history_prints_transitions(tmp_path, simulator, capsys):
    config = write_config(tmp_path, simulator)
    today = datetime.now(UTC).date()
    start = today - timedelta(days=1)
    code, out, err = run(capsys, "backtest", "--config", config, "--from", start, "--to", today)
    assert code == 0, err
    transitions = [json.loads(line) for line in out.splitlines()]
    assert [(t["labels"]["stack"], t["previous"], t["state"]) for t in transitions] == [
        (BROKEN.api_key, "inactive", "firing")
    ]
    fired_at = datetime.fromisoformat(transitions[0]["at"])
    # the incident began three hours before the simulator started
    assert abs(fired_at - (datetime.now(UTC) - timedelta(hours=3))) < timedelta(minutes=20)
    assert HEALTHY.api_key not in out


def test_backtest_needs_either_csv_or_dates(capsys):
    code, _, err = run(capsys, "backtest")
    assert code == 2 and "--csv FILE, or --from and --to" in err


def test_once_with_bad_credentials_exits_1_and_shows_error_states(tmp_path, simulator, capsys):
    config = write_config(tmp_path, simulator)
    config.write_text(config.read_text().replace(TOKEN, "blt-wrong-token-456"))
    code, out, err = run(capsys, "once", "--config", config, "--format", "json")
    assert code == 1
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows and all(r["state"] == "error" for r in rows)
    assert all("HTTP 401" in r["error"] for r in rows)
    assert "warning: cdn-5xx-share:" in err
    assert "blt-wrong-token-456" not in out + err


def test_once_honours_for_by_replaying_the_recent_past(tmp_path, simulator, capsys):
    slow = RULE.replace('severity = "critical"', 'severity = "critical"\nfor = "5m"')
    config = write_config(tmp_path, simulator, rules=slow)
    simulator.clear_requests()
    code, out, _ = run(capsys, "once", "--config", config, "--format", "json")
    assert code == 0
    states = {
        json.loads(line)["labels"]["stack"]: json.loads(line)["state"] for line in out.splitlines()
    }
    # the incident began hours ago: five minutes of pending are long past
    assert states == {BROKEN.api_key: "firing", HEALTHY.api_key: "inactive"}
    submits = [r for r in simulator.requests if r.path == "/analytics/v2/http-statuses"]
    assert len(submits) == 2  # still one job per stack: the replay reuses the rows
