"""Render the accuracy evaluation set listed in bench/evalset/pieces.json into DEST.

    .venv/bin/python bench/evalset/build.py DEST [--select] [--only ID ...]

Fetches the Debian packages the set draws on with ``apt-get download`` (installing nothing but
fluidsynth and the FluidR3 GM SoundFont, which ``make bench-evalset`` installs), renders every
score and MIDI file with fluidsynth as the corpus's renders were made, mixes the Frets on Fire
songs' stems, and writes DEST/manifest.json: per file its tempo, key, sources, licence and how
each was derived. ``--select`` first rebuilds pieces.json from the rules of SOURCES.md
(selection.py). Files already rendered are kept. See SOURCES.md for the rules.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import mido
import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
import selection as choose

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SR = 44100
MAX_SECONDS = 60.0  # renders are cut here: enough for tempo and key, and the set renders quickly
PEAK = 10 ** (-1 / 20)
PACKAGES = (
    "openttd-openmsx",
    "kobodeluxe-data",
    "freedoom",
    "fretsonfire-songs-muldjord",
    "fretsonfire-songs-sectoid",
)
RENDERED = "Rendered with fluidsynth 2.3.1 and FluidR3_GM.sf2 (fluid-soundfont-gm, MIT)."
LICENCES = {
    "music21": "music21 corpus (music21 is BSD-3-Clause; the compositions are public domain; "
    "encodings per music21/corpus/license.txt, some restrict commercial use).",
    "openttd-openmsx": "GPL-2 (OpenMSX, OpenTTD's base music set).",
    "kobodeluxe-data": "GPL-2+ (Kobo Deluxe, David Olofson).",
    "freedoom": "BSD-3-Clause (Contributors to the Freedoom project).",
    "fretsonfire-songs-muldjord": "CC-BY-SA-3.0 (El Senator / Muldjord).",
    "fretsonfire-songs-sectoid": 'Expat/MIT (Carlos Viola Iborra "Sectoid").',
}
KICK, SNARE, HAT = 36, 38, 42


def fetch(src: Path) -> None:
    """Download and unpack each Debian package once into ``src``/<package>/."""
    missing = [p for p in PACKAGES if not (src / p).is_dir()]
    if missing:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
    for package in missing:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", "-q", package], cwd=tmp, check=True)
            deb = next(Path(tmp).glob(f"{package}_*.deb"))
            subprocess.run(["dpkg", "-x", str(deb), str(src / package)], check=True)


def render(midi: mido.MidiFile, out: Path) -> float:
    """fluidsynth's render of ``midi`` as a 16-bit FLAC, cut at MAX_SECONDS; its seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        bounded(midi, MAX_SECONDS).save(mid)
        subprocess.run(
            [
                "fluidsynth",
                "-ni",
                "-q",
                "-r",
                str(SR),
                "-g",
                "0.5",
                "-F",
                str(wav),
                str(SOUNDFONT),
                str(mid),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        audio, _ = sf.read(wav, dtype="float32", always_2d=True)
    return write(audio[: int(MAX_SECONDS * SR)], out)


def bounded(midi: mido.MidiFile, seconds: float) -> mido.MidiFile:
    """The first ``seconds`` of ``midi`` as one track at 120 BPM, every note released at the
    end: fluidsynth renders until the last voice ends, and a note left on (a tie cut by the
    excerpt, a missing note-off) would hold a sustained instrument forever."""
    out = mido.MidiFile(type=0, ticks_per_beat=960)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)])
    now, last, sounding = 0.0, 0, set()
    for msg in midi:  # merged tracks, times in seconds
        now += msg.time
        if now > seconds:
            break
        if msg.is_meta:
            continue
        tick = round(now * 1920)
        track.append(msg.copy(time=tick - last))
        last = tick
        if msg.type == "note_on" and msg.velocity:
            sounding.add((msg.channel, msg.note))
        elif msg.type in ("note_on", "note_off"):
            sounding.discard((msg.channel, msg.note))
    for channel, note in sorted(sounding):
        track.append(mido.Message("note_off", channel=channel, note=note, time=0))
    out.tracks.append(track)
    return out


def write(audio: np.ndarray, out: Path) -> float:
    """``audio`` [shape=(n, channels)] peak-normalised to -1 dBFS, as FLAC; its seconds."""
    loud = np.flatnonzero(np.abs(audio).max(axis=1) > 1e-4)
    audio = audio[: loud[-1] + 1] if loud.size else audio
    audio = audio * (PEAK / max(float(np.abs(audio).max()), 1e-9))
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, audio, SR, subtype="PCM_16")
    return len(audio) / SR


def score_midi(piece: dict[str, Any], m21: Any) -> tuple[mido.MidiFile, dict[str, Any]]:
    """The score with every tempo mark replaced by one MetronomeMark, in its GM ensemble."""
    corpus = Path(m21.__file__).parent / "corpus"
    if piece["kind"] == "folk":
        text = (corpus / piece["score"]).read_text(encoding="latin-1")
        tune = next(t for t in text.split("\nX:") if t.split("\n")[0].strip() == piece["abc_x"])
        score = m21.converter.parse("X:" + tune, format="abc")
        with contextlib.suppress(Exception):  # repeats it cannot unfold: played once
            score = m21.stream.Score([score.parts[0].expandRepeats()])
    else:
        score = m21.corpus.parse(piece["score"])
    for mark in list(score.recurse().getElementsByClass(m21.tempo.TempoIndication)):
        mark.activeSite.remove(mark)
    signatures = list(score.recurse().getElementsByClass(m21.meter.TimeSignature))
    beat = signatures[0].beatDuration if signatures else m21.duration.Duration(1.0)
    bars = list(score.parts[0].getElementsByClass(m21.stream.Measure))
    (bars[0] if bars else score.parts[0]).insert(
        0, m21.tempo.MetronomeMark(number=piece["render_bpm"], referent=beat)
    )
    # music21's MIDI export takes minutes on a whole quartet movement: only the bars that
    # fit in MAX_SECONDS are exported.
    seconds = [bar.offset / beat.quarterLength * 60 / piece["render_bpm"] for bar in bars]
    if bars and seconds[-1] > MAX_SECONDS:
        last = next(b for b, s in zip(bars, seconds, strict=True) if s > MAX_SECONDS)
        score = score.measures(bars[0].number, last.number)
        _drop_repeats(score, m21)  # a cut leaves repeats without their ends
        signatures = list(score.recurse().getElementsByClass(m21.meter.TimeSignature))
    beats = {ts.beatDuration.quarterLength for ts in signatures} or {1.0}
    derived = {
        "metre": ",".join(dict.fromkeys(ts.ratioString for ts in signatures)) or "unmarked",
        "beat": beat.fullName.lower(),
        # A piece whose beat changes length (4/4 to 6/8, say) has no one tempo: key only.
        "tempo_bpm": piece["render_bpm"] if len(beats) == 1 else None,
    }
    drums = _drum_hits(score, m21) if piece.get("drums") else []
    try:
        data = m21.midi.translate.streamToMidiFile(score).writestr()
    except m21.repeat.ExpanderException:  # repeats music21 cannot unfold: played once
        _drop_repeats(score, m21)
        data = m21.midi.translate.streamToMidiFile(score).writestr()
    midi = mido.MidiFile(file=io.BytesIO(data))
    return arrange(midi, piece["programs"], drums), derived


def _drop_repeats(score: Any, m21: Any) -> None:
    for bar in score.recurse().getElementsByClass(m21.stream.Measure):
        for side in ("leftBarline", "rightBarline"):
            if isinstance(getattr(bar, side), m21.bar.Repeat):
                setattr(bar, side, None)
    for mark in list(score.recurse().getElementsByClass(m21.repeat.RepeatExpression)):
        mark.activeSite.remove(mark)


def _drum_hits(score: Any, m21: Any) -> list[tuple[float, int, int]]:
    """A plain kit pattern on the score's bars: kick on the downbeat (and mid-bar in four),
    snare on the back beats, closed hi-hat on every beat subdivision; (quarter lengths, note,
    velocity)."""
    hits = []
    for bar in score.parts[0].getElementsByClass(m21.stream.Measure):
        ts = bar.getContextByClass(m21.meter.TimeSignature)
        if ts is None:
            continue
        beat, count = ts.beatDuration.quarterLength, ts.beatCount
        sub = beat / 3 if ts.beatDivisionCount == 3 else beat / 2
        start = bar.offset - bar.paddingLeft
        for i in range(round(count * beat / sub)):
            position = i * sub
            hits.append((start + position, HAT, 70))
            if position % beat == 0:
                n = int(position // beat)
                if n == 0 or (count == 4 and n == 2):
                    hits.append((start + position, KICK, 100))
                elif count in (2, 4):
                    hits.append((start + position, SNARE, 90))
    end = score.highestTime
    return [h for h in hits if 0 <= h[0] < end]


def arrange(
    midi: mido.MidiFile, programs: list[int], drums: list[tuple[float, int, int]]
) -> mido.MidiFile:
    """Each part on a channel of its own with its ensemble's program (the lowest part takes
    the ensemble's last, lowest instrument), and the drum hits on channel 10."""
    parts = [t for t in midi.tracks if any(m.type == "note_on" for m in t)]
    channels = [c for c in range(16) if c != 9]
    for i, track in enumerate(parts):
        channel = channels[i % len(channels)]
        program = (
            programs[-1] if i == len(parts) - 1 and len(parts) > 1 else programs[i % len(programs)]
        )
        kept = [m for m in track if m.type != "program_change"]
        for msg in kept:
            if hasattr(msg, "channel"):
                msg.channel = channel
        track[:] = [mido.Message("program_change", channel=channel, program=program, time=0), *kept]
    if drums:
        tpq = midi.ticks_per_beat
        events = []
        for offset, note, velocity in drums:
            tick = round(offset * tpq)
            events += [(tick, 1, note, velocity), (tick + tpq // 8, 0, note, 0)]
        track, now = mido.MidiTrack(), 0
        for tick, _, note, velocity in sorted(events):
            track.append(
                mido.Message("note_on", channel=9, note=note, velocity=velocity, time=tick - now)
            )
            now = tick
        midi.tracks.append(track)
    return midi


def game_midi(piece: dict[str, Any], src: Path) -> mido.MidiFile:
    package, name = piece["package"], piece["midi"]
    if package == "freedoom":
        wad, lump = name.split(":")
        data = dict(choose.wad_music(next((src / package).rglob(f"{wad}.wad"))))[lump]
        return mido.MidiFile(file=io.BytesIO(data))
    return mido.MidiFile(next((src / package).rglob(name)))


def fof_mix(piece: dict[str, Any], src: Path, out: Path) -> float:
    """The song's stems (song, guitar, rhythm) summed, as the game plays them."""
    folder = next(
        p.parent
        for p in (src / piece["package"]).rglob("notes.mid")
        if p.parent.name == piece["song"]
    )
    stems = [sf.read(p, dtype="float32", always_2d=True) for p in sorted(folder.glob("*.ogg"))]
    if any(rate != SR for _, rate in stems):
        raise SystemExit(f"{folder}: stems are not at {SR} Hz")
    length = max(len(a) for a, _ in stems)
    mix = np.zeros((length, 2), np.float32)
    for audio, _ in stems:
        mix[: len(audio)] += audio if audio.shape[1] == 2 else audio.repeat(2, axis=1)
    return write(mix, out)


def entry(
    piece: dict[str, Any], file: str, seconds: float, derived: dict[str, Any]
) -> dict[str, Any]:
    kind = piece["kind"]
    if kind in ("chorale", "madrigal", "movement", "folk"):
        source, licence = f"music21 corpus: {piece['score']}", LICENCES["music21"] + " " + RENDERED
        tempo_source = (
            f"MetronomeMark of {piece['render_bpm']} per {derived['beat']} set "
            "before MIDI export, every other tempo mark removed; exact"
        )
        extra = {
            "ensemble": piece["ensemble"],
            "programs": piece["programs"],
            "drums": piece["drums"],
            **derived,
        }
    else:
        source = f"{piece['package']}: {piece.get('midi') or piece.get('song')}"
        licence = LICENCES[piece["package"]] + (" " + RENDERED if kind == "game_midi" else "")
        tempo_source = piece["tempo_source"]
        extra = {"metre": piece.get("metre"), "tempo_bpm": piece["tempo_bpm"]}
    tempo = extra.pop("tempo_bpm")
    return {
        "file": file,
        "id": piece["id"],
        "kind": kind,
        "duration_s": round(seconds, 3),
        "tempo_bpm": tempo,
        "tempo_source": tempo_source if tempo else None,
        "key": piece.get("key"),
        "key_source": piece.get("key_source"),
        "source": source,
        "licence": licence,
        **extra,
    }


def shorten(done: dict[str, Any], dest: Path) -> None:
    """Cut a render made with a longer MAX_SECONDS: the same samples a new render would give
    up to the cut, since bounded() only drops what comes after it."""
    if done["kind"] != "recording" and done["duration_s"] > MAX_SECONDS:
        audio, _ = sf.read(dest / done["file"], dtype="float32", always_2d=True)
        done["duration_s"] = round(write(audio[: int(MAX_SECONDS * SR)], dest / done["file"]), 3)


def build(piece: dict[str, Any], dest: Path) -> dict[str, Any]:
    """Render or mix one piece into ``dest``; its manifest entry."""
    import music21 as m21

    src, file = dest / ".src", f"{piece['kind']}/{piece['id']}.flac"
    derived: dict[str, Any] = {}
    if piece["kind"] == "recording":
        seconds = fof_mix(piece, src, dest / file)
    elif piece["kind"] == "game_midi":
        seconds = render(game_midi(piece, src), dest / file)
    else:
        midi, derived = score_midi(piece, m21)
        seconds = render(midi, dest / file)
    return entry(piece, file, seconds, derived)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--select", action="store_true", help="rebuild pieces.json first")
    parser.add_argument("--only", action="append", default=[], help="build only these ids")
    parser.add_argument("--kind", action="append", default=[], help="build only these kinds")
    parser.add_argument("--jobs", type=int, default=2, help="pieces rendered in parallel")
    args = parser.parse_args()
    fetch(args.dest / ".src")
    if args.select:
        sys.argv = ["selection.py", str(args.dest / ".src")]
        choose.main()
    pieces = json.loads(choose.PIECES.read_text())
    manifest_path = args.dest / "manifest.json"
    known = (
        {e["id"]: e for e in json.loads(manifest_path.read_text())}
        if manifest_path.exists()
        else {}
    )
    manifest = {
        p["id"]: known[p["id"]]
        for p in pieces
        if p["id"] in known
        and p["id"] not in args.only
        and (args.dest / known[p["id"]]["file"]).exists()
    }
    todo = [
        p
        for p in pieces
        if p["id"] not in manifest
        and (not args.only or p["id"] in args.only)
        and (not args.kind or p["kind"] in args.kind)
    ]
    for done in manifest.values():
        shorten(done, args.dest)
    entries = [manifest[p["id"]] for p in pieces if p["id"] in manifest]
    manifest_path.write_text(json.dumps(entries, indent=1) + "\n")
    with ProcessPoolExecutor(args.jobs) as pool:
        for i, done in enumerate(pool.map(build, todo, [args.dest] * len(todo)), 1):
            print(f"[{i}/{len(todo)}] {done['file']}", file=sys.stderr, flush=True)
            # Kept as it grows, and merged with what another build of other kinds wrote.
            if manifest_path.exists():
                on_disk = {e["id"]: e for e in json.loads(manifest_path.read_text())}
                manifest = on_disk | manifest
            manifest[done["id"]] = done
            entries = [manifest[p["id"]] for p in pieces if p["id"] in manifest]
            manifest_path.write_text(json.dumps(entries, indent=1) + "\n")
    tempo = sum(e["tempo_bpm"] is not None for e in entries)
    keys = [e["key"] for e in entries if e["key"]]
    minor = sum(k.endswith("minor") for k in keys)
    hours = sum(e["duration_s"] for e in entries) / 3600
    print(
        f"{len(entries)} files, {hours:.1f} h: {tempo} with a tempo, {len(keys)} with a key "
        f"({minor} minor) -> {manifest_path}"
    )


if __name__ == "__main__":
    main()
