"""Every SQL example in the README runs against a really analysed corpus, and what it returns
is checked against the corpus manifest."""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from playlista.models.frontend import LABELS

README = Path(__file__).resolve().parents[1] / "README.md"
QUERIES = re.findall(r"```sql\n(.*?)```", README.read_text(), flags=re.S)

pytestmark = pytest.mark.slow

TEMPO_RATIOS = (1.0, 2.0, 0.5, 2 / 3, 3 / 2)  # the metrical levels MANIFEST.md accepts
CAMELOT = {"G major": "9B", "G minor": "6A", "C major": "8B", "E major": "12B"}
SEED = "good/fof/war_of_freedom_full.ogg"
# The files MANIFEST.md calls one song: the full mix, its backing track, and one minute of it
# in six containers; and the damaged copies made from that minute.
WAR_OF_FREEDOM = {
    SEED,
    "good/fof/war_of_freedom_backing.ogg",
    *(f"good/formats/war_of_freedom_60s.{ext}" for ext in ("aiff", "flac", "m4a", "mp3", "ogg")),
    "good/formats/war_of_freedom_60s.opus",
}
# A damaged file's `derived_from`, by file name, as the corpus file it was made from.
DERIVED = {
    "war_of_freedom_60s.m4a": "good/formats/war_of_freedom_60s.m4a",
    "wesnoth__elvish-theme.ogg": "good/games/wesnoth_elvish_theme.ogg",
    "openttd__boogi_marabi_redfarn.flac": "good/rendered/boogi_marabi.flac",
}


def test_readme_has_sql_examples():
    assert len(QUERIES) == len(CHECKS)


class Corpus:
    """What the manifest says about the analysed corpus, by path relative to it."""

    def __init__(self, manifest: dict[str, dict[str, Any]], library: Path) -> None:
        self.manifest = manifest
        self.library = library
        self.analysed = {f for f in manifest if f.split("/")[0] in ("good", "damaged")}
        self.bad = {f for f in manifest if f.startswith("bad/")}

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.library)

    def source(self, name: str) -> str:
        """The good file a damaged one was made from; itself for the others."""
        derived = self.manifest[name].get("derived_from")
        return DERIVED.get(Path(derived).name, name) if derived else name

    def song(self, name: str) -> str:
        source = self.source(name)
        return "war of freedom" if source in WAR_OF_FREEDOM else source

    def tags(self, name: str) -> dict[str, str]:
        """The tags the manifest knows the file to carry (written, or read), or none."""
        entry = self.manifest[self.source(name)]
        return (entry.get("ground_truth") or {}).get("tags_written") or entry.get("tags") or {}

    def genre(self, name: str) -> str | None:
        return self.tags(name).get("genre")

    def tempo(self, name: str) -> float | None:
        return (self.manifest[self.source(name)].get("ground_truth") or {}).get("tempo_bpm")

    def titled(self) -> dict[tuple[str | None, str | None], set[float | None]]:
        """(title, artist) of every analysed file with a title tag -> their true tempos."""
        found: dict[tuple[str | None, str | None], set[float | None]] = {}
        for name in self.analysed:
            tags = self.tags(name)
            if "title" in tags:
                found.setdefault((tags["title"], tags.get("artist")), set()).add(self.tempo(name))
        return found


def at_a_metrical_level(bpm: float, truth: float) -> bool:
    return any(abs(bpm / (truth * r) - 1) <= 0.04 for r in TEMPO_RATIOS)


def known_titles(c: Corpus, rows: list[tuple[Any, ...]], *, bpm_at: int) -> int:
    """Each row of a (title, artist) the manifest knows has a tempo at one of the metrical
    levels of that song's true tempo, where it has one; how many rows it knows."""
    titled = c.titled()
    known = [row for row in rows if (row[0], row[1]) in titled]
    for row in known:
        truths = {t for t in titled[row[0], row[1]] if t}
        assert not truths or any(at_a_metrical_level(row[bpm_at], t) for t in truths), row
    return len(known)


def check_minor_tempo(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    assert all(120 <= bpm <= 145 and camelot.endswith("A") for _t, _a, bpm, camelot, _l in rows)
    assert [r[4] for r in rows] == sorted((r[4] for r in rows), reverse=True)
    assert known_titles(c, rows, bpm_at=2) > 0


def check_neighbours_of_11a(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    assert {camelot for _, camelot, _ in rows} <= {"10A", "11A", "12A", "11B"}
    names = {c.rel(p) for p, _, _ in rows}
    assert names <= c.analysed
    keyed = {f for f in c.analysed if (c.manifest[f].get("ground_truth") or {}).get("key")}
    assert not names & keyed  # none of the four annotated keys is 11A or next to it


def check_similar(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    names = [c.rel(p) for p, _, _ in rows]
    scores = [s for _, _, s in rows]
    assert len(rows) == 10 and scores == sorted(scores, reverse=True)
    assert SEED not in names and set(names) <= c.analysed
    # The same song comes first: its backing track, its copies, and copies made of them.
    same = [n for n in names if c.song(n) == "war of freedom"]
    assert names[: len(same)] == same and len(same) >= 7, names


def check_metal(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    names = {c.rel(p) for p, _ in rows}
    assert names <= c.analysed and all(score > 0.3 for _, score in rows)
    # The good files the manifest tags Metal are heard as metal (a damaged copy, cut to 40 %,
    # need not be).
    tagged_metal = {f for f in c.analysed if f.startswith("good/") and c.genre(f) == "Metal"}
    assert tagged_metal and tagged_metal <= names


def check_harmonic_tempo(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    ((seed_bpm, seed_camelot),) = db.execute(
        "SELECT bpm, camelot FROM library WHERE path LIKE '%/' || ?", [SEED]
    ).fetchall()
    assert at_a_metrical_level(seed_bpm, c.tempo(SEED))
    names = {c.rel(p) for p, _, _, _ in rows}
    assert SEED not in names and names <= c.analysed
    assert all(abs(bpm - seed_bpm) <= 0.08 * seed_bpm + 0.5 for *_, bpm in rows)
    # Its own copies share its tempo and key: they are there.
    copies = {f for f in WAR_OF_FREEDOM - {SEED} if f.startswith("good/formats/")}
    copy_keys = dict(
        db.execute(
            "SELECT path, camelot FROM library WHERE path IN (SELECT unnest($p))",
            {"p": [str(c.library / f) for f in copies]},
        ).fetchall()
    )
    assert copies <= names or any(k != seed_camelot for k in copy_keys.values()), names


def check_top_tags(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    vocabulary = set(LABELS["MTT_musicnn"]) | set(LABELS["MSD_musicnn"])
    assert len(rows) == 15 and {tag for tag, _ in rows} <= vocabulary
    counts = [n for _, n in rows]
    assert counts == sorted(counts, reverse=True) and max(counts) <= len(c.analysed)


def check_camelot(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    assert sum(n for *_, n in rows) <= len(c.analysed)
    found = {(camelot, f"{key} {mode}") for camelot, key, mode, _ in rows}
    for name in c.analysed:
        key = (c.manifest[name].get("ground_truth") or {}).get("key")
        if key:
            assert (CAMELOT[key], key) in found, name


def check_album_gains(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    ((tracks,),) = db.execute("SELECT count(*) FROM library").fetchall()
    assert sum(n for _, n, *_ in rows) == tracks  # every track on one album
    tagged = {c.tags(f)["album"] for f in c.analysed if "album" in c.tags(f)}
    assert tagged <= {album for album, *_ in rows}
    for album, _, lufs, gain, peak, _ in rows:
        assert gain == pytest.approx(-18 - lufs, abs=0.06), album
        assert 0 < peak < 4, album
    lufs = [lufs for _, _, lufs, *_ in rows]
    assert lufs == sorted(lufs, reverse=True)


def check_loud_peaks(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    for path, dbtp, gain, peak in rows:
        assert dbtp > -1 and peak == pytest.approx(10 ** (dbtp / 20), abs=2e-3), path
        ((lufs,),) = db.execute(
            "SELECT loudness_lufs FROM library WHERE path = ?", [path]
        ).fetchall()
        assert gain == pytest.approx(-18 - lufs, abs=0.006), path
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)


def check_replaygain_tags(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    library = dict(db.execute("SELECT path, replaygain_track_gain_db FROM library").fetchall())
    assert [r[0] for r in rows] == sorted(library)
    for path, track_gain, track_peak, album_gain, album_peak in rows:
        assert track_gain == f"{library[path]:.2f} dB", path
        assert re.fullmatch(r"-?\d+\.\d\d dB", album_gain), path
        assert 0 < float(track_peak) <= float(album_peak), path


def check_danceable(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    ((median,),) = db.execute("SELECT median(danceability) FROM library").fetchall()
    assert 0 < len(rows) <= 20
    assert all(d > round(median, 2) - 0.01 and 110 <= bpm <= 150 for *_, d, _e, bpm in rows)
    danceability = [d for *_, d, _e, _b in rows]
    assert danceability == sorted(danceability, reverse=True)
    known_titles(c, [(t, a, bpm) for t, a, _d, _e, bpm in rows], bpm_at=2)


def check_same_recording(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    pairs = {tuple(sorted((c.rel(a), c.rel(b)))) for a, b, _ in rows}
    assert all(c.song(a) == c.song(b) for a, b in pairs), pairs
    # Files of identical audio: the one minute in its six containers, and misnamed copies.
    minute = sorted(f for f in WAR_OF_FREEDOM if f.startswith("good/formats/"))
    identical = {(a, b) for i, a in enumerate(minute) for b in minute[i + 1 :]}
    identical |= {
        tuple(sorted(p))
        for p in (
            ("damaged/m4a_named.ogg", "good/formats/war_of_freedom_60s.m4a"),
            ("damaged/flac_named.wav", "good/rendered/boogi_marabi.flac"),
            ("damaged/ogg_vorbis_named.mp3", "good/games/wesnoth_elvish_theme.ogg"),
        )
    }
    assert identical <= pairs, identical - pairs


def check_formats(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    assert sum(n for _, _, n, _ in rows) == len(c.analysed)
    by_codec: Counter[str] = Counter()
    for codec, decoder, n, _ in rows:
        by_codec[codec] += n
        if codec == "aac":
            assert decoder == "ffmpeg"  # libsndfile has no AAC
    # Every good file is read as the codec the manifest names (PCM of any width as pcm);
    # damaged and misnamed ones add to some.
    named = Counter(
        "pcm" if e["format"].startswith("pcm") else e["format"]
        for f, e in c.manifest.items()
        if f.startswith("good/")
    )
    assert all(by_codec[codec] >= n for codec, n in named.items()), (by_codec, named)
    seconds = sum(e["duration_s"] for f, e in c.manifest.items() if f.startswith("good/"))
    assert sum(m for *_, m in rows) >= round(seconds / 60, 1) - 0.5


def check_warnings(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    assert all(c.rel(p) in c.analysed and len(w) > 0 for p, w in rows)


def check_failures(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    by_class = {error_class: files for error_class, files, _ in rows}
    assert sum(by_class.values()) == len(c.bad)
    assert by_class["empty_file"] == sum("zero_byte" in f for f in c.bad)
    assert set(by_class) <= {"empty_file", "no_audio", "decode_error", "unsupported_format"}


def check_runs(c: Corpus, rows: list[tuple[Any, ...]], db: Any) -> None:
    ((_, seen, new, changed, moved, deleted, analysed, failed, hours, wall),) = rows
    assert (seen, new, changed, moved, deleted) == (len(c.manifest), len(c.manifest), 0, 0, 0)
    assert (analysed, failed) == (len(c.analysed), len(c.bad))
    good_hours = sum(e["duration_s"] for f, e in c.manifest.items() if f.startswith("good/"))
    assert hours >= math.floor(100 * good_hours / 3600) / 100 and wall > 0


# Each query, by its first line, with what its rows must be.
CHECKS: list[tuple[str, Callable[[Corpus, list[tuple[Any, ...]], Any], None]]] = [
    ("SELECT title, artist, round(bpm, 1) AS bpm, camelot", check_minor_tempo),
    ("WITH k AS (SELECT 11 AS num, 'A' AS letter)", check_neighbours_of_11a),
    ("SELECT path, title, round(similarity, 3) AS similarity", check_similar),
    ("SELECT path, round(score, 2) AS metal", check_metal),
    ("WITH t AS (", check_harmonic_tempo),
    ("SELECT tag, count(*) AS tracks", check_top_tags),
    ('SELECT camelot, "key", mode, count(*) AS tracks', check_camelot),
    ("SELECT coalesce(album, folder) AS album, tracks", check_album_gains),
    ("SELECT path, round(true_peak_dbtp, 2) AS dbtp", check_loud_peaks),
    ("SELECT path, printf('%.2f dB', replaygain_track_gain_db)", check_replaygain_tags),
    ("SELECT title, artist, round(danceability, 2)", check_danceable),
    ("SELECT a.path, b.path AS same_as", check_same_recording),
    ("SELECT codec, decoder, count(*) AS tracks", check_formats),
    ("SELECT path, warnings FROM library", check_warnings),
    ("SELECT error_class, count(*) AS files", check_failures),
    ("SELECT started_at, files_seen, new, changed", check_runs),
]


@pytest.mark.parametrize(
    ("query", "check"),
    list(zip(QUERIES, [check for _, check in CHECKS], strict=True)),
    ids=[q.split("\n")[0][:40] for q in QUERIES],
)
def test_readme_query_returns_what_the_manifest_says(analysed_corpus, manifest, query, check):
    starts = [first for first, _ in CHECKS]
    assert query.startswith(starts[QUERIES.index(query)]), "the README's queries moved"
    corpus = Corpus(manifest, analysed_corpus["library"])
    with duckdb.connect(str(analysed_corpus["db"]), read_only=True) as con:
        rows = con.execute(query).fetchall()
        assert rows, query
        check(corpus, rows, con)
