"""``stackwatch`` sub-commands for notifications: notify-test, silence add/list/expire, ack.

Wiring: ``add_arguments(commands)`` registers the parsers and sets ``notify_handler``
on each; the main CLI loads the settings and calls ``args.notify_handler(settings,
args)``, which returns the exit code. ``settings`` needs ``.notify`` (a NotifyConfig)
and ``.agent`` (an AgentSettings: the state file and the clock).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from typing import Any

from agent.clock import shared_clock
from agent.durations import format_duration, parse_duration
from agent.notify.notifier import Notifier
from agent.redact import redact
from agent.store import Store


def add_arguments(commands: Any) -> None:
    """Register the notify sub-commands on an ``add_subparsers()`` object."""
    test = commands.add_parser("notify-test", help="send a test notification to a channel")
    test.add_argument("channel", metavar="CHANNEL")
    test.add_argument("--message", default="", help="text of the test message")
    test.set_defaults(notify_handler=notify_test)

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
    add.set_defaults(notify_handler=silence_add)
    listing = actions.add_parser("list", help="list silences")
    listing.add_argument("--all", action="store_true", help="include expired silences")
    listing.set_defaults(notify_handler=silence_list)
    expire = actions.add_parser("expire", help="end a silence now")
    expire.add_argument("id", metavar="ID")
    expire.set_defaults(notify_handler=silence_expire)

    ack_parser = commands.add_parser("ack", help="acknowledge a firing alert")
    ack_parser.add_argument("fingerprint", metavar="FINGERPRINT")
    ack_parser.add_argument("--comment", default="")
    ack_parser.add_argument("--by", default=None, help="who (default: current user)")
    ack_parser.set_defaults(notify_handler=ack)


def _timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _user(explicit: str | None) -> str:
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "stackwatch"


def _open(settings: Any) -> tuple[Notifier, Store]:
    store = Store(settings.agent.state_path)
    try:
        agent = settings.agent  # the daemon's own time, sped up in demos and tests
        clock = shared_clock(agent.clock_speed, agent.clock_origin)
        return Notifier(settings.notify, store, clock), store
    except Exception:
        store.close()
        raise


def notify_test(settings: Any, args: argparse.Namespace) -> int:
    notifier, store = _open(settings)
    try:
        try:
            results = notifier.test_channel(args.channel, args.message)
        except KeyError:
            known = ", ".join(notifier.channels.names()) or "none configured"
            print(f"error: unknown channel {args.channel!r} (channels: {known})", file=sys.stderr)
            return 2
    finally:
        store.close()
    for result in results:
        if result.ok:
            print(f"ok    {result.destination}")
        else:
            # The error already names the (redacted) destination.
            print(f"FAIL  {redact(result.error or result.destination + ': failed')}")
    return 0 if results and all(result.ok for result in results) else 1


def silence_add(settings: Any, args: argparse.Namespace) -> int:
    try:
        duration = parse_duration(args.duration)
    except ValueError as error:
        print(f"error: --duration: {error}", file=sys.stderr)
        return 2
    notifier, store = _open(settings)
    try:
        silence = notifier.add_silence(
            list(args.match),
            duration=duration,
            starts_at=args.start,
            created_by=_user(args.by),
            comment=args.comment,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(
        f"silence {silence.id} until {silence.ends_at.isoformat(timespec='seconds')} "
        f"({format_duration(silence.ends_at - silence.starts_at)}): {' '.join(silence.matchers)}"
    )
    return 0


def silence_list(settings: Any, args: argparse.Namespace) -> int:
    notifier, store = _open(settings)
    try:
        silences = notifier.silences(include_expired=args.all)
        now = notifier.clock.now()
    finally:
        store.close()
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
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def silence_expire(settings: Any, args: argparse.Namespace) -> int:
    notifier, store = _open(settings)
    try:
        ended = notifier.expire_silence(args.id)
    finally:
        store.close()
    if not ended:
        print(f"error: no active silence {args.id!r}", file=sys.stderr)
        return 1
    print(f"silence {args.id} expired")
    return 0


def ack(settings: Any, args: argparse.Namespace) -> int:
    notifier, store = _open(settings)
    try:
        channels = notifier.ack(args.fingerprint, _user(args.by), args.comment)
    except KeyError:
        print(f"error: no alert with fingerprint {args.fingerprint!r}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        store.close()
    where = ", ".join(channels) if channels else "no channel had been notified yet"
    print(f"acknowledged {args.fingerprint}; announced on: {where}")
    print("(the running agent delivers the announcement on its next beat)")
    return 0
