"""``stackwatch simulate``: serve a scenario until Ctrl-C or SIGTERM.

``agent/cli.py`` registers the sub-command with ``add_arguments`` and calls ``run``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from agent.clock import ScaledClock
from agent.simulator.control import ControlError, parse_fault_spec
from agent.simulator.faults import FAULT_KINDS
from agent.simulator.scenario import builtin_scenarios, load_scenario

if TYPE_CHECKING:
    from agent.simulator.server import Simulator

DEFAULT_PORT = 8750
DEFAULT_AUTHTOKEN = "sim-authtoken"
DEFAULT_ORGANIZATION = "sim-org"
DEFAULT_OAUTH_CLIENT = ("sim-client", "sim-secret")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    shipped = ", ".join(builtin_scenarios())
    parser.add_argument(
        "--scenario",
        default="demo",
        help=f"scenario TOML file, or the name of a shipped one ({shipped}); default: demo",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free one)")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per real second (60: an hour of traffic per minute)",
    )
    parser.add_argument("--authtoken", default=DEFAULT_AUTHTOKEN)
    parser.add_argument("--organization-uid", default=DEFAULT_ORGANIZATION)
    parser.add_argument(
        "--job-duration",
        type=float,
        default=2.0,
        help="simulated seconds an Analytics job stays active",
    )
    parser.add_argument(
        "--rate-limit", type=int, default=10, help="requests per second per organization"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[,FIELD=VALUE...]",
        help="start with a fault in place, e.g. 'http_status,status=503,path_prefix=/analytics/'"
        f" (kinds: {', '.join(sorted(FAULT_KINDS))}); repeatable; at run time: /__sim/faults",
    )
    parser.add_argument("--oauth-client-id", default=DEFAULT_OAUTH_CLIENT[0])
    parser.add_argument("--oauth-client-secret", default=DEFAULT_OAUTH_CLIENT[1])


def _describe(sim: Simulator, args: argparse.Namespace, out: TextIO, origin: datetime) -> None:
    url = sim.url
    scenario = sim.scenario
    lines = [
        f"Contentstack simulator: scenario {scenario.name!r} on {url} (speed x{args.speed:g})",
        f"  authtoken         {sim.authtoken}",
        f"  organization_uid  {sim.organization_uid}",
        f"  OAuth token URL   {url}/token  (client {args.oauth_client_id} / "
        f"{args.oauth_client_secret})",
        "  stacks            " + ", ".join(f"{s.api_key} ({s.name})" for s in scenario.stacks),
    ]
    for user in scenario.users:
        extra = " (SSO only)" if user.sso else ""
        if user.tfa_code:
            extra += f"  [2FA code: {user.tfa_code}]"
        lines.append(f"  login             {user.email} / {user.password}{extra}")
    for project in scenario.projects:
        lines.append(f"  project           {project.id} ({project.title})")
        for auto in project.automations:
            if auto.trigger_id:
                key = f"  [ah-http-key: {auto.secure_key}]" if auto.secure_key else ""
                lines.append(
                    f"    trigger         {url}/automations-api/run/{auto.trigger_id}{key}"
                )
    lines += [
        "",
        "Agent configuration for it:",
        "  [contentstack]",
        f'  organization_uid = "{sim.organization_uid}"',
        f'  authtoken = "{sim.authtoken}"',
        f'  analytics_base_url = "{url}"',
        f'  automations_base_url = "{url}"',
        f'  cma_base_url = "{url}"',
        f'  oauth_token_url = "{url}/token"',
        "  [contentstack.stacks]",
        *(f'  "{s.name or s.api_key}" = "{s.api_key}"' for s in scenario.stacks),
    ]
    if args.speed != 1:
        # the agent must read the same sped-up time as the simulator
        lines += [
            "  [agent]",
            f"  clock_speed = {args.speed:g}",
            f'  clock_origin = "{origin.isoformat()}"',
        ]
    lines += [
        "",
        f"Faults: {len(sim.faults)} active; script them at {url}/__sim/faults and start",
        f"incidents at {url}/__sim/incidents (GET lists, POST adds, DELETE clears faults).",
        "",
        "Ctrl-C to stop.",
    ]
    print("\n".join(lines), file=out, flush=True)


def run(args: argparse.Namespace, *, stop: threading.Event | None = None) -> int:
    """Serve until Ctrl-C, SIGTERM or (for tests and embedding) ``stop`` is set."""
    from agent.simulator.server import Simulator

    try:
        scenario = load_scenario(args.scenario)
    except (OSError, ValueError) as error:
        print(f"stackwatch simulate: {error}", file=sys.stderr)
        return 2
    if args.speed <= 0:
        print("stackwatch simulate: --speed must be positive", file=sys.stderr)
        return 2
    try:
        faults = [parse_fault_spec(spec) for spec in args.fault]
    except ControlError as error:
        print(f"stackwatch simulate: --fault: {error}", file=sys.stderr)
        return 2
    clock = ScaledClock(datetime.now(UTC), args.speed)
    try:
        sim = Simulator(
            scenario,
            clock=clock,
            authtoken=args.authtoken,
            organization_uid=args.organization_uid,
            oauth_clients={args.oauth_client_id: args.oauth_client_secret},
            job_duration=args.job_duration,
            rate_limit=args.rate_limit,
            host=args.host,
            port=args.port,
        ).start()
    except (OSError, ValueError) as error:
        print(f"stackwatch simulate: cannot start: {error}", file=sys.stderr)
        return 2
    for fault in faults:
        sim.add_fault(fault)

    stopping = stop or threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        _describe(sim, args, sys.stdout, clock.origin)
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print("simulator stopped", file=sys.stderr)
    return 0
