"""``stackwatch notify-test``: send a test message straight to a channel's destinations.

(Silences and acks change the agent's state and write audit rows: ``agent.daemon.cli``.)

Wiring: ``add_arguments(commands)`` registers the parser and sets ``settings_handler``
on it; the main CLI loads the settings and calls ``args.settings_handler(settings,
args)``, which returns the exit code. ``settings`` needs ``.notify`` (a NotifyConfig)
and ``.agent`` (an AgentSettings: the state file and the clock).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from agent.clock import shared_clock
from agent.redact import redact
from agent.store import Store

if TYPE_CHECKING:
    from agent.notify.notifier import Notifier


def add_arguments(commands: Any) -> None:
    """Register the notify-test sub-command on an ``add_subparsers()`` object."""
    test = commands.add_parser("notify-test", help="send a test notification to a channel")
    test.add_argument("channel", metavar="CHANNEL")
    test.add_argument("--message", default="", help="text of the test message")
    test.set_defaults(settings_handler=notify_test)


def _open(settings: Any) -> tuple[Notifier, Store]:
    from agent.notify.notifier import Notifier  # Apprise comes with it: not for ``--help``

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
