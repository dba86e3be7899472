"""bench.scale's offline evaluation replays what its live cycle recorded: the recording must
keep answers of every form the client gives (the Analytics client answers with SampleBlocks),
or the replay has nothing to answer from."""

from datetime import date

from agent.collect.models import AnalyticsQuery
from agent.evaluate.sources import LiveSource
from bench.scale import RecordingSource, ReplaySource
from tests.evaluate.test_sources import BatchAnalytics, FakeAutomations


def test_the_recording_keeps_block_answers_and_the_replay_answers_from_them():
    day = date(2024, 5, 1)
    queries = [AnalyticsQuery("usage", day, day, api_key=key) for key in ("blt1", "blt2")]
    analytics = BatchAnalytics(failing=queries[1])
    recording = RecordingSource(LiveSource(analytics, FakeAutomations()))
    seen = {}

    def keep(request, answer):
        seen[request] = answer
        return []

    recording.fetch_many(queries, None, keep)
    assert seen[queries[0]] is analytics.answers[queries[0]]  # the engine still gets the block
    replay = ReplaySource(recording.rows)
    assert [s.labels for s in replay.fetch(queries[0])] == [{"stack": "blt1"}]
    assert len(recording.rows) == 1  # the failed query is not recorded as rows
