"""Every SQL example in the README runs against a really analysed corpus and returns rows."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
QUERIES = re.findall(r"```sql\n(.*?)```", README.read_text(), flags=re.S)

pytestmark = pytest.mark.slow


def test_readme_has_sql_examples():
    assert len(QUERIES) >= 3


@pytest.mark.parametrize("query", QUERIES, ids=[q.split("\n")[0][:40] for q in QUERIES])
def test_readme_query_runs_and_returns_rows(analysed_corpus, query):
    with duckdb.connect(str(analysed_corpus["db"]), read_only=True) as con:
        result = con.execute(query).fetchall()
    assert result, query


def test_minor_key_tempo_query_filters_what_it_says(analysed_corpus):
    with duckdb.connect(str(analysed_corpus["db"]), read_only=True) as con:
        rows = con.execute(QUERIES[0]).fetchall()
    assert all(120 <= bpm <= 145 and camelot.endswith("A") for _t, _a, bpm, camelot, _l in rows)
    assert [r[4] for r in rows] == sorted((r[4] for r in rows), reverse=True)
