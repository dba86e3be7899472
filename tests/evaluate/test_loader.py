"""Broken rule files give FILE:LINE: field: message, for every problem, never a traceback."""

import gc
from pathlib import Path

import pytest

from agent.cli import main
from agent.evaluate.loader import RulesInvalid, load_rules

BROKEN = Path(__file__).parent / "broken_rules"


def problems_by_file():
    with pytest.raises(RulesInvalid) as caught:
        load_rules([BROKEN])
    found: dict[str, list] = {}
    for problem in caught.value.problems:
        found.setdefault(problem.path.name, []).append(problem)
    return found


def test_every_broken_file_is_reported():
    assert set(problems_by_file()) == {
        "syntax.toml",
        "types.toml",
        "unknown.toml",
        "duplicate_b.toml",
        "durations.toml",
        "impossible.toml",
        "never.toml",
    }


def test_syntax_error_names_its_line():
    (problem,) = problems_by_file()["syntax.toml"]
    assert problem.line == 3
    assert problem.field == "toml"


def test_wrong_type_points_at_the_value():
    (problem,) = problems_by_file()["types.toml"]
    assert (problem.line, problem.field) == (11, "rule[wrong-type].condition.value")
    assert "number" in problem.message


def test_unknown_keys_each_on_their_own_line():
    problems = sorted(problems_by_file()["unknown.toml"], key=lambda p: p.line)
    assert [(p.line, p.field, p.message) for p in problems] == [
        (12, "rule[unknown-key].severty", "unknown key"),
        (15, "rule[unknown-key].query.windw", "unknown key"),
    ]


def test_duplicate_names_point_at_the_first_definition():
    (problem,) = problems_by_file()["duplicate_b.toml"]
    assert problem.field == "name"
    assert "duplicate_a.toml:1" in problem.message


def test_bad_durations():
    problems = sorted(problems_by_file()["durations.toml"], key=lambda p: p.line)
    assert [(p.line, p.field) for p in problems] == [
        (3, "rule[bad-duration].for"),
        (6, "rule[bad-duration].query.window"),
    ]
    assert "invalid duration '5 minutes'" in problems[0].message
    assert "durations are strings with a unit" in problems[1].message


def test_impossible_ratio_threshold():
    (problem,) = problems_by_file()["impossible.toml"]
    assert "can never hold" in problem.message
    assert problem.line == 1  # a whole-rule check points at its [[rule]] line


def test_thresholds_that_can_never_hold():
    problems = sorted(problems_by_file()["never.toml"], key=lambda p: p.line)
    assert [(p.line, p.field) for p in problems] == [
        (1, "rule[negative-count]"),
        (11, "rule[drop-beyond-everything]"),
    ]
    assert "a count is never below 0" in problems[0].message
    assert "a percent change is never below -100" in problems[1].message


def test_check_command_prints_file_line_field_and_no_traceback(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text(f'[agent]\nrule_paths = ["{BROKEN}"]\n')
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 10
    assert f"{BROKEN / 'types.toml'}:11: rule[wrong-type].condition.value:" in err
    for line in lines:
        path, line_number, rest = line.split(":", 2)
        assert path.endswith(".toml") and line_number.isdigit() and rest.strip()


def test_check_passes_on_the_shipped_rules(capsys):
    repo = Path(__file__).resolve().parents[2]
    config = repo / "config.example.toml"
    assert main(["check", "--config", str(config)]) == 0
    assert "OK: config valid" in capsys.readouterr().out
    assert gc.isenabled()  # held off while check built its heap, then given back


def test_a_failing_check_gives_the_collector_back_too(tmp_path, capsys):
    assert main(["check", "--config", str(tmp_path / "nope.toml")]) == 2
    assert gc.isenabled()


def test_missing_config_file_named_explicitly_is_an_error(tmp_path, capsys):
    assert main(["check", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_check_flags_routes_that_the_notify_config_does_not_have(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.toml").write_text(
        '[[rule]]\nname = "r"\nroutes = ["critical", "nowhere"]\n[rule.query]\nmetric = "usage"\n'
        '[rule.condition]\ntype = "threshold"\nop = ">"\nvalue = 1\n'
    )
    config = tmp_path / "config.toml"
    config.write_text(
        '[agent]\nrule_paths = ["rules"]\n[notify]\n[[notify.channels]]\nname = "c"\n'
        'urls = ["console://"]\n[notify.route]\nchannels = ["c"]\n'
        '[[notify.route.routes]]\nname = "critical"\nmatch = { severity = "critical" }\n'
    )
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    expected = "rule[r].routes: no route named 'nowhere' in [notify.route]"
    assert f"{rules / 'r.toml'}:1: {expected}" in err
    assert "'critical'" not in err


def test_the_default_templates_are_valid_jinja() -> None:
    # rules that keep them are not checked one by one (see Rule._coherent)
    from agent.evaluate.annotate import check_template
    from agent.evaluate.rules import Rule

    for name in ("summary", "description"):
        assert check_template(Rule.model_fields[name].default) is None
