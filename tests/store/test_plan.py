"""Planning a scan against the store: new, changed, unchanged, moved, deleted, restored."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from playlista.records import FileStat
from playlista.store import Store
from tests.store.helpers import (
    MFCC,
    TABLES,
    audio_file,
    counts,
    library_paths,
    one,
    plan,
    rows,
    snapshot,
    track,
)

# -- planning ---------------------------------------------------------------------------


def test_everything_is_new_on_an_empty_database(store: Store, lib: Path) -> None:
    files = sorted([audio_file(lib / "x.mp3"), audio_file(lib / "y" / "z.flac")])
    p = plan(store, lib)
    assert sorted(s.path for s in p.to_analyze) == [str(f) for f in files]
    assert all(s == FileStat(s.path, *_stat(s.path)) for s in p.to_analyze)
    assert (p.moves, p.deleted, p.restored) == ([], [], [])
    assert p.counts == counts(files_seen=2, new=2)


def _stat(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def test_an_unchanged_library_plans_nothing_and_changes_no_row(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    before = snapshot(store)
    assert [len(before[t]) for t in TABLES] == [4, 3, 3, 6, 1]
    p = plan(store, lib)
    assert p.counts == counts(files_seen=4, unchanged=4)
    assert (p.to_analyze, p.moves, p.deleted, p.restored) == ([], [], [], [])
    store.apply_plan(p)
    assert snapshot(store) == before


def test_a_touched_or_resized_file_is_changed(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    touched, resized = analysed[0], analysed[1]
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    st = resized.stat()
    with resized.open("ab") as f:
        f.write(b"more")
    os.utime(resized, ns=(st.st_atime_ns, st.st_mtime_ns))  # only the size differs
    p = plan(store, lib)
    assert sorted(s.path for s in p.to_analyze) == sorted([str(touched), str(resized)])
    assert p.counts == counts(files_seen=4, changed=2, unchanged=2)
    assert (p.moves, p.deleted) == ([], [])


def test_a_renamed_file_moves_with_its_analysis(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    old = analysed[0]
    new = lib / "renamed" / "A.flac"
    new.parent.mkdir()
    identity = (
        "SELECT x.analyzed_at, f.first_seen_at, f.fingerprint "
        "FROM track_features AS x JOIN files AS f USING (path) WHERE path = ?"
    )
    before = one(store, identity, str(old))
    old.rename(new)
    p = plan(store, lib)
    size, mtime_ns = _stat(str(new))
    assert p.moves == [(str(old), FileStat(str(new), size, mtime_ns))]
    assert p.counts == counts(files_seen=4, moved=1, unchanged=3)
    assert (p.to_analyze, p.deleted) == ([], [])
    store.apply_plan(p)
    for table in TABLES:
        assert rows(store, f"SELECT * FROM {table} WHERE path = ?", str(old)) == []
    moved = one(
        store, "SELECT status, moved_from, size, mtime_ns FROM files WHERE path = ?", str(new)
    )
    assert moved == ("present", str(old), size, mtime_ns)
    assert one(store, identity, str(new)) == before
    assert one(store, "SELECT title, bpm, mfcc_mean FROM library WHERE path = ?", str(new)) == (
        "Song",
        128.0,
        MFCC,
    )
    assert len(library_paths(store)) == 3
    assert plan(store, lib).counts == counts(files_seen=4, unchanged=4)


def test_a_new_file_of_the_same_size_but_other_content_is_not_a_move(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    old = analysed[0]
    size = old.stat().st_size
    old.unlink()
    other = audio_file(lib / "other.flac", size, seed="different")
    p = plan(store, lib)
    assert p.moves == []
    assert [s.path for s in p.to_analyze] == [str(other)]
    assert p.deleted == [str(old)]
    assert p.counts == counts(files_seen=4, new=1, unchanged=3, deleted=1)


def test_two_identical_copies_moved_at_once_are_matched_one_to_one(store: Store, lib: Path) -> None:
    copies = [audio_file(lib / n, seed="same") for n in ("one.flac", "two.flac")]
    store.write_outcomes([track(c) for c in copies])
    targets = [lib / "moved" / n for n in ("uno.flac", "dos.flac")]
    targets[0].parent.mkdir()
    for c, t in zip(copies, targets, strict=True):
        c.rename(t)
    p = plan(store, lib)
    assert sorted(old for old, _ in p.moves) == sorted(str(c) for c in copies)
    assert sorted(new.path for _, new in p.moves) == sorted(str(t) for t in targets)
    assert p.counts == counts(files_seen=2, moved=2)
    assert (p.to_analyze, p.deleted) == ([], [])
    store.apply_plan(p)
    assert library_paths(store) == sorted(str(t) for t in targets)
    assert sorted(m for (m,) in rows(store, "SELECT moved_from FROM files")) == sorted(
        str(c) for c in copies
    )


def test_two_identical_copies_of_which_one_came_back_make_one_move_one_deletion(
    store: Store, lib: Path
) -> None:
    copies = [audio_file(lib / n, seed="same") for n in ("one.flac", "two.flac")]
    store.write_outcomes([track(c) for c in copies])
    copies[0].rename(lib / "uno.flac")
    copies[1].unlink()
    p = plan(store, lib)
    assert len(p.moves) == 1 and p.moves[0][1].path == str(lib / "uno.flac")
    assert sorted([p.moves[0][0], *p.deleted]) == sorted(str(c) for c in copies)
    assert p.counts == counts(files_seen=1, moved=1, deleted=1)


def test_a_moved_file_replaces_a_stale_row_at_its_new_path(store: Store, lib: Path) -> None:
    a = audio_file(lib / "a.flac")
    stale = audio_file(lib / "b.flac", 999)
    store.write_outcomes([track(a), track(stale, title="stale")])
    stale.unlink()
    store.apply_plan(plan(store, lib))  # b.flac is now a deleted row
    a.rename(stale)
    p = plan(store, lib)
    assert [(old, new.path) for old, new in p.moves] == [(str(a), str(stale))]
    store.apply_plan(p)
    assert rows(store, "SELECT path, title FROM library") == [(str(stale), "Song")]
    assert rows(store, "SELECT path, status FROM files") == [(str(stale), "present")]


def test_a_deleted_file_keeps_its_rows_but_leaves_the_library(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    gone = analysed[1]
    gone.unlink()
    p = plan(store, lib)
    assert p.deleted == [str(gone)]
    assert p.counts == counts(files_seen=3, unchanged=3, deleted=1)
    store.apply_plan(p)
    status, deleted_at = one(
        store, "SELECT status, deleted_at FROM files WHERE path = ?", str(gone)
    )
    assert status == "deleted"
    assert abs(deleted_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert rows(store, "SELECT title FROM track_tags WHERE path = ?", str(gone)) == [("Song",)]
    assert rows(store, "SELECT count(*) FROM track_features") == [(3,)]
    assert str(gone) not in library_paths(store)
    assert len(library_paths(store)) == 2
    # Deleted once is enough: the next scan does not report it again.
    assert plan(store, lib).counts == counts(files_seen=3, unchanged=3)


def delete_and_bring_back(store: Store, lib: Path, path: Path) -> Path:
    """Delete ``path``, let a scan mark it deleted, then put it back byte- and mtime-equal."""
    data, st = path.read_bytes(), path.stat()
    path.unlink()
    store.apply_plan(plan(store, lib))
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return path


def test_a_deleted_file_that_comes_back_unchanged_is_restored(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    back = delete_and_bring_back(store, lib, analysed[1])
    p = plan(store, lib)
    assert p.restored == [str(back)]
    assert p.counts == counts(files_seen=4, unchanged=4)
    assert (p.to_analyze, p.moves, p.deleted) == ([], [], [])
    store.apply_plan(p)
    assert one(store, "SELECT status, deleted_at FROM files WHERE path = ?", str(back)) == (
        "present",
        None,
    )
    assert str(back) in library_paths(store)


def test_a_deleted_file_that_comes_back_changed_is_new(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    back = analysed[1]
    back.unlink()
    store.apply_plan(plan(store, lib))
    audio_file(back, 5000)
    p = plan(store, lib)
    assert [s.path for s in p.to_analyze] == [str(back)]
    assert p.restored == []
    assert p.counts == counts(files_seen=4, new=1, unchanged=3)


def test_only_the_scanned_roots_can_lose_files(store: Store, tmp_path: Path) -> None:
    # "music2" shares a prefix with "music": scoping must be by folder, not by string.
    a_root, b_root = tmp_path / "music", tmp_path / "music2"
    a = [audio_file(a_root / "a1.flac"), audio_file(a_root / "sub" / "a2.flac")]
    b = [audio_file(b_root / "b1.flac")]
    store.write_outcomes([track(f) for f in a + b])
    a[0].unlink()
    p = plan(store, b_root)
    assert p.counts == counts(files_seen=1, unchanged=1)
    assert p.deleted == []
    store.apply_plan(p)
    assert rows(store, "SELECT count(*) FROM files WHERE status = 'present'") == [(3,)]
    p = plan(store, a_root)
    assert p.deleted == [str(a[0])]
    assert p.counts == counts(files_seen=1, unchanged=1, deleted=1)


@pytest.mark.fault("the library root is /")
def test_files_gone_under_the_root_folder_are_marked_deleted(store: Store, lib: Path) -> None:
    a, b = audio_file(lib / "a.flac"), audio_file(lib / "b.flac")
    store.write_outcomes([track(a), track(b)])
    a.unlink()
    scan = [FileStat(str(b), *_stat(str(b)))]
    p = store.plan(scan, roots=["/"], analyzer_version=1, musicnn_version=1, musicnn_models=2)
    assert p.deleted == [str(a)]
    assert p.counts == counts(files_seen=1, unchanged=1, deleted=1)


@pytest.mark.fault("a file name that cannot be stored")
def test_a_name_that_cannot_be_stored_is_recorded_once_and_forgotten_when_renamed(
    store: Store, lib: Path
) -> None:
    audio_file(lib / "good.flac")
    bad = os.path.join(os.fsencode(lib), b"caf\xe9.mp3")
    with open(bad, "wb") as f:
        f.write(b"x" * 100)
    shown = str(lib / "caf\\xe9.mp3")
    for run in range(3):
        p = plan(store, lib)
        store.apply_plan(p)
        store.write_outcomes(p.unstorable)
        assert len(p.unstorable) == (1 if run == 0 else 0)  # the run's `failed` count
    assert rows(store, "SELECT path, error_class, attempts FROM failures") == [
        (shown, "invalid_name", 1)
    ]
    os.rename(bad, os.fsencode(lib / "cafe.mp3"))
    p = plan(store, lib)
    store.apply_plan(p)
    assert rows(store, "SELECT count(*) FROM failures") == [(0,)]


def test_a_non_utf8_file_name_does_not_stop_planning(store: Store, lib: Path) -> None:
    good = audio_file(lib / "good.flac")
    with open(os.path.join(os.fsencode(lib), b"caf\xe9.mp3"), "wb") as f:
        f.write(b"x" * 100)
    p = plan(store, lib)
    assert [s.path for s in p.to_analyze] == [str(good)]
    assert p.skipped == [str(lib / "caf\\xe9.mp3")]


def test_duplicate_paths_in_a_scan_are_seen_once(store: Store, lib: Path) -> None:
    a = audio_file(lib / "a.flac")
    stat = FileStat(str(a), *_stat(str(a)))
    p = store.plan(
        [stat, stat], roots=[str(lib)], analyzer_version=1, musicnn_version=1, musicnn_models=2
    )
    assert p.to_analyze == [stat]
    assert p.counts == counts(files_seen=1, new=1)
