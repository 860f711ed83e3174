"""Which pieces the evaluation set holds, and their annotations, by the rules of SOURCES.md.

    .venv/bin/python bench/evalset/selection.py SRC  # SRC: the packages build.py extracted

Writes bench/evalset/pieces.json, the committed list that build.py renders. Every annotation
comes from the score, the MIDI file or the chart: a MetronomeMark this script sets, a MIDI
file's own constant tempo, a Frets on Fire chart's tempo map, a Roman-numeral analysis, a
work's title or a tune's declared key. No audio estimator is run here.
"""

from __future__ import annotations

import io
import json
import random
import re
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mido

HERE = Path(__file__).parent
PIECES = HERE / "pieces.json"
# The corpus's own renders and songs: left out so that the two sets do not overlap.
CORPUS_PIECES = {
    "bach/bwv269",
    "bach/bwv351",
    "boogi_marabi_redfarn.mid",
    "trance1.mid",
    "War of freedom",
    "armygeddon",
    "Feelings",
}
# GM programs by family: every render of a score gets one family (FluidR3's banks).
ENSEMBLES: dict[str, list[int]] = {
    "piano": [0],
    "strings": [40, 40, 41, 42],
    "organ": [19],
    "guitar": [24, 25],
    "winds": [73, 68, 71, 70],
    "brass": [56, 60, 57, 58],
    "choir": [52],
    "mallets": [11, 12],
    "accordion": [21],
    "harpsichord": [6],
}
MELODY_PROGRAMS = {
    "flute": 73,
    "violin": 40,
    "clarinet": 71,
    "accordion": 21,
    "piano": 0,
    "guitar": 24,
    "trumpet": 56,
    "oboe": 68,
    "harmonica": 22,
    "marimba": 12,
}
# Title keys of first movements (the movement the title names). Left out: opus59no3 and
# opus133 (slow introductions that avoid the tonic), Schumann's op. 41 no. 1 (A-minor
# introduction to an F-major Allegro), Weber's concertino (opens in C minor).
TITLE_KEYS = {
    "beethoven/opus18no1/movement1.mxl": ("F major", "String Quartet in F major, Op. 18 No. 1"),
    "beethoven/opus18no3.mxl": ("D major", "String Quartet in D major, Op. 18 No. 3"),
    "beethoven/opus18no4.mxl": ("C minor", "String Quartet in C minor, Op. 18 No. 4"),
    "beethoven/opus18no5.mxl": ("A major", "String Quartet in A major, Op. 18 No. 5"),
    "beethoven/opus59no1/movement1.mxl": ("F major", "String Quartet in F major, Op. 59 No. 1"),
    "beethoven/opus59no2/movement1.mxl": ("E minor", "String Quartet in E minor, Op. 59 No. 2"),
    "beethoven/opus74.mxl": ("Eb major", "String Quartet in E-flat major, Op. 74"),
    "beethoven/opus132.mxl": ("A minor", "String Quartet in A minor, Op. 132"),
    "mozart/k458/movement1.mxl": ("Bb major", "String Quartet in B-flat major, K. 458"),
    "mozart/k155/movement1.mxl": ("D major", "String Quartet in D major, K. 155"),
    "mozart/k80/movement1.mxl": ("G major", "String Quartet in G major, K. 80"),
    "mozart/k156/movement1.mxl": ("G major", "String Quartet in G major, K. 156"),
    "haydn/opus74no1/movement1.mxl": ("C major", "String Quartet in C major, Op. 74 No. 1"),
    "haydn/opus1no1/movement1.mxl": ("Bb major", "String Quartet in B-flat major, Op. 1 No. 1"),
    "corelli/opus3no1/1grave.xml": ("F major", "Trio Sonata in F major, Op. 3 No. 1"),
    "chopin/mazurka06-2.krn": ("C# minor", "Mazurka in C-sharp minor, Op. 6 No. 2"),
}
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Folk tunes: the declared keys kept (modal K: fields such as Dmix or Ador are left out).
FOLK_KEYS = re.compile(r"^([A-G][b#]?)(m?)$")
FOLK_MAJOR, FOLK_MINOR = 26, 30
MIN_OPENING_SHARE = 0.5
MAX_TEMPO_SPREAD = 0.005  # a MIDI tempo map is constant when its tempi agree within 0.5 %


def key_name(token: str) -> str:
    """'g' -> 'G minor', 'Bb' -> 'Bb major', 'f#' -> 'F# minor' (rntxt's spelling: '-' is flat)."""
    letter, accidentals = token[0], token[1:].replace("-", "b")
    mode = "minor" if letter.islower() else "major"
    pc = (LETTERS[letter.upper()] + accidentals.count("#") - accidentals.count("b")) % 12
    return f"{NOTE_NAMES[pc]} {mode}"


def rntxt_keys(text: str) -> tuple[str, list[str], float, str]:
    """Opening key, the keys in order, the share of measures that begin in the opening key,
    and the key in force at the end, of a RomanText analysis."""
    current, opening, counts, order = None, None, 0, []
    measures = 0
    for line in text.splitlines():
        if not re.match(r"^m\d+", line):
            continue
        if current is not None:
            measures += 1
            counts += current == opening
        for token in re.findall(r"(?:^|\s)([A-Ga-g][#b-]?):", line):
            current = key_name(token)
            opening = opening or current
            if not order or order[-1] != current:
                order.append(current)
    if opening is None or current is None:
        raise ValueError("no key in the analysis")
    return opening, order, counts / max(measures, 1), current


def analysed_pieces(corpus: Path) -> Iterator[dict[str, Any]]:
    """Bach chorales and Monteverdi madrigals with a RomanText analysis in music21's corpus.

    Key: the analysis's opening key, kept only when the piece also ends in it and at least
    half of its measures begin in it (else tempo only)."""
    analyses = sorted((corpus / "bach/choraleAnalyses").glob("riemenschneider*.rntxt"))
    analyses += sorted((corpus / "monteverdi").glob("madrigal.*.rntxt"))
    for path in analyses:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.parent.name == "choraleAnalyses":
            bwv = re.search(r"^BWV:\s*(\S+)", text, re.M)
            if bwv is None:
                continue
            score, kind = chorale_score(corpus, bwv.group(1)), "chorale"
        else:
            score, kind = f"monteverdi/{path.stem}.mxl", "madrigal"
        if score in CORPUS_PIECES:
            continue
        opening, order, share, closing = rntxt_keys(text)
        analyst = re.search(r"^Analyst:\s*(.+)$", text, re.M)
        piece: dict[str, Any] = {
            "id": f"{kind}_{_slug(Path(score).name.removesuffix('.mxl'))}",
            "kind": kind,
            "score": score,
            "local_keys": order,
            "opening_key_share": round(share, 2),
        }
        if closing == opening and share >= MIN_OPENING_SHARE:
            piece["key"] = opening
            who = f" (analyst {analyst.group(1).strip()})" if analyst else ""
            piece["key_source"] = f"opening key of {path.relative_to(corpus)}{who}"
        yield piece


def chorale_score(corpus: Path, bwv: str) -> str:
    """music21's file for an analysis's BWV number: '153.1', '41.6s', '248(2).12' (part 2)."""
    part = re.match(r"^(\d+)\((\d+)\)\.(\d+)$", bwv)
    name = f"{part[1]}.{part[3]}-{part[2]}" if part else bwv.rstrip("abcdefghijklmnopqrstuvwxyz")
    if not list((corpus / "bach").glob(f"bwv{name}.*")):
        raise SystemExit(f"no score for BWV {bwv} in music21's corpus")
    return f"bach/bwv{name}"


def score_pieces() -> Iterator[dict[str, Any]]:
    """First movements of quartets and other works whose title names their key."""
    for score, (key, title) in TITLE_KEYS.items():
        yield {
            "id": _score_id(score),
            "kind": "movement",
            "score": score,
            "key": key,
            "key_source": f"work title: {title}",
        }


def _score_id(score: str) -> str:
    return _slug(score.rsplit(".", 1)[0])


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def folk_tunes(corpus: Path) -> Iterator[dict[str, Any]]:
    """O'Neill's Music of Ireland (1903) tunes whose declared key (K:) is a major or minor key
    and whose last note is its tonic, in one metre; balanced over keys, every other one with
    drums."""
    import music21 as m21

    candidates: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((corpus / "oneills1850").glob("*.abc")):
        for tune in re.split(r"\n(?=X:)", path.read_text(encoding="latin-1")):
            heads = dict(re.findall(r"^([XTMK]):\s*(.*?)\s*$", tune, re.M))
            match = FOLK_KEYS.match(heads.get("K", ""))
            if not match or len(re.findall(r"^K:", tune, re.M)) != 1 or "X" not in heads:
                continue
            key = f"{match.group(1)} {'minor' if match.group(2) else 'major'}"
            candidates.setdefault(key, []).append(
                {
                    "file": path.name,
                    "x": heads["X"],
                    "title": heads.get("T", ""),
                    "metre": heads.get("M", ""),
                    "key": key,
                    "text": tune,
                }
            )
    chosen: list[dict[str, Any]] = []
    for minor, wanted in ((False, FOLK_MAJOR), (True, FOLK_MINOR)):
        keys = sorted(k for k in candidates if k.endswith("minor") == minor)
        queues = {k: iter(candidates[k]) for k in keys}
        picked: list[dict[str, Any]] = []
        while len(picked) < wanted and queues:  # round robin over the keys
            for key in list(queues):
                tune = next(queues[key], None)
                if tune is None:
                    del queues[key]
                elif _usable(m21, tune):
                    picked.append(tune)
                if len(picked) == wanted:
                    break
        chosen += picked
    for i, tune in enumerate(chosen):
        yield {
            "id": f"folk_oneills_{int(tune['x']):04d}",
            "kind": "folk",
            "score": f"oneills1850/{tune['file']}",
            "abc_x": tune["x"],
            "title": tune["title"],
            "key": tune["key"],
            "key_source": f"declared key K:{tune['text'].split('K:')[1].split()[0]} of the "
            "transcription; the melody ends on its tonic",
            "drums": i % 2 == 0,
        }


def _usable(m21: Any, tune: dict[str, Any]) -> bool:
    """One time signature throughout (music21 cannot export the others to MIDI), and the
    melody's last note on the declared tonic."""
    try:
        score = m21.converter.parse(tune["text"], format="abc")
    except Exception:  # the corpus holds a few tunes music21 cannot parse: not chosen
        return False
    if len(list(score.recurse().getElementsByClass(m21.meter.TimeSignature))) != 1:
        return False
    notes = list(score.recurse().notes)
    if not notes:
        return False
    last = notes[-1]
    pitch = last.pitches[0] if last.isChord else last.pitch
    tonic = (
        LETTERS[tune["key"][0]]
        + tune["key"].split()[0].count("#")
        - tune["key"].split()[0].count("b")
    ) % 12
    return int(pitch.pitchClass) == tonic


def assign_renders(pieces: list[dict[str, Any]]) -> None:
    """A tempo (beats per minute of the metre's beat) and an ensemble for every score, drawn
    from a generator seeded with the piece's id: the same list on every machine."""
    for piece in pieces:
        rng = random.Random(piece["id"])
        low, high = {
            "chorale": (56, 120),
            "madrigal": (60, 132),
            "movement": (60, 184),
            "folk": (70, 200),
        }[piece["kind"]]
        piece["render_bpm"] = rng.randrange(low, high + 1)
        if piece["kind"] == "folk":
            name = rng.choice(sorted(MELODY_PROGRAMS))
            piece["ensemble"], piece["programs"] = name, [MELODY_PROGRAMS[name]]
        else:
            name = rng.choice(sorted(ENSEMBLES))
            piece["ensemble"], piece["programs"] = name, ENSEMBLES[name]
        piece.setdefault("drums", False)


def midi_pieces(src: Path) -> Iterator[dict[str, Any]]:
    """Game MIDI files whose tempo map is constant: OpenMSX, Kobo Deluxe, Freedoom Phase 1."""
    files = [
        ("openttd-openmsx", p.name, p.read_bytes())
        for p in sorted((src / "openttd-openmsx").rglob("*.mid"))
    ]
    files += [
        ("kobodeluxe-data", p.name, p.read_bytes())
        for p in sorted((src / "kobodeluxe-data").rglob("*.mid"))
    ]
    # Freedoom: Phase 1's music (freedoom1.wad); Phase 2's is left out to keep the set quick
    # to render.
    for wad in sorted((src / "freedoom").rglob("freedoom1.wad")):
        files += [("freedoom", f"{wad.stem}:{name}", data) for name, data in wad_music(wad)]
    for package, name, data in files:
        if name in CORPUS_PIECES:
            continue
        midi = mido.MidiFile(file=io.BytesIO(data))
        tempo = constant_tempo(midi)
        if tempo is None:
            continue
        bpm, beat, metre = tempo
        yield {
            "id": f"{package.split('-')[0]}_{_slug(name.removesuffix('.mid'))}",
            "kind": "game_midi",
            "package": package,
            "midi": name,
            "tempo_bpm": bpm,
            "tempo_source": f"the MIDI file's constant tempo, {beat}",
            "metre": metre,
        }


def wad_music(wad: Path) -> list[tuple[str, bytes]]:
    """The standard-MIDI music lumps (D_*) of a Doom WAD file."""
    data = wad.read_bytes()
    _, count, directory = struct.unpack("<4sii", data[:12])
    lumps = []
    for i in range(count):
        pos, size, raw = struct.unpack("<ii8s", data[directory + 16 * i : directory + 16 * i + 16])
        name = raw.rstrip(b"\0").decode()
        if name.startswith("D_") and data[pos : pos + 4] == b"MThd":
            lumps.append((name, data[pos : pos + size]))
    return lumps


def constant_tempo(midi: mido.MidiFile) -> tuple[float, str, str] | None:
    """The beat tempo of a MIDI file whose tempo never changes, or None.

    Left out: files with no tempo event (120 by default, not authored), files whose tempo
    changes, and files at 89 ticks per quarter, Freedoom's conversions from the MUS format,
    whose tempo is the 140 Hz MUS clock rather than the music's. The beat is the quarter note,
    or the dotted quarter when every time signature is compound (6/8, 9/8, 12/8)."""
    tempi, metres, drums = [], set(), False
    for track in midi.tracks:
        for msg in track:
            if msg.type == "set_tempo":
                tempi.append(mido.tempo2bpm(msg.tempo))
            elif msg.type == "time_signature":
                metres.add(f"{msg.numerator}/{msg.denominator}")
            elif msg.type == "note_on" and msg.channel == 9 and msg.velocity:
                drums = True
    if not tempi or midi.ticks_per_beat == 89 or not drums:
        return None
    if max(tempi) > min(tempi) * (1 + MAX_TEMPO_SPREAD) or midi.length < 30:
        return None
    compound = bool(metres) and all(
        m.endswith("/8") and int(m.split("/")[0]) % 3 == 0 for m in metres
    )
    bpm = round(tempi[0] * (2 / 3 if compound else 1), 2)
    beat = "dotted quarter (compound metre)" if compound else "quarter note"
    return bpm, beat, ",".join(sorted(metres)) or "unmarked"


def fof_pieces(src: Path) -> Iterator[dict[str, Any]]:
    """Frets on Fire songs whose chart (notes.mid) has one constant tempo."""
    for package in ("fretsonfire-songs-muldjord", "fretsonfire-songs-sectoid"):
        for chart in sorted((src / package).rglob("notes.mid")):
            song = chart.parent.name
            if song in CORPUS_PIECES:
                continue
            midi = mido.MidiFile(chart)
            tempi = [
                mido.tempo2bpm(m.tempo) for t in midi.tracks for m in t if m.type == "set_tempo"
            ]
            if not tempi or max(tempi) > min(tempi) * (1 + MAX_TEMPO_SPREAD):
                continue
            yield {
                "id": f"fof_{_slug(song)}",
                "kind": "recording",
                "package": package,
                "song": song,
                "tempo_bpm": round(tempi[0], 2),
                "tempo_source": "notes.mid tempo map of the Frets on Fire chart, authored "
                "against this audio (constant)",
            }


def main() -> None:
    import music21 as m21

    src = Path(sys.argv[1])
    corpus = Path(m21.__file__).parent / "corpus"
    scores = [*analysed_pieces(corpus), *score_pieces(), *folk_tunes(corpus)]
    assign_renders(scores)
    pieces = [*scores, *midi_pieces(src), *fof_pieces(src)]
    PIECES.write_text(json.dumps(pieces, indent=1) + "\n")
    keyed = [p for p in pieces if "key" in p]
    minor = sum(p["key"].endswith("minor") for p in keyed)
    print(f"{len(pieces)} pieces, {len(keyed)} with a key ({minor} minor) -> {PIECES}")


if __name__ == "__main__":
    main()
