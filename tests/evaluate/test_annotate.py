"""Templates that only print names are rendered without Jinja's machinery: the text must
be Jinja's, whatever the template and the values."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.evaluate.annotate import _environment, render

CONTEXT_VALUES = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**15), 10**15),
    st.text(max_size=8),
    st.sampled_from([timedelta(minutes=5), {"stack": "blt1"}, "firing"]),
)
PIECES = st.one_of(
    st.text(alphabet="ab {}%#-\n\r\t|:", max_size=6),
    st.sampled_from(
        [
            "{{ value }}",
            "{{value|human}}",
            "{{ value | pct }}",
            "{{ window | duration }}",
            "{{ state }}",
            "{{ missing }}",
            "{{ value | upper }}",
            "{{ labels.stack }}",
            "{{- value -}}",
            "{{ range }}",
            "{% if value %}x{% endif %}",
            "{# note #}",
            "{{ value | human(2) }}",
            "\n",
        ]
    ),
)


def by_jinja(source: str, context: dict[str, Any]) -> str:
    from jinja2 import TemplateError

    try:
        return str(_environment().from_string(source).render(**context))
    except TemplateError as error:
        return f"{source} [template error: {error}]"
    except Exception as error:  # the same error must come out of render
        return f"raised {type(error).__name__}"


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(PIECES, max_size=6),
    values=st.fixed_dictionaries(
        {"value": CONTEXT_VALUES, "state": CONTEXT_VALUES, "window": CONTEXT_VALUES}
    ),
)
def test_a_template_renders_as_jinja_renders_it(pieces: list[str], values: dict[str, Any]):
    source = "".join(pieces)
    context = {**values, "labels": {"stack": "blt1"}}
    expected = by_jinja(source, context)
    try:
        got = render(source, context)
    except Exception as error:
        got = f"raised {type(error).__name__}"
    assert got == (expected if source else "")
