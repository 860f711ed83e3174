"""Filters over ``library`` that a person types (``--where``, a YAML ``where:``), made safe.

A filter is never pasted into SQL. It is parsed into a small expression: whitelisted
``library`` columns, comparisons, ``BETWEEN``, ``IN``, ``LIKE``, ``IS [NOT] NULL``, ``AND``,
``OR``, ``NOT`` and parentheses, with string and number literals. The SQL is then written from
that tree, every literal bound as a parameter. Anything else (a semicolon, a comment, a
function call, a subquery, an unknown column, a quoted identifier) is a :class:`FilterError`.

The pseudo-column ``tag`` matches the track's top MusiCNN tags (``library.top_tags``):
``tag = 'rock'``, ``tag IN ('rock', 'metal')``, ``NOT tag = 'male vocalists'``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from playlista.errors import FilterError

# The scalar columns of the `library` view a filter may name.
COLUMNS: frozenset[str] = frozenset(
    {
        "path",
        "title",
        "artist",
        "album",
        "albumartist",
        "genre",
        "year",
        "track_no",
        "track_total",
        "disc_no",
        "disc_total",
        "duration_s",
        "codec",
        "bitrate",
        "sample_rate",
        "channels",
        "bpm",
        "bpm_confidence",
        "key",
        "mode",
        "key_strength",
        "camelot",
        "loudness_lufs",
        "loudness_range_lu",
        "true_peak_dbtp",
        "replaygain_track_gain_db",
        "replaygain_track_peak",
        "energy",
        "danceability",
        "spectral_centroid_hz",
        "spectral_rolloff_hz",
        "spectral_flatness",
        "spectral_bandwidth_hz",
        "zero_crossing_rate",
        "onset_rate",
        "decoder",
        "size",
    }
)
TAG = "tag"
_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN", "LIKE", "ILIKE", "IS", "NULL"}
_COMPARISONS = {"=", "!=", "<>", "<", "<=", ">", ">="}
_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
    r"|(?P<str>'(?:[^']|'')*')"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><=|>=|<>|!=|=|<|>)"
    r"|(?P<punct>[(),]))"
)
_MAX_LENGTH = 2000


@dataclass
class Filter:
    """A parsed filter: SQL over ``library`` and the parameters it binds."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


def parse_filter(text: str) -> Filter:
    """Parse ``text`` into a :class:`Filter`, or raise :class:`FilterError` saying why."""
    if not text or not text.strip():
        raise FilterError(text, "the filter is empty")
    if len(text) > _MAX_LENGTH:
        raise FilterError(text[:80], f"a filter is at most {_MAX_LENGTH} characters")
    parser = _Parser(text, _tokens(text))
    sql = parser.expression()
    if parser.peek() is not None:
        raise FilterError(text, f"unexpected {parser.peek()[1]!r}")  # type: ignore[index]
    return Filter(sql, parser.params)


def order_clause(order_by: str | None, *, table: str = "library") -> str:
    """``ORDER BY`` for ``"bpm"`` or ``"loudness_lufs desc"``: one whitelisted column of
    ``table`` (an alias the caller chose, not input), then the path."""
    if not order_by:
        return f"ORDER BY {table}.path"
    parts = order_by.split()
    column = parts[0].lower()
    direction = parts[1].upper() if len(parts) == 2 else "ASC"
    if column not in COLUMNS or len(parts) > 2 or direction not in ("ASC", "DESC"):
        raise FilterError(order_by, "order_by is one library column, optionally ASC or DESC")
    return f'ORDER BY {table}."{column}" {direction} NULLS LAST, {table}.path'


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(text, f"cannot read the filter from {text[pos:].strip()[:20]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over the grammar in the module docstring."""

    def __init__(self, text: str, tokens: list[tuple[str, str]]) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = 0
        self.params: dict[str, Any] = {}

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() in words:
            self.pos += 1
            return token[1].upper()
        return None

    def punct(self, char: str) -> bool:
        token = self.peek()
        if token and token[1] == char and token[0] in ("punct", "op"):
            self.pos += 1
            return True
        return False

    def fail(self, why: str) -> FilterError:
        return FilterError(self.text, why)

    def expression(self) -> str:
        parts = [self.conjunction()]
        while self.keyword("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def conjunction(self) -> str:
        parts = [self.negation()]
        while self.keyword("AND"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def negation(self) -> str:
        if self.keyword("NOT"):
            return f"(NOT {self.negation()})"
        if self.punct("("):
            inner = self.expression()
            if not self.punct(")"):
                raise self.fail("a '(' is not closed")
            return inner
        return self.predicate()

    def predicate(self) -> str:
        token = self.peek()
        if token is None:
            raise self.fail("the filter ends too early")
        kind, value = token
        if kind != "word" or value.upper() in _KEYWORDS:
            raise self.fail(f"expected a column name, found {value!r}")
        name = value.lower()
        if name != TAG and name not in COLUMNS:
            raise self.fail(f"{value!r} is not a library column one can filter on")
        self.pos += 1
        if name == TAG:
            return self.tag_predicate()
        column = f'"{name}"'
        if self.keyword("IS"):
            negated = self.keyword("NOT")
            if not self.keyword("NULL"):
                raise self.fail("IS is followed by NULL or NOT NULL")
            return f"({column} IS {'NOT ' if negated else ''}NULL)"
        negated = "NOT " if self.keyword("NOT") else ""
        if self.keyword("BETWEEN"):
            low = self.literal()
            if not self.keyword("AND"):
                raise self.fail("BETWEEN needs AND")
            return f"({column} {negated}BETWEEN {low} AND {self.literal()})"
        if self.keyword("IN"):
            return f"({column} {negated}IN ({', '.join(self.literal_list())}))"
        if like := self.keyword("LIKE", "ILIKE"):
            return f"({column} {negated}{like} {self.literal(kind='str')})"
        if negated:
            raise self.fail("NOT after a column is followed by BETWEEN, IN or LIKE")
        token = self.peek()
        if token is None or token[1] not in _COMPARISONS:
            raise self.fail(f"expected a comparison after {value!r}")
        self.pos += 1
        return f"({column} {token[1]} {self.literal()})"

    def tag_predicate(self) -> str:
        if self.punct("="):
            return f"list_contains(top_tags, {self.literal(kind='str')})"
        if self.punct("!=") or self.punct("<>"):
            return f"(NOT coalesce(list_contains(top_tags, {self.literal(kind='str')}), false))"
        negated = self.keyword("NOT")
        if self.keyword("IN"):
            tags = ", ".join(self.literal_list(kind="str"))
            test = f"list_has_any(top_tags, [{tags}])"
            return f"(NOT coalesce({test}, false))" if negated else test
        raise self.fail("tag is compared with =, != or IN")

    def literal_list(self, kind: str | None = None) -> list[str]:
        if not self.punct("("):
            raise self.fail("IN is followed by a list in parentheses")
        values = [self.literal(kind=kind)]
        while self.punct(","):
            values.append(self.literal(kind=kind))
        if not self.punct(")"):
            raise self.fail("the IN list is not closed")
        return values

    def literal(self, *, kind: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] not in ("num", "str") or (kind and token[0] != kind):
            found = token[1] if token else "the end"
            raise self.fail(f"expected a {'string' if kind == 'str' else 'value'}, found {found!r}")
        self.pos += 1
        name = f"p{len(self.params)}"
        if token[0] == "str":
            self.params[name] = token[1][1:-1].replace("''", "'")
        else:
            number = float(token[1])
            whole = number.is_integer() and not any(c in token[1] for c in ".eE")
            self.params[name] = int(number) if whole else number
        return f"${name}"
