"""Choosing between the two decoders on damaged files of the corpus, decoded for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from playlista.audio.decode import decode, read_native


def test_a_reading_far_short_of_the_container_is_replaced_by_the_longer_one(corpus: Path):
    # FFmpeg stops at the zeroed pages, half-way; libsndfile reads past them to the end.
    path = str(corpus / "damaged/zeroed_64k_middle.ogg")
    decoded = decode(path)
    assert decoded.decoder == "soundfile"
    assert decoded.seconds == pytest.approx(205.2, abs=0.1)
    y, sr = read_native(path)
    assert y.shape[1] / sr == pytest.approx(decoded.seconds, abs=1e-6)


@pytest.mark.parametrize("name", ["truncated_30pct.flac", "truncated_40pct.m4a"])
def test_a_truncated_file_only_ffmpeg_reads_keeps_its_short_reading(corpus: Path, name: str):
    path = str(corpus / "damaged" / name)
    decoded = decode(path)
    assert decoded.decoder == "ffmpeg"
    y, sr = read_native(path)
    assert y.shape[1] / sr == pytest.approx(decoded.seconds, abs=1e-6)
