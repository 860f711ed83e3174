"""Every stored descriptor of a set of files, as this checkout computes them, for comparison.

    python bench/descriptors.py OUT.json [--bench-corpus DIR] [--tracks N]
    python bench/descriptors.py --compare OLD.json NEW.json

The first form analyses the corpus's good and damaged files (and ``--tracks`` files spread
over the bench corpus) in this process with ``playlista.analysis.analyze_file``, both MusiCNN
models loaded, and writes every feature, tag score and embedding to OUT.json. Run on two
checkouts, the second form prints how far each descriptor moved: the largest and median
difference over the files, and the embeddings' cosine similarity.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
AUDIO = {".ogg", ".opus", ".mp3", ".flac", ".wav", ".m4a", ".aiff", ".wma"}


def files(bench_corpus: Path | None, tracks: int) -> list[str]:
    picked = [
        str(p)
        for folder in ("good", "damaged")
        for p in sorted((CORPUS / folder).rglob("*"))
        if p.suffix.lower() in AUDIO
    ]
    if bench_corpus is not None and tracks:
        pool = sorted(p for p in bench_corpus.rglob("*") if p.suffix.lower() in AUDIO)
        picked += [str(pool[i * len(pool) // tracks]) for i in range(min(tracks, len(pool)))]
    return picked


def analyse(paths: list[str]) -> dict[str, Any]:
    from playlista.analysis import analyze_file
    from playlista.records import TrackResult
    from playlista.worker import AudioLibraries

    libraries = AudioLibraries()
    libraries.load()
    out: dict[str, Any] = {}
    for path in paths:
        outcome = analyze_file(path, worker="bench", taggers=libraries.taggers)
        if not isinstance(outcome, TrackResult):
            out[path] = {"failure": outcome.error_class}
            continue
        values = {
            name: getattr(outcome.features, name)
            for name in outcome.features.__dataclass_fields__
            if name != "warnings"
        }
        values["duration_s"] = outcome.decoded_seconds
        for scores in outcome.musicnn:
            values[f"{scores.model}.scores"] = list(scores.scores)
            values[f"{scores.model}.embedding"] = list(scores.embedding)
        out[path] = values
        print(path, file=sys.stderr, flush=True)
    if libraries.decoder is not None:
        libraries.decoder.close()
    return out


def _relative(files: dict[str, Any]) -> dict[str, Any]:
    """The files keyed by their path inside the corpus or the bench corpus, wherever it is."""
    out = {}
    for path, value in files.items():
        for root in ("/.bench-corpus/", "/corpus/"):
            if root in path:
                path = root + path.rsplit(root, 1)[1]
                break
        out[path] = value
    return out


def compare(old: dict[str, Any], new: dict[str, Any]) -> None:
    old, new = _relative(old), _relative(new)
    common = [p for p in old if p in new and "failure" not in old[p] and "failure" not in new[p]]
    print(f"{len(common)} files in both")
    names = sorted({k for p in common for k in old[p]})
    for name in names:
        pairs = [(old[p].get(name), new[p].get(name)) for p in common]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        if not pairs:
            continue
        if isinstance(pairs[0][0], list):
            cos = [_cosine(a, b) for a, b in pairs]
            diff = [max(abs(x - y) for x, y in zip(a, b, strict=True)) for a, b in pairs]
            print(
                f"{name:28} cosine min {min(cos):.4f} median {statistics.median(cos):.4f}"
                f"   max abs diff {max(diff):.4g}"
            )
        elif isinstance(pairs[0][0], str):
            same = sum(a == b for a, b in pairs)
            print(f"{name:28} same on {same} of {len(pairs)}")
        else:
            rel = [abs(b - a) / abs(a) if a else abs(b - a) for a, b in pairs]
            absd = [abs(b - a) for a, b in pairs]
            print(
                f"{name:28} abs diff max {max(absd):.4g} median {statistics.median(absd):.4g}"
                f"   rel max {max(rel):.2%} median {statistics.median(rel):.2%}"
            )


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path)
    parser.add_argument("--bench-corpus", type=Path, default=REPO / ".bench-corpus")
    parser.add_argument("--tracks", type=int, default=24)
    parser.add_argument("--compare", nargs=2, type=Path)
    args = parser.parse_args()
    if args.compare:
        old, new = (json.loads(p.read_text())["files"] for p in args.compare)
        compare(old, new)
        return
    bench = args.bench_corpus if args.bench_corpus.is_dir() else None
    result = {"commit": _commit(), "files": analyse(files(bench, args.tracks))}
    args.out.write_text(json.dumps(result, indent=1))


def _commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()


if __name__ == "__main__":
    os.environ.setdefault("PLAYLISTA_ANALYSIS_MAX_SECONDS", "600")
    main()
