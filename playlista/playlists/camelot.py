"""The Camelot wheel: ``1A`` to ``12A`` minor keys, ``1B`` to ``12B`` major keys."""

from __future__ import annotations

import re

_CODE = re.compile(r"^(1[0-2]|[1-9])([AB])$")

# Wheel order for display: 1..12 clockwise, each number's minor (A) and major (B) key.
WHEEL: tuple[str, ...] = tuple(f"{n}{letter}" for n in range(1, 13) for letter in "AB")


def parse(code: str | None) -> tuple[int, str] | None:
    """``"8A"`` -> ``(8, "A")``; None for anything that is not a Camelot code."""
    match = _CODE.match(code or "")
    return (int(match.group(1)), match.group(2)) if match else None


def distance(a: str | None, b: str | None) -> int | None:
    """Steps on the wheel between two keys: 0 same key, 1 a mixing neighbour, up to 7."""
    pa, pb = parse(a), parse(b)
    if pa is None or pb is None:
        return None
    around = abs(pa[0] - pb[0]) % 12
    return min(around, 12 - around) + (pa[1] != pb[1])


def compatible(a: str | None, b: str | None) -> bool:
    """Same key, ±1 on the same ring, or the relative major/minor (same number)."""
    d = distance(a, b)
    if d is None:
        return False
    pa, pb = parse(a), parse(b)
    assert pa is not None and pb is not None
    return d == 0 or (d == 1 and (pa[1] == pb[1] or pa[0] == pb[0]))
