"""Planning what is analysed again: permanent and transient failures, ``--retry-failed``, a
new analyser version, a full rescan, and what a failed re-analysis or refresh keeps."""

from __future__ import annotations

from pathlib import Path

from playlista.store import Store
from tests.store.helpers import (
    audio_file,
    counts,
    failure,
    library_paths,
    plan,
    refreshed,
    rows,
    track,
)
from tests.store.test_plan import delete_and_bring_back


def test_a_permanent_failure_is_not_retried_until_the_file_changes(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    broken = analysed[3]
    p = plan(store, lib)
    assert p.to_analyze == []
    assert p.counts["unchanged"] == 4
    with broken.open("ab") as f:
        f.write(b"fixed")
    p = plan(store, lib)
    assert [s.path for s in p.to_analyze] == [str(broken)]
    assert p.counts == counts(files_seen=4, changed=1, unchanged=3)


def test_a_transient_failure_is_retried(store: Store, lib: Path, analysed: list[Path]) -> None:
    flaky = analysed[0]
    store.write_outcomes([failure(flaky, retryable=True, error_class="io_error")])
    p = plan(store, lib)
    assert [s.path for s in p.to_analyze] == [str(flaky)]
    assert p.counts == counts(files_seen=4, retried=1, unchanged=3)


def test_retry_failed_plans_permanent_failures_again(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    broken = analysed[3]
    p = plan(store, lib, retry_failed=True)
    assert [s.path for s in p.to_analyze] == [str(broken)]
    assert p.counts == counts(files_seen=4, retried=1, unchanged=3)


def test_a_new_analyzer_version_plans_analysed_files_again(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    p = plan(store, lib, version=2)
    assert sorted(s.path for s in p.to_analyze) == sorted(str(f) for f in analysed[:3])
    # The permanent failure has no analysis to be stale; it waits for a change.
    assert p.counts == counts(files_seen=4, outdated=3, unchanged=1)
    store.write_outcomes([track(f, version=2) for f in analysed[:3]])
    assert plan(store, lib, version=2).counts == counts(files_seen=4, unchanged=4)


def test_full_rescan_plans_every_file(store: Store, lib: Path, analysed: list[Path]) -> None:
    extra = audio_file(lib / "new.wav")
    analysed[1].unlink()
    p = plan(store, lib, full_rescan=True)
    expected = [analysed[0], analysed[2], analysed[3], extra]
    assert sorted(s.path for s in p.to_analyze) == sorted(str(f) for f in expected)
    assert p.deleted == [str(analysed[1])]
    assert p.counts == counts(files_seen=4, new=1, unchanged=3, deleted=1)


def test_full_rescan_with_a_file_that_came_back(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    delete_and_bring_back(store, lib, analysed[1])
    p = plan(store, lib, full_rescan=True)
    assert sorted(s.path for s in p.to_analyze) == sorted(str(f) for f in analysed)
    assert p.counts["files_seen"] == 4
    assert sum(p.counts[k] for k in ("new", "changed", "unchanged", "retried", "outdated")) == 4


def test_a_kept_analysis_with_a_permanent_failure_stays_and_is_not_planned_every_run(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    # A new analyser version: one unchanged file now times out. Its old analysis stays in
    # the library, and the next runs leave it alone until it changes or --retry-failed.
    hung, broken = analysed[0], analysed[3]
    assert str(hung) in [s.path for s in plan(store, lib, version=2).to_analyze]
    store.write_outcomes(
        [failure(hung, error_class="timeout"), *(track(f, version=2) for f in analysed[1:3])]
    )
    assert str(hung) in library_paths(store)
    for _ in range(2):
        p = plan(store, lib, version=2)
        assert (p.to_analyze, p.to_refresh) == ([], [])
        assert p.counts == counts(files_seen=4, unchanged=4)
    p = plan(store, lib, version=2, retry_failed=True)
    assert sorted(s.path for s in p.to_analyze) == sorted([str(hung), str(broken)])
    assert p.counts == counts(files_seen=4, retried=2, unchanged=2)


def test_a_refresh_that_failed_permanently_keeps_the_track_and_is_not_refreshed_again(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    hung = analysed[0]
    assert len(plan(store, lib, musicnn_version=2).to_refresh) == 3
    store.write_outcomes(
        [failure(hung, error_class="timeout"), *(refreshed(f) for f in analysed[1:3])]
    )
    assert str(hung) in library_paths(store)
    assert rows(store, "SELECT count(*) FROM track_musicnn WHERE path = ?", str(hung)) == [(2,)]
    p = plan(store, lib, musicnn_version=2)
    assert (p.to_analyze, p.to_refresh) == ([], [])
    assert p.counts == counts(files_seen=4, unchanged=4)
    again = plan(store, lib, musicnn_version=2, retry_failed=True)
    assert [s.path for s in again.to_refresh] == [str(hung)]  # MusiCNN alone, as before
    assert [s.path for s in again.to_analyze] == [str(analysed[3])]


def test_a_refresh_that_failed_transiently_is_retried_as_a_refresh(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    flaky = analysed[0]
    store.write_outcomes([failure(flaky, retryable=True, error_class="io_error")])
    p = plan(store, lib, musicnn_version=2)
    assert p.to_analyze == []
    assert sorted(s.path for s in p.to_refresh) == sorted(str(f) for f in analysed[:3])
    assert p.counts == counts(files_seen=4, retried=1, unchanged=3, refreshed=2)
