"""Fixtures of the store tests: a fresh database, a music folder, a library analysed once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from playlista.store import Store
from tests.store.helpers import (
    audio_file,
    counts,
    failure,
    plan,
    track,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "db" / "playlista.duckdb") as s:
        yield s


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    root.mkdir()
    return root


@pytest.fixture
def analysed(store: Store, lib: Path) -> list[Path]:
    """Three analysed files and one permanent failure, written and planned once."""
    files = [audio_file(lib / "a.flac"), audio_file(lib / "b.mp3"), audio_file(lib / "c" / "d.ogg")]
    broken = audio_file(lib / "broken.mp3", 100)
    first = plan(store, lib)
    assert first.counts == counts(files_seen=4, new=4)
    store.apply_plan(first)
    assert store.write_outcomes([*(track(f) for f in files), failure(broken)]) == (3, 1)
    return [*files, broken]
