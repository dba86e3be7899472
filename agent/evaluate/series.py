"""Compact series notation for rule tests, in the spirit of promtool.

``"1 2 3"`` are three values; ``"_"`` is a missing point; ``"a+bxn"`` expands to
``a, a+b, …, a+n·b`` (n+1 values); ``"a-bxn"`` counts down; ``"axn"`` repeats
``a`` n+1 times; ``"_xn"`` is n missing points.
"""

from __future__ import annotations

import re

_EXPANDING = re.compile(r"^(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)(?:([+-])(\d+(?:\.\d+)?))?x(\d+)$")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:e[+-]?\d+)?$")


def expand(notation: str | list[float | int | None]) -> list[float | None]:
    """Values (None = missing) from a notation string or a plain list."""
    if isinstance(notation, list):
        values: list[float | None] = []
        for item in notation:
            if item is not None and not isinstance(item, int | float):
                raise ValueError(f"series values must be numbers, got {item!r}")
            values.append(None if item is None else float(item))
        return values
    result: list[float | None] = []
    for token in notation.split():
        if token == "_":
            result.append(None)
        elif token.startswith("_x") and token[2:].isdigit():
            result.extend([None] * int(token[2:]))
        elif _NUMBER.match(token):
            result.append(float(token))
        else:
            match = _EXPANDING.match(token)
            if match is None:
                raise ValueError(
                    f"cannot read series token {token!r}; use e.g. '5', '_', '0+10x30', '7x5'"
                )
            start, sign, step, times = match.groups()
            delta = float(step or 0) * (-1 if sign == "-" else 1)
            result.extend(float(start) + delta * i for i in range(int(times) + 1))
    return result
