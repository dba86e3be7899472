"""Operator commands: ``stackwatch automations list|executions|enable|disable``.

So an operator can see and undo what remediation did without the Contentstack UI. Enable
and disable read the automation back and leave an audit record, like the agent's own
actions; ``stackwatch audit`` (``daemon.cli``) lists them with ``actions_table``.

Wiring: ``add_arguments(commands)`` registers the parsers and sets ``settings_handler``;
the main CLI loads the settings and calls ``args.settings_handler(settings, args)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from agent.clock import shared_clock
from agent.names import operator_name
from agent.remediate.records import AuditRecord, Outcome
from agent.remediate.storage import RemediationStorage


def add_arguments(commands: Any) -> None:
    automations = commands.add_parser(
        "automations", help="list, inspect, enable and disable Contentstack automations"
    )
    verbs = automations.add_subparsers(dest="automations_command", required=True, metavar="ACTION")
    listing = verbs.add_parser("list", help="automations and whether they are active")
    _project_option(listing)
    listing.set_defaults(settings_handler=automations_list)

    executions = verbs.add_parser("executions", help="the newest executions (execution log)")
    _project_option(executions)
    executions.add_argument("--automation", help="only this automation (id or title)")
    executions.add_argument("--status", help="only executions with this status, e.g. failed")
    executions.add_argument("--limit", type=int, default=20, help="per project (max 100)")
    executions.set_defaults(settings_handler=automations_executions)

    for verb, wanted in (("enable", True), ("disable", False)):
        change = verbs.add_parser(verb, help=f"{verb} an automation (read back to confirm)")
        change.add_argument("automation", metavar="AUTOMATION", help="automation id or title")
        _project_option(change)
        change.add_argument("--by", default=None, help="who (default: current user)")
        change.add_argument("--comment", default="", help="why, for the audit trail")
        change.set_defaults(settings_handler=automations_set_active, active=wanted)


def _project_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", action="append", default=[], help="project id (repeatable)")
    parser.add_argument("--format", choices=("table", "json"), default="table")


# -- automations ----------------------------------------------------------------------------


def _clients(settings: Any) -> Any:
    from agent.clock import SystemClock
    from agent.collect import build_clients
    from agent.config import ConfigError

    problem = settings.contentstack.credentials_problem()
    if problem:
        raise ConfigError([problem])
    return build_clients(settings.contentstack, SystemClock())


def _projects(clients: Any, wanted: list[str]) -> list[tuple[str, str]]:
    """(id, title) of the named projects, or of every project."""
    if wanted:
        return [(p, clients.automations.get_project(p).title) for p in wanted]
    return [(p.id, p.title) for p in clients.automations.list_projects()]


def automations_list(settings: Any, args: argparse.Namespace) -> int:
    with _clients(settings) as clients:
        rows = [
            {
                "project": project,
                "project_title": title,
                "id": automation.id,
                "title": automation.title,
                "active": automation.active,
            }
            for project, title in _projects(clients, args.project)
            for automation in clients.automations.list_automations(project)
        ]
    _show(
        args.format,
        rows,
        ("PROJECT", "ID", "TITLE", "ACTIVE"),
        lambda r: (r["project_title"] or r["project"], r["id"], r["title"], _yes(r["active"])),
    )
    return 0


def automations_executions(settings: Any, args: argparse.Namespace) -> int:
    limit = max(1, min(args.limit, 100))
    rows = []
    with _clients(settings) as clients:
        for project, title in _projects(clients, args.project):
            titles = {a.id: a.title for a in clients.automations.list_automations(project)}
            for execution in clients.automations.list_executions(project, limit=limit):
                automation = execution.automation_id or ""
                name = titles.get(automation, "")
                if args.automation and args.automation not in (automation, name):
                    continue
                if args.status and execution.status != args.status.lower():
                    continue
                rows.append(
                    {
                        "project": project,
                        "project_title": title,
                        "id": execution.id,
                        "automation": automation,
                        "automation_title": name,
                        "status": execution.status,
                        "created_at": execution.created_at.isoformat()
                        if execution.created_at
                        else None,
                        "duration": execution.duration,
                    }
                )
    _show(
        args.format,
        rows,
        ("CREATED", "STATUS", "AUTOMATION", "PROJECT", "EXECUTION"),
        lambda r: (
            r["created_at"] or "",
            r["status"],
            r["automation_title"] or r["automation"],
            r["project_title"] or r["project"],
            r["id"],
        ),
    )
    return 0


def automations_set_active(settings: Any, args: argparse.Namespace) -> int:
    from agent.collect.errors import ContentstackError
    from agent.store import Store

    wanted: bool = args.active
    verb = "enable" if wanted else "disable"
    with _clients(settings) as clients:
        found = [
            (project, title, automation)
            for project, title in _projects(clients, args.project)
            for automation in clients.automations.list_automations(project)
            if args.automation in (automation.id, automation.title)
        ]
        if len(found) != 1:
            where = "" if not found else f" ({len(found)} match: add --project)"
            print(f"error: no single automation {args.automation!r}{where}", file=sys.stderr)
            return 1
        project, project_title, automation = found[0]
        shown = (
            f"automation {automation.title or automation.id} in project {project_title or project}"
        )
        if automation.active == wanted:
            print(f"{shown} already is {'active' if wanted else 'inactive'}; nothing to do")
            return 0
        error = None
        try:
            clients.automations.set_active(project, automation.id, wanted)
            after = clients.automations.get_automation(project, automation.id, show_steps=False)
            verified = after.active == wanted
        except ContentstackError as failure:
            error, verified = str(failure), False
    clock = shared_clock(settings.agent.clock_speed, settings.agent.clock_origin)
    outcome = Outcome.SUCCEEDED if verified else Outcome.FAILED
    done = "enabled" if wanted else "disabled"
    who = operator_name(args.by)
    message = (
        f"{who} {done} {shown}" + (f": {args.comment}" if args.comment else "")
        if verified
        else f"{who} failed to {verb} {shown}: {error or 'it did not read back'}"
    )
    record = AuditRecord(
        at=clock.now().timestamp(),
        actor=f"cli:{who}",
        action="operator",
        kind=verb,
        outcome=outcome,
        message=message,
        project=project,
        automation=automation.id,
        automation_title=automation.title or None,
        detail={"prior_active": automation.active, **({"error": error} if error else {})},
    )
    store = Store(settings.agent.state_path)
    try:
        RemediationStorage(store).record([record])
    finally:
        store.close()
    print(message if verified else f"error: {message}", file=sys.stdout if verified else sys.stderr)
    return 0 if verified else 1


# -- output ---------------------------------------------------------------------------------


def actions_table(records: list[AuditRecord]) -> str:
    """Remediation records as a table, for ``stackwatch audit``."""
    headers = ("AT", "OUTCOME", "ACTION", "RULE", "AUTOMATION", "MESSAGE")
    return format_table(headers, [_action_cells(record.to_json()) for record in records])


def _action_cells(row: dict[str, Any]) -> tuple[str, ...]:
    return (
        row["at"][:19],
        row["outcome"] + (f" ({row['guardrail']})" if row["guardrail"] else ""),
        row["action"],
        row["rule"] or "",
        row["automation_title"] or row["automation"] or "",
        row["message"],
    )


def _show(output: str, rows: list[dict[str, Any]], headers: Sequence[str], cells: Any) -> None:
    if output == "json":
        print(json.dumps(rows, indent=2, sort_keys=True))
        return
    print(format_table(headers, [tuple(str(c) for c in cells(row)) for row in rows]))


def format_table(headers: Sequence[str], rows: list[tuple[str, ...]]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [tuple(headers), *rows]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _yes(value: bool) -> str:
    return "yes" if value else "no"
