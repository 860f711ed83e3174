"""k-means over embeddings and features, and a name for each cluster."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from playlista.errors import PlaylistError
from playlista.playlists.methods import unit_rows

# (upper bound in BPM, name); the last band is open-ended.
TEMPO_BANDS: tuple[tuple[float, str], ...] = (
    (90.0, "slow"),
    (110.0, "relaxed"),
    (128.0, "mid-tempo"),
    (145.0, "upbeat"),
    (float("inf"), "fast"),
)
# How much the features (bpm, loudness, energy, danceability) weigh against the embedding.
FEATURE_WEIGHT = 0.5


@dataclass(frozen=True)
class Cluster:
    """Rows of one cluster, nearest its centre first, and the cluster's name."""

    rows: list[int]
    title: str


def tempo_band(bpm: float) -> str:
    """``"upbeat (128-145 BPM)"`` for 132; ``"tempo unknown"`` for NaN."""
    if not np.isfinite(bpm):
        return "tempo unknown"
    low = 0.0
    for high, name in TEMPO_BANDS:
        if bpm < high:
            span = f"under {high:.0f}" if low == 0 else f"{low:.0f}+" if high == np.inf else None
            return f"{name} ({span or f'{low:.0f}-{high:.0f}'} BPM)"
        low = high
    raise AssertionError("unreachable")


def auto_k(n: int) -> int:
    """Clusters for ``n`` tracks when none is asked: about sqrt(n/2), between 2 and 12."""
    return max(1, min(n, max(2, min(12, round(np.sqrt(n / 2))))))


def design_matrix(embedding: np.ndarray, features: np.ndarray) -> np.ndarray:
    """``(n, d + f)``: unit embeddings and z-scored features (NaN -> the mean), each block
    scaled to unit total variance, the features then weighted by ``FEATURE_WEIGHT``."""
    unit, valid = unit_rows(embedding)
    if not valid.all():
        raise PlaylistError("every clustered track needs an embedding")
    feats = np.asarray(features, dtype=np.float64).copy()
    for j in range(feats.shape[1]):
        column = feats[:, j]
        mean = np.nanmean(column) if np.isfinite(column).any() else 0.0
        column[~np.isfinite(column)] = mean
        std = column.std()
        feats[:, j] = (column - mean) / std if std > 0 else 0.0
    blocks = []
    for block, weight in ((unit, 1.0), (feats, FEATURE_WEIGHT)):
        total = float(block.var(axis=0).sum())
        blocks.append(weight * block / np.sqrt(total) if total > 0 else block)
    return np.hstack(blocks)


def kmeans(
    *,
    embedding: np.ndarray,
    features: np.ndarray,
    top_tags: Sequence[Sequence[str]],
    k: int | None = None,
    seed: int = 0,
) -> list[Cluster]:
    """Cluster ``n`` rows into ``k`` groups (scikit-learn KMeans), largest first.

    Each cluster is named from the tags most over-represented in its tracks' top tags (the
    share in the cluster less the share overall) and its median tempo band.
    """
    from sklearn.cluster import KMeans

    n = len(top_tags)
    if n == 0:
        return []
    k = auto_k(n) if k is None else min(k, n)
    x = design_matrix(embedding, features)
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x)
    distances = model.transform(x)
    overall = Counter(tag for tags in top_tags for tag in tags[:3])
    clusters = []
    for label in range(k):
        rows = [int(i) for i in np.flatnonzero(model.labels_ == label)]
        rows.sort(key=lambda i: (distances[i, label], i))
        tempos = features[rows, 0][np.isfinite(features[rows, 0])]
        bpm = float(np.median(tempos)) if len(tempos) else float("nan")
        clusters.append(Cluster(rows, _title(rows, top_tags, overall, n, bpm)))
    clusters.sort(key=lambda c: (-len(c.rows), c.rows[0]))
    return clusters


def _title(
    rows: list[int], top_tags: Sequence[Sequence[str]], overall: Counter[str], n: int, bpm: float
) -> str:
    here = Counter(tag for i in rows for tag in top_tags[i][:3])
    lift = {tag: count / len(rows) - overall[tag] / n for tag, count in here.items()}
    best = sorted(here, key=lambda t: (-lift[t], -here[t], t))[:2]
    return f"{' & '.join(best) or 'untagged'} · {tempo_band(bpm)}"
