"""LiveSource: execution rows get their automation's title; a failing title list is harmless.
PrefetchedSource (``once``) fetches in one batch and keeps the answers as they came."""

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from agent.collect.block import SampleBlock
from agent.collect.errors import ServerError
from agent.collect.models import AnalyticsQuery, Sample
from agent.evaluate.planner import ExecutionsRequest
from agent.evaluate.sources import LiveSource, PrefetchedSource

SINCE = datetime(2024, 5, 1, tzinfo=UTC)


@dataclass
class Named:
    id: str
    title: str


class FakeAutomations:
    def __init__(self) -> None:
        self.listed = 0
        self.fail = False
        self.automations = [Named("a1", "Purge CDN cache")]

    def list_projects(self):
        return [Named("p1", "Website")]

    def list_automations(self, project_id):
        self.listed += 1
        if self.fail:
            raise ServerError("boom", status=500, endpoint="GET /v1/projects/{id}/automations")
        return self.automations

    def execution_samples(self, project_id, since):
        return [
            Sample("executions", SINCE, {"project": project_id, "automation": a}, {"count": 1})
            for a in ("a1", "a2")
        ]


def test_titles_are_added_and_the_list_is_read_once():
    automations = FakeAutomations()
    source = LiveSource(analytics=None, executions=automations)  # type: ignore[arg-type]
    rows = source.fetch(ExecutionsRequest("*", SINCE))
    titles = {r.labels["automation"]: r.labels.get("automation_title") for r in rows}
    # a2 is not in the list (a deleted automation): untitled, and not asked for again
    assert titles == {"a1": "Purge CDN cache", "a2": None}
    source.fetch(ExecutionsRequest("p1", SINCE))
    assert automations.listed == 1


def test_a_failing_title_list_leaves_rows_untitled():
    automations = FakeAutomations()
    automations.fail = True
    source = LiveSource(analytics=None, executions=automations)  # type: ignore[arg-type]
    rows = source.fetch(ExecutionsRequest("p1", SINCE))
    assert len(rows) == 2 and all("automation_title" not in r.labels for r in rows)


class BatchAnalytics:
    """Answers Analytics queries in batches, recording each batch; one query fails."""

    def __init__(self, failing: AnalyticsQuery) -> None:
        self.batches: list[list[AnalyticsQuery]] = []
        self.failing = failing
        self.answers: dict[AnalyticsQuery, object] = {}

    def fetch_many(self, queries, newer_than=None, on_answer=None):
        """As the client does: each answer a ``SampleBlock``, through ``on_answer``."""
        self.batches.append(list(queries))
        results = {}
        for q in queries:
            answer = self.answers[q] = (
                ServerError("boom", status=500, endpoint="POST /jobs")
                if q == self.failing
                else SampleBlock.of([Sample(q.metric, SINCE, {"stack": q.api_key}, {"count": 1})])
            )
            results[q] = on_answer(q, answer) if on_answer else answer
        return results


def test_prefetching_for_once_fetches_the_analytics_queries_as_one_batch():
    day = SINCE.date()
    queries = [AnalyticsQuery("usage", day, day, api_key=key) for key in ("blt1", "blt2", "blt3")]
    analytics = BatchAnalytics(failing=queries[1])
    source = PrefetchedSource(
        LiveSource(analytics, FakeAutomations()), [*queries, ExecutionsRequest("p1", SINCE)]
    )
    assert analytics.batches == [queries]  # submitted together, not one job after another
    assert source.fetch(queries[0])[0].labels == {"stack": "blt1"}
    with pytest.raises(ServerError):
        source.fetch(queries[1])
    assert len(source.fetch(ExecutionsRequest("p1", SINCE))) == 2


def test_prefetched_answers_reach_the_engines_hook_as_the_blocks_that_were_read():
    # a day of every stack's rows as Sample objects was most of ``once``'s memory
    day = SINCE.date()
    queries = [AnalyticsQuery("usage", day, day, api_key=key) for key in ("blt1", "blt2")]
    analytics = BatchAnalytics(failing=queries[1])
    source = PrefetchedSource(LiveSource(analytics, FakeAutomations()), queries)
    seen = {}

    def keep(request, answer):
        seen[request] = answer
        return []

    results = source.fetch_many(queries, None, keep)
    assert seen[queries[0]] is analytics.answers[queries[0]]
    assert seen[queries[1]] is analytics.answers[queries[1]]  # the failure, again
    assert results == {queries[0]: [], queries[1]: []}
    later = AnalyticsQuery("usage", day, day, api_key="blt9")
    assert isinstance(source.fetch_many([later])[later], LookupError)
    assert source.fetch_many(queries[:1])[queries[0]][0].labels == {"stack": "blt1"}
