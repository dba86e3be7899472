"""``stackwatch`` sub-commands that change or inspect the agent's state: silence
add/list/expire, ack, audit (the operators' trail and remediation's actions).

They go through ``operations`` like the HTTP API does, so a silence or ack made here
writes the same audit row. They work on the state file, whether or not the daemon runs:
the running daemon picks the change up on its next beat.

Wiring: ``add_arguments(commands)`` registers the parsers and sets ``settings_handler``
on each; the main CLI loads the settings and calls ``args.settings_handler(settings,
args)``, which returns the exit code. ``settings`` needs ``.notify`` (a NotifyConfig)
and ``.agent`` (an AgentSettings: the state file and the clock).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agent.clock import shared_clock
from agent.durations import format_duration, parse_duration
from agent.names import operator_name
from agent.remediate.cli import actions_table
from agent.remediate.records import Outcome
from agent.remediate.storage import AuditFilter
from agent.store import Store

if TYPE_CHECKING:
    from agent.daemon.operations import OperationError, Operations


def add_arguments(commands: Any) -> None:
    """Register the sub-commands on an ``add_subparsers()`` object."""
    silence = commands.add_parser("silence", help="manage silences")
    actions = silence.add_subparsers(dest="silence_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="silence alerts matching labels")
    add.add_argument(
        "--match",
        action="append",
        required=True,
        metavar="MATCHER",
        help="KEY=VALUE, KEY!=VALUE, KEY=~REGEX or KEY!~REGEX (repeatable; all must match)",
    )
    add.add_argument("--duration", default="2h", help="how long (e.g. 30m, 2h, 1d)")
    add.add_argument("--start", type=_timestamp, help="ISO start time (default: now)")
    add.add_argument("--comment", default="")
    add.add_argument("--by", default=None, help="author (default: current user)")
    add.set_defaults(settings_handler=silence_add)
    listing = actions.add_parser("list", help="list silences")
    listing.add_argument("--all", action="store_true", help="include expired silences")
    listing.set_defaults(settings_handler=silence_list)
    expire = actions.add_parser("expire", help="end a silence now")
    expire.add_argument("id", metavar="ID")
    expire.add_argument("--by", default=None, help="who (default: current user)")
    expire.set_defaults(settings_handler=silence_expire)

    ack_parser = commands.add_parser("ack", help="acknowledge a firing alert")
    ack_parser.add_argument("fingerprint", metavar="FINGERPRINT")
    ack_parser.add_argument("--comment", default="")
    ack_parser.add_argument("--by", default=None, help="who (default: current user)")
    ack_parser.set_defaults(settings_handler=ack)

    audit = commands.add_parser(
        "audit", help="the audit trail (who changed what) and remediation's actions"
    )
    audit.add_argument("--limit", type=int, default=50, help="how many rows (newest first)")
    audit.add_argument("--format", choices=("table", "json"), default="table")
    audit.add_argument("--since", default="7d", help="actions this far back (default 7d)")
    narrow = audit.add_argument_group("only remediation actions, narrowed to")
    narrow.add_argument("--action", help="this action")
    narrow.add_argument("--rule", help="actions for this rule")
    narrow.add_argument("--outcome", choices=[o.value for o in Outcome])
    narrow.add_argument("--automation", help="this automation (id or title)")
    narrow.add_argument("--fingerprint", help="actions for this alert")
    audit.set_defaults(settings_handler=audit_trail)


def _timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@contextmanager
def _operations(settings: Any) -> Iterator[Operations]:
    from agent.daemon import persistence  # the whole evaluation engine: not for ``--help``
    from agent.daemon.operations import Operations
    from agent.notify import Notifier  # Apprise comes with it: not for ``--help``

    store = Store(settings.agent.state_path)
    try:
        persistence.migrate(store)
        agent = settings.agent  # the daemon's own time, sped up in demos and tests
        clock = shared_clock(agent.clock_speed, agent.clock_origin)
        yield Operations(store, Notifier(settings.notify, store, clock), clock, via="cli")
    finally:
        store.close()


def _fail(error: OperationError, code: int) -> int:
    print(f"error: {error.message}", file=sys.stderr)
    return code


def silence_add(settings: Any, args: argparse.Namespace) -> int:
    from agent.daemon.operations import OperationError

    try:
        duration = parse_duration(args.duration)
    except ValueError as error:
        print(f"error: --duration: {error}", file=sys.stderr)
        return 2
    with _operations(settings) as ops:
        try:
            silence = ops.add_silence(
                list(args.match),
                actor=operator_name(args.by),
                duration=duration,
                starts_at=args.start,
                comment=args.comment,
            )
        except OperationError as error:
            return _fail(error, 2)
    print(
        f"silence {silence.id} until {silence.ends_at.isoformat(timespec='seconds')} "
        f"({format_duration(silence.ends_at - silence.starts_at)}): {' '.join(silence.matchers)}"
    )
    return 0


def silence_list(settings: Any, args: argparse.Namespace) -> int:
    with _operations(settings) as ops:
        silences = ops.silences(include_expired=args.all)
        now = ops.clock.now()
    if not silences:
        print("no silences")
        return 0
    rows = [("ID", "STATUS", "ENDS", "BY", "MATCHERS", "COMMENT")]
    rows += [
        (
            s.id,
            s.status(now),
            s.ends_at.isoformat(timespec="minutes"),
            s.created_by,
            " ".join(s.matchers),
            s.comment,
        )
        for s in silences
    ]
    _print_rows(rows)
    return 0


def silence_expire(settings: Any, args: argparse.Namespace) -> int:
    from agent.daemon.operations import OperationError

    with _operations(settings) as ops:
        try:
            ops.expire_silence(args.id, actor=operator_name(args.by))
        except OperationError as error:
            return _fail(error, 1)
    print(f"silence {args.id} expired")
    return 0


def ack(settings: Any, args: argparse.Namespace) -> int:
    from agent.daemon.operations import OperationError

    with _operations(settings) as ops:
        try:
            channels = ops.ack(args.fingerprint, actor=operator_name(args.by), comment=args.comment)
        except OperationError as error:
            return _fail(error, 1)
    where = ", ".join(channels) if channels else "no channel had been notified yet"
    print(f"acknowledged {args.fingerprint}; announced on: {where}")
    print("(the running agent delivers the announcement on its next beat)")
    return 0


def audit_trail(settings: Any, args: argparse.Namespace) -> int:
    if args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    try:
        since = parse_duration(args.since)
    except ValueError as error:
        print(f"error: --since: {error}", file=sys.stderr)
        return 2
    narrowed = any(
        getattr(args, name) for name in ("action", "rule", "outcome", "automation", "fingerprint")
    )
    with _operations(settings) as ops:
        rows = [] if narrowed else ops.audit_trail(args.limit)
        wanted = AuditFilter(
            since=ops.clock.now() - since,
            action=args.action,
            rule=args.rule,
            outcome=args.outcome,
            automation=args.automation,
            fingerprint=args.fingerprint,
            limit=args.limit,
        )
        actions = ops.remediation_actions(wanted)
    if args.format == "json":
        payload = {"audit": rows, "actions": [record.to_json() for record in actions]}
        print(json.dumps(payload, indent=2, sort_keys=True))
        return 0
    if not narrowed:
        _print_trail(rows)
        print()
    print(actions_table(actions) if actions else "no remediation actions")
    return 0


def _print_trail(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("no audit rows")
        return
    table = [("AT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "DETAIL")]
    table += [
        (
            row["at"][:19],
            row["actor"],
            row["action"],
            row["target"] or "",
            row["outcome"],
            json.dumps(row["detail"], sort_keys=True),
        )
        for row in rows
    ]
    _print_rows(table)


def _print_rows(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
