"""Read rule files and report every problem as ``FILE:LINE: field: message``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.evaluate.rules import Rule, RuleFile
from agent.tomlpos import locate
from agent.tomlread import TomlProblem, read_toml


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.message}"


@dataclass(frozen=True)
class LoadedRule:
    rule: Rule
    path: Path
    line: int


class RulesInvalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """Every ``*.toml`` under the given files and folders, skipping rule unit tests."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p for p in sorted(path.rglob("*.toml")) if not p.name.endswith(".test.toml")
            )
        else:
            found.append(path)
    return found


def load_rules(paths: Iterable[Path]) -> list[LoadedRule]:
    """Load and validate every rule; raise RulesInvalid listing all problems at once."""
    loaded: list[LoadedRule] = []
    problems: list[Problem] = []
    for path in rule_files(paths):
        rules, file_problems = load_rule_file(path)
        loaded.extend(rules)
        problems.extend(file_problems)
    seen: dict[str, LoadedRule] = {}
    for item in loaded:
        first = seen.get(item.rule.name)
        if first is not None:
            problems.append(
                Problem(
                    item.path,
                    item.line,
                    "name",
                    f"duplicate rule name {item.rule.name!r} (first defined at "
                    f"{first.path}:{first.line})",
                )
            )
        else:
            seen[item.rule.name] = item
    if problems:
        raise RulesInvalid(problems)
    return loaded


def load_rule_file(path: Path) -> tuple[list[LoadedRule], list[Problem]]:
    try:
        text, document = read_toml(path)
    except TomlProblem as problem:
        return [], [Problem(path, problem.line, problem.field, problem.message)]
    return validate_document(path, text, document)


def validate_document(
    path: Path, text: str, document: dict[str, Any]
) -> tuple[list[LoadedRule], list[Problem]]:
    lines = text.splitlines()
    problems: list[Problem] = []
    unknown_top = [key for key in document if key != "rule"]
    for key in unknown_top:
        problems.append(
            Problem(path, locate(lines, (key,)), key, "unknown table; rule files hold [[rule]]")
        )
    raw_rules = document.get("rule", [])
    if not isinstance(raw_rules, list):
        problems.append(Problem(path, 1, "rule", "use [[rule]] tables (an array of tables)"))
        return [], problems
    loaded: list[LoadedRule] = []
    # where each [[rule]] starts, found once (locate per rule would rescan the file)
    rule_starts = [n + 1 for n, line in enumerate(lines) if line.strip().startswith("[[rule]]")]
    for index, raw in enumerate(raw_rules):
        rule_line = rule_starts[index] if index < len(rule_starts) else 1
        try:
            rule = RuleFile.model_validate({"rule": [raw]}).rule[0]
        except ValidationError as error:
            for issue in error.errors(include_url=False, include_input=False):
                location = ("rule", index, *issue["loc"][2:])
                field = _field_name(raw, issue["loc"][2:])
                problems.append(Problem(path, locate(lines, location), field, _message(issue)))
            continue
        loaded.append(LoadedRule(rule, path, rule_line))
    return loaded, problems


def _field_name(raw: Any, loc: tuple[Any, ...]) -> str:
    """``rule[name].condition.value`` from a pydantic location, skipping union tags."""
    name = raw.get("name") if isinstance(raw, dict) else None
    parts = [f"rule[{name}]" if isinstance(name, str) else "rule"]
    for part in loc:
        if isinstance(part, int):
            parts[-1] += f"[{part}]"
        elif part in {"threshold", "change", "nodata", "anomaly"} and parts[-1].endswith(
            "condition"
        ):
            continue  # pydantic's discriminator tag, not a key the user wrote
        elif isinstance(part, str) and not part.startswith("function-"):
            parts.append("for" if part == "for_" else part)
    return ".".join(parts)


def _message(issue: Any) -> str:
    message = str(issue["msg"])
    if issue["type"] == "extra_forbidden":
        return "unknown key"
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return message
