"""How many MusiCNN patches a track needs: embedding stability against the patch count.

    python bench/musicnn_patches.py [--corpus DIR] [--bench-corpus DIR] [--bench-tracks 40]
                                    [--cache FILE] [--json FILE]

Runs both models on EVERY 3-s patch of the corpus's good tracks and of ``--bench-tracks``
tracks spread over the bench corpus (kept in ``--cache``, so a second run only prints), then,
for each way of choosing patches, compares the mean over the chosen patches with the mean over
all of them and with today's choice (8 patches spread by :func:`spread_patches`): cosine of the
mean embeddings per model (mean and worst over the tracks) and the mean absolute difference of
the mean tag probabilities. Tracks shorter than the cap use every patch whatever the choice,
so the tables count only tracks with more patches than the largest cap shown.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from playlista.audio.decode import decode
from playlista.models.frontend import MODEL_NAMES, SR, log_mel_patches, spread_patches
from playlista.settings import AUDIO_EXTENSIONS

REPO = Path(__file__).resolve().parents[1]
TODAY = 8  # the patch cap these figures are compared against (MUSICNN_VERSION 1)

Choice = Callable[[int], np.ndarray]


def choices() -> dict[str, Choice]:
    """Ways of picking patch indices from a track's ``n`` patches."""
    picks: dict[str, Choice] = {
        f"spread {cap}": (lambda n, cap=cap: spread_patches(n, cap=cap))
        for cap in (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16)
    }
    # One patch per 30 s of music, at least 4 and at most 8: short songs pay less.
    picks["1 per 30 s, 4-8"] = lambda n: spread_patches(n, cap=int(np.clip(n // 10, 4, 8)))
    picks["1 per 20 s, 4-8"] = lambda n: spread_patches(n, cap=int(np.clip(n // 7, 4, 8)))
    return picks


def track_files(corpus: Path, bench_corpus: Path, bench_tracks: int) -> list[Path]:
    good = sorted(p for p in (corpus / "good").rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    bench = sorted(p for p in bench_corpus.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if bench_tracks and len(bench) > bench_tracks:
        bench = [bench[i] for i in np.linspace(0, len(bench) - 1, bench_tracks).round().astype(int)]
    return good + bench


def all_patch_outputs(paths: list[Path], cache: Path) -> dict[str, np.ndarray]:
    """``{path}/{model}/tags`` [shape=(n, 50)] and ``/embeddings`` [shape=(n, 200)] per track."""
    stored: dict[str, np.ndarray] = {}
    if cache.exists():
        with np.load(cache) as npz:
            stored = {key: npz[key] for key in npz.files}
    missing = [p for p in paths if f"{p}/{MODEL_NAMES[0]}/tags" not in stored]
    if missing:
        from playlista.models.musicnn import MusiCNN
        from playlista.models.tagging import to_mono_16k

        models = {name: MusiCNN.load(name) for name in MODEL_NAMES}
        for i, path in enumerate(missing):
            decoded = decode(str(path))
            patches = log_mel_patches(y=to_mono_16k(y=decoded.samples, sr=decoded.sr), sr=SR)
            for name, model in models.items():
                tags, embeddings = model.predict(patches)
                stored[f"{path}/{name}/tags"] = tags
                stored[f"{path}/{name}/embeddings"] = embeddings
            print(f"[{i + 1}/{len(missing)}] {path.name}: {len(patches)} patches", flush=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **stored)
    return stored


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def stability(
    outputs: dict[str, np.ndarray], paths: list[Path], picks: dict[str, Choice], min_patches: int
) -> list[dict[str, object]]:
    rows = []
    for label, pick in picks.items():
        row: dict[str, object] = {"choice": label}
        for name in MODEL_NAMES:
            to_all, to_today, tags_all, tags_today, counts = [], [], [], [], []
            for path in paths:
                tags = outputs[f"{path}/{name}/tags"]
                emb = outputs[f"{path}/{name}/embeddings"]
                if len(emb) <= min_patches:
                    continue
                chosen = pick(len(emb))
                today = spread_patches(len(emb), cap=TODAY)
                counts.append(len(chosen))
                to_all.append(cosine(emb[chosen].mean(0), emb.mean(0)))
                to_today.append(cosine(emb[chosen].mean(0), emb[today].mean(0)))
                tags_all.append(np.abs(tags[chosen].mean(0) - tags.mean(0)).mean())
                tags_today.append(np.abs(tags[chosen].mean(0) - tags[today].mean(0)).mean())
            short = name.split("_")[0]
            row["tracks"] = len(counts)
            row["mean patches"] = float(np.mean(counts))
            row[f"{short} cos all mean"] = float(np.mean(to_all))
            row[f"{short} cos all worst"] = float(np.min(to_all))
            row[f"{short} cos today mean"] = float(np.mean(to_today))
            row[f"{short} cos today worst"] = float(np.min(to_today))
            row[f"{short} tags-all MAD"] = float(np.mean(tags_all))
            row[f"{short} tags-today MAD"] = float(np.mean(tags_today))
        rows.append(row)
    return rows


def print_table(title: str, rows: list[dict[str, object]]) -> None:
    print(f"\n{title}")
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--bench-corpus", type=Path, default=REPO / ".bench-corpus")
    parser.add_argument("--bench-tracks", type=int, default=40)
    parser.add_argument("--cache", type=Path, default=REPO / "bench/results/musicnn_patches.npz")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    paths = track_files(args.corpus, args.bench_corpus, args.bench_tracks)
    outputs = all_patch_outputs(paths, args.cache)
    picks = choices()
    tables = {}
    for label, group in (
        ("corpus good tracks", [p for p in paths if args.corpus in p.parents]),
        ("bench corpus tracks", [p for p in paths if args.bench_corpus in p.parents]),
        ("both", paths),
    ):
        # Only tracks longer than 16 patches (48 s): shorter ones take every patch anyway.
        tables[label] = stability(outputs, group, picks, min_patches=16)
        print_table(f"{label} (tracks over 16 patches)", tables[label])
    lengths = [len(outputs[f"{p}/{MODEL_NAMES[0]}/tags"]) for p in paths]
    print(
        f"\n{len(paths)} tracks, patches per track: median {np.median(lengths):.0f}, "
        f"min {min(lengths)}, max {max(lengths)}"
    )
    if args.json:
        args.json.write_text(json.dumps(tables, indent=2))


if __name__ == "__main__":
    main()
