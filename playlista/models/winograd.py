"""Winograd's minimal filtering F(m, r): m outputs of an r-tap correlation from m + r - 1 products.

``y = AT @ ((G @ g) * (BT @ d))`` gives ``y[i] = sum_k d[i + k] * g[k]`` for i < m, for a tile
``d`` of m + r - 1 inputs and taps ``g`` (Lavin and Gray, 2016). The matrices come from
Lagrange interpolation at ``points`` and the point at infinity; :func:`minimal_filter` solves
for ``BT`` in float64 so that the identity holds exactly for any set of distinct points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def minimal_filter(
    m: int, r: int, points: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``AT`` [shape=(m, n)], ``G`` [shape=(n, r)] and ``BT`` [shape=(n, n)], n = m + r - 1.

    ``points`` are the n - 1 distinct finite interpolation points.
    """
    n = m + r - 1
    p = np.asarray(points, dtype=np.float64)
    if len(p) != n - 1 or len(set(p.tolist())) != n - 1:
        raise ValueError(f"F({m}, {r}) needs {n - 1} distinct points, got {list(points)}")
    at, g = np.zeros((m, n)), np.zeros((n, r))
    for j, pj in enumerate(p):
        at[:, j] = pj ** np.arange(m)
        g[j] = pj ** np.arange(r) / np.prod(pj - np.delete(p, j))
    at[m - 1, n - 1] = g[n - 1, r - 1] = 1.0
    # sum_u AT[i, u] G[u, k] BT[u, s] = [s == i + k] for every i, k, s: linear in BT.
    system = np.einsum("iu,uk,uv,st->iksvt", at, g, np.eye(n), np.eye(n)).reshape(m * r * n, -1)
    target = np.zeros((m, r, n))
    for i in range(m):
        target[i, np.arange(r), i + np.arange(r)] = 1.0
    bt = np.linalg.lstsq(system, target.ravel(), rcond=None)[0].reshape(n, n)
    if not np.allclose(system @ bt.ravel(), target.ravel(), atol=1e-9):
        raise ArithmeticError(f"no F({m}, {r}) on points {list(points)}")
    return at, g, bt
