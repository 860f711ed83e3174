"""MusiCNN rows in the store: tag scores and embeddings, their views, and their own version."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from playlista.models.frontend import LABELS
from playlista.store import Store
from tests.store.helpers import (
    T0,
    audio_file,
    counts,
    failure,
    one,
    plan,
    refreshed,
    rows,
    snapshot,
    track,
)


def test_scores_and_embeddings_are_stored_per_track_and_model(store: Store, lib: Path) -> None:
    a = audio_file(lib / "a.flac")
    store.write_outcomes([track(a, direction=(0.5, -0.25))])
    stored = rows(
        store,
        "SELECT model, scores, embedding[1:3], patches, musicnn_version FROM track_musicnn "
        "ORDER BY model",
    )
    assert [r[0] for r in stored] == ["MSD_musicnn", "MTT_musicnn"]
    for _, scores, head, patches, version in stored:
        assert list(scores) == [i / 64 for i in range(50)]
        assert head == [0.5, -0.25, 0.0] and (patches, version) == (8, 1)


def test_tag_scores_view_names_every_score_by_its_models_label(store: Store, lib: Path) -> None:
    a = audio_file(lib / "a.flac")
    store.write_outcomes([track(a)])
    named = rows(store, "SELECT model, tag, score FROM track_tag_scores WHERE path = ?", str(a))
    assert len(named) == 100
    for model, tag, score in named:
        assert score == LABELS[model].index(tag) / 64


def test_top_tags_are_the_five_best_of_either_model(store: Store, lib: Path) -> None:
    a = audio_file(lib / "a.flac")
    store.write_outcomes([track(a)])
    # Label i scores i/64 in both models: the last labels of each, ties broken by name.
    (top,) = one(store, "SELECT top_tags FROM library")
    assert top == ["choral", "happy", "House", "female voice", "metal"]


def test_similar_tracks_ranks_by_cosine_and_leaves_out_the_seed(store: Store, lib: Path) -> None:
    a, b, c, d = (audio_file(lib / f"{n}.flac") for n in "abcd")
    store.write_outcomes(
        [
            track(a, direction=(1.0, 0.0)),
            track(b, direction=(0.8, 0.6)),
            track(c, direction=(0.0, 1.0)),
            track(d, direction=(-1.0, 0.0)),
        ]
    )
    ranked = store.similar(str(a), n=10, model="MSD_musicnn")
    assert [(os.path.basename(p), round(s, 6)) for p, _, _, s in ranked] == [
        ("b.flac", 0.8),
        ("c.flac", 0.0),
        ("d.flac", -1.0),
    ]
    assert [p for p, *_ in store.similar(str(a), n=1, model="MTT_musicnn")] == [str(b)]
    with pytest.raises(LookupError, match="has no MSD_musicnn embedding"):
        store.similar(str(lib / "nope.flac"), n=3, model="MSD_musicnn")


def test_a_musicnn_version_bump_plans_a_refresh_of_musicnn_alone(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    p = plan(store, lib, musicnn_version=2)
    assert p.counts == counts(files_seen=4, unchanged=4, refreshed=3)
    assert sorted(s.path for s in p.to_refresh) == sorted(map(str, analysed[:3]))
    assert p.to_analyze == []  # the permanent failure is not retried either


def test_a_track_stored_without_musicnn_is_refreshed(store: Store, lib: Path) -> None:
    a = audio_file(lib / "a.flac")
    store.apply_plan(plan(store, lib))
    bare = track(a)
    store.write_outcomes([type(bare)(**{**_fields(bare), "musicnn": (), "musicnn_version": None})])
    assert [s.path for s in plan(store, lib).to_refresh] == [str(a)]


def test_a_refresh_writes_musicnn_rows_and_nothing_else(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    before = snapshot(store)
    later = T0.replace(year=2025)
    assert store.write_outcomes([refreshed(p, analyzed_at=later) for p in analysed[:3]]) == (0, 0)
    after = snapshot(store)
    for table in ("files", "track_tags", "track_features", "failures"):
        assert after[table] == before[table], table
    versions = rows(store, "SELECT DISTINCT musicnn_version, analyzed_at FROM track_musicnn")
    assert versions == [(2, later)]
    assert plan(store, lib, musicnn_version=2).to_refresh == []


def test_musicnn_rows_move_with_their_file_and_go_when_it_changes_and_fails(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    a = analysed[0]
    moved = a.with_name("renamed.flac")
    a.rename(moved)
    store.apply_plan(plan(store, lib))
    assert {p for (p,) in rows(store, "SELECT DISTINCT path FROM track_musicnn")} == {
        str(moved),
        *map(str, analysed[1:3]),
    }
    store.write_outcomes([failure(moved)])  # the same content: its analysis stays
    assert rows(store, "SELECT count(*) FROM track_musicnn WHERE path = ?", str(moved)) == [(2,)]
    audio_file(moved, 9000, seed="rewritten")
    store.write_outcomes([failure(moved)])
    assert rows(store, "SELECT count(*) FROM track_musicnn WHERE path = ?", str(moved)) == [(0,)]


def _fields(record: object) -> dict[str, object]:
    return {name: getattr(record, name) for name in record.__slots__}  # type: ignore[attr-defined]
