"""The ``stackwatch`` command.

Every sub-command returns an exit code; operator mistakes (bad config, broken rule
files, unreachable API) are printed as plain messages, never as tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.redact import redact

if TYPE_CHECKING:
    from agent.clock import SystemClock

DEFAULT_CONFIG = Path("config.toml")
#: shipped inside the package, so ``stackwatch demo`` works from any directory
DEMO_CONFIG = Path(__file__).parent / "demo" / "config.toml"
_AT_FILE_LINE = re.compile(r"^[^\s:]+:\d+: ")

Handler = Callable[[argparse.Namespace], int]


def entry() -> None:
    """The ``stackwatch`` command: ``main``, then the exit. A command that only reads and
    reports (``check``) leaves without the interpreter's teardown, which would free the
    heap of 1,000 parsed rules and Apprise's plugins object by object (a third of a
    second, longer than validating the rules).

    Output piped into a reader that stops early (``| head``) ends the command quietly, as
    a pipe's writer does, with 141 (128 + SIGPIPE): Python would print a traceback for the
    write, and another when it flushes stdout on the way out."""
    try:
        code = main(leave_at_once=True)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    sys.exit(code)


def main(argv: Sequence[str] | None = None, *, leave_at_once: bool = False) -> int:
    """Run one command; ``leave_at_once``: end the process when a reporting command is
    done (its output flushed), as ``entry`` does."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "builds_heap", False):
        return _handle(args)
    from agent.daemon import heap

    heap.hold()  # (until the daemon has started; ``check`` ends first)
    try:
        code = _handle(args)
        if leave_at_once and getattr(args, "only_reports", False):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    finally:
        heap.release()  # a caller in the same process (a test) gets its collector back


def _handle(args: argparse.Namespace) -> int:
    handler: Handler = args.handler
    # the handler's own libraries load here, after parsing: ``--help`` needs none of them
    from agent.collect.errors import ContentstackError
    from agent.config import ConfigError
    from agent.evaluate.loader import RulesInvalid

    try:
        return handler(args)
    except ConfigError as error:
        for problem in error.problems:
            # FILE:LINE: field: message as it is; anything else marked as an error
            shown = problem if _AT_FILE_LINE.match(problem) else f"error: {problem}"
            print(redact(shown), file=sys.stderr)
        return 2
    except RulesInvalid as error:
        for rule_problem in error.problems:
            print(redact(str(rule_problem)), file=sys.stderr)
        return 2
    except ContentstackError as error:
        print(f"error: {redact(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stackwatch", description="Alerting daemon for Contentstack."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="validate the config and every rule file")
    _config_option(check)
    check.set_defaults(handler=cmd_check, builds_heap=True, only_reports=True)

    once = commands.add_parser("once", help="fetch and evaluate every rule once")
    _config_option(once)
    once.add_argument("--format", choices=("json", "table"), default="table")
    once.add_argument("--notify", action="store_true", help="also send notifications")
    once.set_defaults(handler=cmd_once)

    test_rules = commands.add_parser("test-rules", help="run offline rule unit tests")
    test_rules.add_argument("paths", nargs="+", type=Path, metavar="FILE")
    test_rules.set_defaults(handler=cmd_test_rules)

    backtest = commands.add_parser("backtest", help="replay rules over history")
    _config_option(backtest)
    backtest.add_argument("--rules", type=Path, help="rule file or folder (default: config's)")
    backtest.add_argument("--csv", type=Path, action="append", default=[], metavar="FILE")
    backtest.add_argument("--from", dest="start", type=date.fromisoformat, metavar="YYYY-MM-DD")
    backtest.add_argument("--to", dest="end", type=date.fromisoformat, metavar="YYYY-MM-DD")
    backtest.add_argument("--format", choices=("jsonl", "json", "table"), default="jsonl")
    backtest.set_defaults(handler=cmd_backtest)

    demo = commands.add_parser(
        "demo", help="run the agent against the built-in simulator (no credentials needed)"
    )
    demo.add_argument(
        "--config",
        type=Path,
        default=None,
        help="config whose rules the demo evaluates (default: the shipped demo config)",
    )
    demo.add_argument("--duration", type=float, default=60.0, help="wall-clock seconds to run")
    demo.add_argument("--speed", type=float, default=90.0, help="simulated seconds per real second")
    demo.set_defaults(handler=cmd_demo)

    run = commands.add_parser("run", help="run the alerting daemon (SIGHUP reloads)")
    _config_option(run)
    run.set_defaults(handler=cmd_run, builds_heap=True)

    status = commands.add_parser("status", help="show current alerts of the daemon")
    _config_option(status)
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(handler=cmd_status)

    from agent.daemon import cli as state_cli
    from agent.notify import cli as notify_cli
    from agent.remediate import cli as remediate_cli

    notify_cli.add_arguments(commands)
    state_cli.add_arguments(commands)
    remediate_cli.add_arguments(commands)
    for name in ("notify-test", "silence", "ack", "audit", "automations"):
        for parser_for in _leaf_parsers(commands.choices[name]):
            _config_option(parser_for)
            parser_for.set_defaults(handler=cmd_with_settings)

    from agent.setup import cli as setup_cli

    setup_cli.add_arguments(commands, DEFAULT_CONFIG)

    from agent.simulator import cli as simulator_cli

    simulate = commands.add_parser("simulate", help="serve the local Contentstack simulator")
    simulator_cli.add_arguments(simulate)
    simulate.set_defaults(handler=simulator_cli.run)
    return parser


def _leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser itself, or the parsers of its sub-commands (``silence add`` …)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return [leaf for child in action.choices.values() for leaf in _leaf_parsers(child)]
    return [parser]


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"TOML config file (default: {DEFAULT_CONFIG} if present)",
    )


def _settings(args: argparse.Namespace) -> Any:
    from agent.config import ConfigError
    from agent.logs import configure_logging
    from agent.wiring import load_config

    explicit = args.config is not None
    if not explicit and args.command in ("check", "run", "once") and not DEFAULT_CONFIG.exists():
        raise ConfigError(
            [
                f"no config found ({DEFAULT_CONFIG} is not in {Path.cwd()}): write one with "
                "`stackwatch init`, or copy config.example.toml to config.toml and edit it, "
                "or name one with --config FILE"
            ]
        )
    settings = load_config(args.config or DEFAULT_CONFIG, explicit=explicit)
    configure_logging(settings.agent.log_level)
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    from agent.daemon.security import bind_problem
    from agent.daemon.service import Daemon
    from agent.store.db import StoreError

    explicit = args.config is not None
    path: Path = args.config or DEFAULT_CONFIG
    settings = _settings(args)
    problem = bind_problem(settings.agent.http_bind, settings.agent.api_token is not None)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        daemon = Daemon(
            settings, path if explicit or path.exists() else None, config_required=explicit
        )
    except StoreError as error:
        print(f"error: {redact(str(error))}", file=sys.stderr)
        return 2
    if not daemon.run():
        # a cycle is still stuck in an API call: its state is safe (it commits whole or
        # not at all), so leave without waiting for the worker threads
        sys.stderr.flush()
        os._exit(0)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from agent.daemon.status import daemon_url, fetch_alerts, format_table, read_state_file

    settings = _settings(args)
    agent = settings.agent
    url = daemon_url(agent.state_path, agent.http_bind, agent.http_port)
    alerts = fetch_alerts(url) if url else None
    source = f"daemon at {url}"
    if alerts is None:
        try:
            alerts = read_state_file(agent.state_path)
        except FileNotFoundError as error:
            print(f"error: no daemon answered and {error}", file=sys.stderr)
            return 1
        source = f"state file {agent.state_path} (daemon not reachable)"
    if args.format == "json":
        print(json.dumps({"source": source, "alerts": alerts}, indent=2, sort_keys=True))
    else:
        print(format_table(alerts))
        print(f"({len(alerts)} alert(s) from {source})", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from agent.demo import run_demo
    from agent.logs import configure_logging
    from agent.wiring import load_config

    if args.duration <= 0 or args.speed <= 0:
        print("error: --duration and --speed must be positive", file=sys.stderr)
        return 2
    settings = load_config(args.config or DEMO_CONFIG, explicit=True)
    configure_logging("warning")
    report = run_demo(settings, duration=args.duration, speed=args.speed)
    return 0 if report.evaluations else 1


def cmd_with_settings(args: argparse.Namespace) -> int:
    settings = _settings(args)
    code: int = args.settings_handler(settings, args)
    return code


def cmd_check(args: argparse.Namespace) -> int:
    from agent.wiring import check

    print(check(_settings(args)))
    return 0


def cmd_once(args: argparse.Namespace) -> int:
    from agent.clock import SystemClock
    from agent.evaluate.backtest import evaluate_once
    from agent.wiring import build_pipeline

    settings = _settings(args)
    clock = SystemClock()
    pipeline = build_pipeline(settings, clock)
    try:
        report = evaluate_once(pipeline.engine, clock.now())
    finally:
        pipeline.close()
    rows = [
        {
            "rule": instance.rule,
            "labels": instance.labels,
            "state": instance.state.state.value,
            "value": instance.state.value,
            "fingerprint": instance.fingerprint,
            "error": instance.state.error,
        }
        for instance in pipeline.engine.all_instances()
    ]
    if args.format == "json":
        for row in rows:
            print(json.dumps(row, sort_keys=True))
    else:
        _print_table(rows)
    for rule, message in report.errors.items():
        print(f"warning: {rule}: {message}", file=sys.stderr)
    code = 1 if report.errors else 0  # a rule that could not be evaluated is a failure
    if args.notify:
        code = max(code, _notify_once(settings, clock, report.transitions))
    return code


def _notify_once(settings: Any, clock: SystemClock, transitions: list[Any]) -> int:
    """Send this run's transitions now: a one-shot run cannot wait out group_wait."""
    from agent.clock import OffsetClock
    from agent.notify import Notifier
    from agent.notify.route import RouteTree
    from agent.store import Store

    routes = RouteTree(settings.notify.route).by_id.values()
    longest_wait = max((route.group_wait for route in routes), default=timedelta(0))
    store = Store(settings.agent.state_path)
    try:
        notifier = Notifier(settings.notify, store, OffsetClock(clock, longest_wait))
        notifier.submit(transitions)
        delivery = notifier.run_once()
    finally:
        store.close()
    print(
        f"notifications: {delivery.delivered} delivered, {delivery.retrying} to retry, "
        f"{delivery.dead} dead",
        file=sys.stderr,
    )
    return 0 if not delivery.retrying and not delivery.dead else 1


def _print_table(rows: list[dict[str, Any]]) -> None:
    headers = ("RULE", "STATE", "VALUE", "LABELS")
    table = [
        (
            row["rule"],
            row["state"],
            "" if row["value"] is None else f"{row['value']:.6g}",
            ",".join(
                f"{k}={v}" for k, v in sorted(row["labels"].items()) if k not in ("alertname",)
            ),
        )
        for row in rows
    ]
    widths = [max([len(h)] + [len(r[i]) for r in table]) for i, h in enumerate(headers)]
    for line in [headers, *table]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def cmd_test_rules(args: argparse.Namespace) -> int:
    from agent.evaluate.testing import find_test_files, run_test_file

    files = find_test_files(args.paths)
    if not files:
        print("error: no rule test files (*.test.toml) found", file=sys.stderr)
        return 2
    passed = failed = 0
    for path in files:
        for result in run_test_file(path):
            if result.passed:
                passed += 1
                print(f"PASS {path}: {result.name}")
            else:
                failed += 1
                print(f"FAIL {path}: {result.name}")
                for failure in result.failures:
                    print("  " + failure.replace("\n", "\n  "))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from agent.clock import SystemClock
    from agent.evaluate.backtest import CsvError, backtest_csv, backtest_source
    from agent.wiring import build_pipeline

    if args.csv:
        if args.rules is None:
            print("error: --csv needs --rules FILE", file=sys.stderr)
            return 2
        try:  # (a generator: a bad CSV row raises while the transitions print)
            _print_transitions(backtest_csv(args.rules, args.csv), args.format)
        except CsvError as error:
            print(f"error: {redact(str(error))}", file=sys.stderr)
            return 1
        return 0
    if args.start is None or args.end is None:
        print("error: give --csv FILE, or --from and --to dates", file=sys.stderr)
        return 2
    if args.end < args.start:
        print("error: --to is before --from", file=sys.stderr)
        return 2
    settings = _settings(args)
    if args.rules is not None:
        settings.agent.rule_paths = [args.rules]
    clock = SystemClock()
    pipeline = build_pipeline(settings, clock)
    start = datetime.combine(args.start, time(), UTC)
    end = min(datetime.combine(args.end, time.max, UTC), clock.now())
    try:
        transitions = backtest_source(
            list(pipeline.engine.rules.values()),
            pipeline.engine.source,
            start,
            end,
            settings.agent.default_interval,
        )
        _print_transitions(transitions, args.format)
    finally:
        pipeline.close()
    return 0


def _print_transitions(transitions: Any, output_format: str) -> None:
    if output_format == "json":
        print(json.dumps(list(transitions), indent=2))
        return
    for transition in transitions:
        if output_format == "jsonl":
            print(json.dumps(transition), flush=False)
        else:
            where = transition.get("series") or ",".join(
                f"{k}={v}" for k, v in sorted(transition.get("labels", {}).items())
            )
            print(
                f"{transition['at']}  {transition['rule']}  {transition['previous']} -> "
                f"{transition['state']}  value={transition['value']}  {where}"
            )


if __name__ == "__main__":
    entry()
