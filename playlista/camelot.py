"""The Camelot wheel: ``1A`` to ``12A`` minor keys, ``1B`` to ``12B`` major keys.

DJs mix keys by it: a key and its neighbours on the wheel sound well together.
"""

from __future__ import annotations

import re

from playlista.errors import InvalidInputError

_CODE = re.compile(r"^(1[0-2]|[1-9])([AB])$")

# Wheel order for display: 1..12 clockwise, each number's minor (A) and major (B) key.
WHEEL: tuple[str, ...] = tuple(f"{n}{letter}" for n in range(1, 13) for letter in "AB")
_PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


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


def code(*, key: str, mode: str) -> str:
    """Camelot wheel code of a key: C major is '8B', A minor is '8A'.

    ``key`` is a letter A-G followed by any number of '#' or 'b' (so 'C#' and 'Db' agree);
    ``mode`` is 'major' or 'minor'.
    """
    if not key or key[0].upper() not in _PITCH_CLASSES or set(key[1:]) - {"#", "b"}:
        raise InvalidInputError(f"not a key name: {key!r}")
    if mode not in ("major", "minor"):
        raise InvalidInputError(f"mode must be 'major' or 'minor', got {mode!r}")
    pitch_class = _PITCH_CLASSES[key[0].upper()] + key.count("#") - key.count("b")
    # A minor key shares its number with its relative major, three semitones up.
    major_pitch_class = pitch_class + 3 if mode == "minor" else pitch_class
    # One hour clockwise is a fifth (7 semitones) up; C major sits at 8 o'clock.
    hour = (7 * major_pitch_class + 7) % 12 + 1
    return f"{hour}{'A' if mode == 'minor' else 'B'}"
