"""The route tree: which routes (channels, grouping, timing) an alert goes to.

Alertmanager semantics: a node's children are tried in order; the first matching
child wins unless it sets ``continue``; when no child matches, the node itself is
the match. Children inherit every unset setting from their parent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from agent.notify.config import RouteConfig, TemplateOverrides
from agent.notify.matchers import Matcher, all_match, parse_matchers

#: group_by value meaning "every label": one group per alert.
GROUP_BY_ALL = "..."


@dataclass(frozen=True)
class Route:
    """A route with its inherited settings resolved."""

    id: str  #: stable path, e.g. ``root/critical`` or ``root/1``; used in group keys.
    name: str | None
    matchers: tuple[Matcher, ...]
    channels: tuple[str, ...]
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    send_resolved: bool
    send_nodata: bool
    send_error: bool
    escalation: str | None
    templates: TemplateOverrides
    continue_: bool
    children: tuple[Route, ...] = field(default=())

    def announces(self, state: str) -> bool:
        """Whether this route tells its channels about an alert in ``state``."""
        if state == "nodata":
            return self.send_nodata
        if state == "error":
            return self.send_error
        return True

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if GROUP_BY_ALL in self.group_by:
            return dict(sorted(labels.items()))
        return {key: labels.get(key, "") for key in self.group_by}


def _merge_templates(parent: TemplateOverrides, own: TemplateOverrides | None) -> TemplateOverrides:
    if own is None:
        return parent
    merged = parent.model_dump()
    merged.update({key: value for key, value in own.model_dump().items() if value is not None})
    return TemplateOverrides(**merged)


def _build(config: RouteConfig, parent: Route | None, route_id: str) -> Route:
    matchers = [Matcher(key, "=", value) for key, value in config.match.items()]
    matchers += [Matcher(key, "=~", value) for key, value in config.match_re.items()]
    matchers += parse_matchers(config.matchers)

    def pick(own, inherited, default):  # type: ignore[no-untyped-def]
        if own is not None:
            return own
        return inherited if parent is not None else default

    node = Route(
        id=route_id,
        name=config.name,
        matchers=tuple(matchers) if parent is not None else (),
        channels=tuple(pick(config.channels, parent and parent.channels, [])),
        group_by=tuple(pick(config.group_by, parent and parent.group_by, ["alertname"])),
        group_wait=pick(config.group_wait, parent and parent.group_wait, timedelta(seconds=30)),
        group_interval=pick(
            config.group_interval, parent and parent.group_interval, timedelta(minutes=5)
        ),
        repeat_interval=pick(
            config.repeat_interval, parent and parent.repeat_interval, timedelta(hours=4)
        ),
        send_resolved=pick(config.send_resolved, parent and parent.send_resolved, True),
        send_nodata=pick(config.send_nodata, parent and parent.send_nodata, False),
        send_error=pick(config.send_error, parent and parent.send_error, False),
        escalation=config.escalation or (parent.escalation if parent else None),
        templates=_merge_templates(
            parent.templates if parent else TemplateOverrides(), config.templates
        ),
        continue_=config.continue_,
    )
    children = tuple(
        _build(child, node, f"{route_id}/{child.name or index}")
        for index, child in enumerate(config.routes)
    )
    return Route(**{**node.__dict__, "children": children})


class RouteTree:
    def __init__(self, root: RouteConfig, defaults: TemplateOverrides | None = None) -> None:
        base = root
        if defaults is not None:
            merged = _merge_templates(defaults, root.templates)
            base = root.model_copy(update={"templates": merged})
        self.root = _build(base, None, "root")
        self.by_name: dict[str, Route] = {}
        self.by_id: dict[str, Route] = {}
        stack = [self.root]
        while stack:
            node = stack.pop()
            self.by_id[node.id] = node
            if node.name:
                self.by_name[node.name] = node
            stack.extend(node.children)

    def match(self, labels: Mapping[str, str], names: Sequence[str] = ()) -> list[Route]:
        """Routes for an alert: the named ones if the rule asked for known names,
        else the tree walk."""
        if names:
            chosen = [self.by_name[name] for name in names if name in self.by_name]
            if chosen:
                return chosen
        return self._walk(self.root, labels)

    def _walk(self, node: Route, labels: Mapping[str, str]) -> list[Route]:
        found: list[Route] = []
        for child in node.children:
            if not all_match(child.matchers, labels):
                continue
            found.extend(self._walk(child, labels))
            if not child.continue_:
                break
        return found or [node]
