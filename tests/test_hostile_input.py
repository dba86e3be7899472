"""Whatever bytes a rule file or the config holds, ``check`` names FILE:LINE and never crashes.

The cases are the ones that used to get through: nesting that exhausts tomllib's
recursion, numbers that overflow date arithmetic, inf and nan, bytes that are not
UTF-8, NUL bytes; then random bytes and random TOML-ish text through the loader.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.cli import main
from agent.config import ConfigError, load_settings
from agent.evaluate.loader import load_rule_file

RULE_HEAD = '[[rule]]\nname = "r"\n[rule.query]\nmetric = "status_codes"\nservices = ["cdn"]\n'

HOSTILE_RULES: dict[str, bytes] = {
    "deep-array": b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "deep-inline-table": b"x = " + b"{a = " * 3000 + b"1" + b"}" * 3000 + b"\n",
    "huge-for": RULE_HEAD.replace(
        "[rule.query]", 'for = "99999999999999999999d"\n[rule.query]'
    ).encode(),
    "inf-threshold": (
        RULE_HEAD + '[rule.condition]\ntype = "threshold"\nop = ">"\nvalue = inf\n'
    ).encode(),
    "nan-threshold": (
        RULE_HEAD + '[rule.condition]\ntype = "threshold"\nop = ">"\nvalue = nan\n'
    ).encode(),
    "huge-integer": (
        RULE_HEAD + '[rule.condition]\ntype = "threshold"\nop = ">"\nvalue = ' + "9" * 60 + "\n"
    ).encode(),
    "huge-string": ('[[rule]]\nname = "' + "x" * 200_000 + '"\n').encode(),
    "nul-byte": b'[[rule]]\nname = "a\x00b"\n',
    "not-utf8": b'[[rule]]\nname = "caf\xe9"\n',
    "escaped-nul": b'[[rule]]\nname = "a\\u0000b"\n',
}


@pytest.mark.parametrize("case", sorted(HOSTILE_RULES))
def test_hostile_rule_file_is_a_problem_with_its_line(case: str, tmp_path: Path) -> None:
    path = tmp_path / f"{case}.toml"
    path.write_bytes(HOSTILE_RULES[case])
    rules, problems = load_rule_file(path)
    assert rules == [] and problems
    for problem in problems:
        assert str(problem).startswith(f"{path}:{problem.line}: ") and problem.line >= 1


def test_check_reports_hostile_rules_and_config_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "deep.toml").write_bytes(HOSTILE_RULES["deep-array"])
    (rules / "for.toml").write_bytes(HOSTILE_RULES["huge-for"])
    config = tmp_path / "config.toml"
    config.write_text(
        '[contentstack]\norganization_uid = "o"\nauthtoken = "t"\n'
        '[contentstack.stacks]\nweb = "blt1"\n[agent]\nrule_paths = ["rules"]\n'
    )
    code, stderr = _check(config, capsys)
    assert code == 2
    assert f"{rules / 'deep.toml'}:1: toml: nested more than" in stderr
    assert f"{rules / 'for.toml'}:3: rule[r].for: duration too long" in stderr

    config.write_text(
        '[contentstack]\nrequest_timeout = 1e300\njob_timeout = "9' + "9" * 30 + 'd"\n'
    )
    code, stderr = _check(config, capsys)
    assert code == 2
    assert f"{config}:2: contentstack.request_timeout: duration too long" in stderr
    assert f"{config}:3: contentstack.job_timeout: duration too long" in stderr


@pytest.mark.parametrize("case", ["deep-array", "not-utf8", "nul-byte", "huge-string"])
def test_hostile_config_file_is_a_config_error(case: str, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(HOSTILE_RULES[case].replace(b"[[rule]]", b"[agent]"))
    with pytest.raises(ConfigError) as raised:
        load_settings(path, required=True)
    assert all(problem.startswith(f"{path}:") for problem in raised.value.problems)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.binary(max_size=300))
def test_random_bytes_give_problems_never_an_exception(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_bytes(data)
    rules, problems = load_rule_file(path)
    assert all(str(problem).startswith(f"{path}:") for problem in problems)
    assert problems or all(rule.rule.name for rule in rules)


TOMLISH = st.lists(
    st.sampled_from(
        ["[[rule]]", "[rule.query]", "[rule.condition]", 'name = "x"', "for = ", "value = ",
         '"5m"', "1e400", "inf", "-nan", "9" * 40, "[", "]", "{", "}", "a = ", "\n", ",", '"',
         "\x00", "\\u0000", "'''", "metric = \"status_codes\"", "type = \"threshold\""]
    ),
    max_size=40,
).map("".join)  # fmt: skip


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(TOMLISH)
def test_random_tomlish_text_gives_problems_never_an_exception(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    rules, problems = load_rule_file(path)
    assert all(str(problem).startswith(f"{path}:") for problem in problems)
    assert problems or all(rule.rule.name for rule in rules)


def _check(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "--config", str(config)])
    return code, capsys.readouterr().err
