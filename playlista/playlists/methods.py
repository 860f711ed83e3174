"""The ordering methods, as pure functions: numpy in, lists of row indices out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from playlista import camelot
from playlista.errors import PlaylistError


def unit_rows(embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(n, d)`` -> the rows scaled to length 1, and a ``(n,)`` mask of usable rows."""
    embedding = np.asarray(embedding, dtype=np.float64)
    if embedding.ndim != 2:
        raise PlaylistError(f"embeddings must be (n, d), not {embedding.shape}")
    norms = np.linalg.norm(embedding, axis=1)
    valid = np.isfinite(norms) & (norms > 0)
    unit = np.zeros_like(embedding)
    unit[valid] = embedding[valid] / norms[valid, None]
    return unit, valid


def similarity_to(embedding: np.ndarray, seeds: Sequence[int]) -> np.ndarray:
    """``(n,)`` mean cosine similarity of every row to the seed rows (NaN: no embedding)."""
    unit, valid = unit_rows(embedding)
    if not seeds or not all(valid[s] for s in seeds):
        raise PlaylistError("every seed needs an embedding")
    score = (unit @ unit[list(seeds)].T).mean(axis=1)
    score[~valid] = np.nan
    return score


def similar(
    *,
    embedding: np.ndarray,
    seeds: Sequence[int],
    artists: Sequence[str | None],
    albums: Sequence[str | None],
    n: int = 25,
    artist_gap: int = 3,
    album_gap: int = 2,
) -> list[int]:
    """The ``n`` rows most like the seeds, most similar first, with artist and album spacing.

    Walking down the similarity ranking, a row is taken only if its artist is not among the
    last ``artist_gap`` taken and its album not among the last ``album_gap``; when no row left
    qualifies, the most similar one left is taken. Seeds are not in the result. An unknown
    artist or album (None) clashes with nothing.
    """
    score = similarity_to(embedding, seeds)
    order = [int(i) for i in np.argsort(-np.nan_to_num(score, nan=-np.inf), kind="stable")]
    left = [i for i in order if np.isfinite(score[i]) and i not in set(seeds)]
    return space_out(left, artists=artists, albums=albums, n=n, gaps=(artist_gap, album_gap))


def space_out(
    ranked: Sequence[int],
    *,
    artists: Sequence[str | None],
    albums: Sequence[str | None],
    n: int,
    gaps: tuple[int, int],
) -> list[int]:
    """Take up to ``n`` of ``ranked``, best first, keeping same artists/albums apart."""
    left, chosen = list(ranked), list[int]()
    while left and len(chosen) < n:
        recent_artists = {artists[i] for i in chosen[-gaps[0] :]} if gaps[0] else set()
        recent_albums = {albums[i] for i in chosen[-gaps[1] :]} if gaps[1] else set()
        pick = next(
            (
                i
                for i in left
                if (artists[i] is None or artists[i] not in recent_artists)
                and (albums[i] is None or albums[i] not in recent_albums)
            ),
            left[0],
        )
        chosen.append(pick)
        left.remove(pick)
    return chosen


def path(*, embedding: np.ndarray, start: int, end: int, n: int = 10) -> list[int]:
    """A chain of ``n`` rows from ``start`` to ``end`` through the embedding space.

    Step ``t`` takes the unused row nearest (by cosine) to the point ``t/(n-1)`` of the way
    along the great circle from ``start`` to ``end``, so the chain moves steadily from one
    to the other. Starts with ``start``, ends with ``end``; shorter if rows run out.
    """
    unit, valid = unit_rows(embedding)
    if start == end:
        raise PlaylistError("a path needs two different tracks")
    if not (valid[start] and valid[end]):
        raise PlaylistError("both ends of a path need an embedding")
    n = max(2, min(n, int(valid.sum())))
    a, b = unit[start], unit[end]
    angle = float(np.arccos(np.clip(a @ b, -1.0, 1.0)))
    used = ~valid
    used[[start, end]] = True
    chain = [start]
    for t in range(1, n - 1):
        frac = t / (n - 1)
        if angle < 1e-9:
            target = a
        else:  # spherical interpolation: the unit vector `frac` of the way from a to b
            target = (np.sin((1 - frac) * angle) * a + np.sin(frac * angle) * b) / np.sin(angle)
        score = np.where(used, -np.inf, unit @ target)
        pick = int(np.argmax(score))
        chain.append(pick)
        used[pick] = True
    return [*chain, end]


def harmonic(
    *, camelot_codes: Sequence[str | None], bpm: np.ndarray, start: int | None = None
) -> list[int]:
    """Order rows for mixing: each next track a Camelot neighbour or the same key if one is
    left (the closest in BPM among those), else the nearest key on the wheel, then BPM.

    Starts at ``start`` or the slowest track. Rows without a key or a BPM are left out.
    """
    bpm = np.asarray(bpm, dtype=np.float64)
    usable = [
        i for i, code in enumerate(camelot_codes) if camelot.parse(code) and np.isfinite(bpm[i])
    ]
    if not usable:
        return []
    if start is not None and start not in usable:
        raise PlaylistError("the first track of a harmonic set needs a key and a BPM")
    current = start if start is not None else min(usable, key=lambda i: (bpm[i], i))
    left = [i for i in usable if i != current]
    order = [current]
    while left:
        here = camelot_codes[current]
        near = [i for i in left if camelot.compatible(here, camelot_codes[i])]
        pool = near or left

        at, penalty = bpm[current], 0.0 if near else 8.0  # BPM a wheel step is worth
        current = min(
            pool,
            key=lambda i: (
                abs(bpm[i] - at) + penalty * (camelot.distance(here, camelot_codes[i]) or 0),
                i,
            ),
        )
        order.append(current)
        left.remove(current)
    return order
