from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.notify import NotifyConfig
from agent.notify.config import RouteConfig
from agent.notify.matchers import parse_matcher
from agent.notify.route import RouteTree


def tree(**root) -> RouteTree:
    return RouteTree(RouteConfig.model_validate(root))


def labels(**extra: str) -> dict[str, str]:
    return {"alertname": "HighErrors", "severity": "warning", **extra}


def test_first_match_wins_and_children_inherit():
    routes = tree(
        channels=["chat"],
        group_by=["alertname"],
        repeat_interval="1h",
        routes=[
            {"name": "critical", "match": {"severity": "critical"}, "channels": ["pager"]},
            {"name": "prod", "match_re": {"stack": "prod-.*"}, "group_wait": "5s"},
        ],
    )
    [chosen] = routes.match(labels(severity="critical", stack="prod-eu"))
    assert chosen.name == "critical" and chosen.channels == ("pager",)
    assert chosen.repeat_interval.total_seconds() == 3600  # inherited
    [chosen] = routes.match(labels(stack="prod-eu"))
    assert chosen.name == "prod" and chosen.channels == ("chat",)
    assert chosen.group_wait.total_seconds() == 5
    [chosen] = routes.match(labels(stack="dev"))
    assert chosen.id == "root"  # the default route


def test_continue_and_nested_routes():
    routes = tree(
        channels=["chat"],
        routes=[
            {"name": "audit", "matchers": ["severity=~warning|critical"], "channels": ["log"],
             "continue": True},
            {
                "name": "team",
                "matchers": ["team!=", "team!~ops"],
                "routes": [{"name": "team-critical", "match": {"severity": "critical"}}],
            },
        ],
    )  # fmt: skip
    names = [r.name for r in routes.match(labels(team="web", severity="critical"))]
    assert names == ["audit", "team-critical"]
    names = [r.name for r in routes.match(labels(team="web"))]
    assert names == ["audit", "team"]
    names = [r.name for r in routes.match(labels(team="ops"))]
    assert names == ["audit"]


def test_named_routes_selected_by_the_rule():
    routes = tree(channels=["chat"], routes=[{"name": "db", "match": {"x": "y"}}])
    assert [r.name for r in routes.match(labels(), ("db",))] == ["db"]
    assert [r.id for r in routes.match(labels(), ("nope",))] == ["root"]


def test_matcher_syntax():
    assert parse_matcher("stack=~'prod-.*'").matches({"stack": "prod-1"})
    assert parse_matcher("team!=ops").matches({})
    assert not parse_matcher("team=ops").matches({})
    assert parse_matcher("a!~b.*").matches({"a": "c"})
    with pytest.raises(ValueError):
        parse_matcher("no operator")
    with pytest.raises(ValueError):
        parse_matcher("a=~(")


def test_config_references_are_checked():
    with pytest.raises(ValidationError, match="unknown channel 'pager'"):
        NotifyConfig.model_validate(
            {"channels": [{"name": "chat", "urls": ["json://127.0.0.1/x"]}],
             "route": {"channels": ["chat"], "routes": [{"channels": ["pager"]}]}}
        )  # fmt: skip
    with pytest.raises(ValidationError, match="extra"):
        NotifyConfig.model_validate({"bogus": 1})
