"""``stackwatch init``: a starter ``config.toml`` and rule files for one organization.

It asks (or takes flags) for the region, the organization UID, the stacks and one
notification URL, never overwrites without ``--force``, and ends by running ``check``
on what it wrote. The notification URL usually carries a credential, so it goes into a
file of its own that only the owner can read.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from agent.config import REGION_HOSTS
from agent.setup.session import default_token_path, write_private

#: the shipped rules every new config starts from (their ``*.test.toml`` stay behind).
STARTER_RULES = Path(__file__).parent.parent / "demo" / "rules"
NOTIFY_URL_FILE = "notify-urls"
DEFAULT_REGION = "aws-na"
DEFAULT_NOTIFY_URL = "console://"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", choices=sorted(REGION_HOSTS), help="default: asked, aws-na")
    parser.add_argument("--organization-uid", help="the organization's UID (default: asked)")
    parser.add_argument(
        "--stack",
        action="append",
        default=[],
        metavar="NAME=API_KEY",
        help="a stack to watch (repeatable; default: asked)",
    )
    parser.add_argument(
        "--notify-url", help=f"one Apprise URL for alerts (default: asked, {DEFAULT_NOTIFY_URL})"
    )
    parser.add_argument(
        "--authtoken-file", type=Path, help="token file (default: the one `login` writes)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")


@dataclass
class Answers:
    region: str = DEFAULT_REGION
    organization_uid: str = ""
    stacks: dict[str, str] = field(default_factory=dict)
    notify_url: str = DEFAULT_NOTIFY_URL
    authtoken_file: Path = field(default_factory=default_token_path)


class InitError(Exception):
    pass


def run_init(args: argparse.Namespace, config: Path) -> int:
    folder = config.absolute().parent
    rules = sorted(p for p in STARTER_RULES.glob("*.toml") if not p.name.endswith(".test.toml"))
    targets = [config, folder / NOTIFY_URL_FILE] + [folder / "rules" / p.name for p in rules]
    existing = [str(path) for path in targets if path.exists()]
    if existing and not args.force:
        print(
            f"error: init never overwrites, and these exist: {', '.join(existing)} "
            "(--force replaces them)",
            file=sys.stderr,
        )
        return 2
    try:
        answers = _answers(args)
    except InitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except EOFError:
        print("error: input ended before every answer was given", file=sys.stderr)
        return 2

    try:
        (folder / "rules").mkdir(parents=True, exist_ok=True)
        for rule_file in rules:
            shutil.copyfile(rule_file, folder / "rules" / rule_file.name)
        write_private(folder / NOTIFY_URL_FILE, answers.notify_url)
        config.write_text(render_config(answers), encoding="utf-8")
    except OSError as error:
        print(f"error: cannot write {error.filename or folder}: {error.strerror}", file=sys.stderr)
        return 1
    print(
        f"Wrote {config}, {len(rules)} rule files in {folder / 'rules'} and "
        f"{folder / NOTIFY_URL_FILE} (the notification URL, readable by you only)."
    )
    if not answers.authtoken_file.exists():
        print(
            f"No authtoken yet: run `stackwatch login --output {answers.authtoken_file}`, then "
            "uncomment authtoken_file in the config."
        )
    print("Then `stackwatch doctor` tries every part of it. Checking the config now:")
    from agent.logs import configure_logging
    from agent.wiring import check, load_config

    settings = load_config(config, explicit=True)
    configure_logging(settings.agent.log_level)
    print(check(settings))
    return 0


def _answers(args: argparse.Namespace) -> Answers:
    answers = Answers()
    interactive = sys.stdin.isatty()
    if args.authtoken_file is not None:
        answers.authtoken_file = args.authtoken_file.absolute()
    answers.region = args.region or (_ask_region() if interactive else DEFAULT_REGION)
    answers.organization_uid = args.organization_uid or (
        _ask("Organization UID", required=True) if interactive else ""
    )
    if not answers.organization_uid:
        raise InitError("give --organization-uid (no terminal to ask on)")
    for item in args.stack:
        name, equals, api_key = item.partition("=")
        if not equals or not name.strip() or not api_key.strip():
            raise InitError(f"--stack {item!r}: expected NAME=API_KEY")
        answers.stacks[name.strip()] = api_key.strip()
    if not answers.stacks:
        if not interactive:
            raise InitError("give at least one --stack NAME=API_KEY (no terminal to ask on)")
        while True:
            name = _ask("Stack name (empty when done)" if answers.stacks else "Stack name")
            if not name:
                if answers.stacks:
                    break
                continue
            answers.stacks[name] = _ask(f"API key of {name}", required=True)
    if args.notify_url:
        answers.notify_url = args.notify_url
    elif interactive:
        answers.notify_url = (
            _ask(f"Notification URL (Apprise: slack://…, mailtos://…) [{DEFAULT_NOTIFY_URL}]")
            or DEFAULT_NOTIFY_URL
        )
    return answers


def _ask(question: str, *, required: bool = False) -> str:
    while True:
        answer = input(f"{question}: ").strip()
        if answer or not required:
            return answer


def _ask_region() -> str:
    choices = ", ".join(REGION_HOSTS)
    while True:
        answer = _ask(f"Region ({choices}) [{DEFAULT_REGION}]") or DEFAULT_REGION
        if answer in REGION_HOSTS:
            return answer
        print(f"  one of: {choices}")


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def render_config(answers: Answers) -> str:
    token_line = f"authtoken_file = {_toml(str(answers.authtoken_file))}"
    if not answers.authtoken_file.exists():
        token_line = f"# {token_line}   # after `stackwatch login`"
    stacks = "\n".join(f"{_toml(name)} = {_toml(key)}" for name, key in answers.stacks.items())
    return f"""\
# Stackwatch configuration, written by `stackwatch init`. Every key is described in
# config.example.toml; `stackwatch check` validates this file, `stackwatch doctor` tries it.

[contentstack]
region = {_toml(answers.region)}
organization_uid = {_toml(answers.organization_uid)}
{token_line}
# Automations projects whose execution logs are watched (empty: all projects)
automations_projects = []

# Stacks by name; the rules say stacks = ["*"] for all of them.
[contentstack.stacks]
{stacks}

[agent]
rule_paths = ["rules"]
state_path = "stackwatch.db"
# where people reach this daemon's pages: messages then link each alert's page
# external_url = "https://stackwatch.example.com"

[notify]

[[notify.channels]]
name = "alerts"
url_files = [{_toml(NOTIFY_URL_FILE)}]   # the Apprise URL, in a file readable by you only

[notify.route]
channels = ["alerts"]
group_by = ["alertname", "stack"]
"""
