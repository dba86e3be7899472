"""Whatever a rule file holds, loading it yields rules or problems, never an exception."""

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.evaluate.loader import validate_document

KEYS = [
    "name", "query", "value", "condition", "clear", "for", "clear_for", "interval", "severity",
    "labels", "summary", "metric", "services", "stacks", "window", "granularity", "function",
    "numerator", "where", "type", "op", "reference", "mode", "duration", "method", "status",
    "sensitivity", "trigger_window", "season", "on_nodata", "routes", "bogus",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["5m", "1h", "0s", "", ">", "<=", "5xx", "cdn", "threshold", "anomaly",
                     "nodata", "change", "ratio", "status_codes", "usage", "{{ value", "*"]),
    st.text(max_size=8),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["rule", "other"]), VALUES, max_size=2))
def test_any_document_gives_rules_or_problems(document):
    rules, problems = validate_document(Path("fuzz.toml"), "", document)
    for problem in problems:
        assert str(problem).startswith("fuzz.toml:")
    assert all(rule.rule.name for rule in rules)
