import pytest

from agent.evaluate.series import expand


@pytest.mark.parametrize(
    "notation,expected",
    [
        ("1 2 3", [1, 2, 3]),
        ("0+10x3", [0, 10, 20, 30]),
        ("50-5x2", [50, 45, 40]),
        ("7x2", [7, 7, 7]),
        ("1 _ 3", [1, None, 3]),
        ("_x2 4", [None, None, 4]),
        ("1.5+0.5x1", [1.5, 2.0]),
    ],
)
def test_notation(notation, expected):
    assert expand(notation) == expected


def test_lists_pass_through_with_missing_points():
    assert expand([1, None, 2.5]) == [1.0, None, 2.5]


@pytest.mark.parametrize("bad", ["1+x3", "abc", "3x", "1,2"])
def test_bad_tokens_are_named(bad):
    with pytest.raises(ValueError, match="cannot read series token"):
        expand(bad)
