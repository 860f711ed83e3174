"""Both MusiCNN models in one TensorFlow function, with their front ends computed fast and exactly.

:class:`MusicnnModels` computes what :class:`playlista.models.musicnn.MusiCNN` computes for
each model (the same function; float32 rounding aside, within 2e-5 of the checkpoint graph's
outputs), reordered so that it costs about half as much, both models in one call:

- **One front end for both models.** Each model's first layer is a batch norm of its input,
  a scalar ``a * x + b``. A convolution of zero-padded ``a * x + b`` is ``a`` times that of
  padded ``x`` plus ``b`` times that of the padding mask, which depends on the frame alone. So
  ``a`` goes into the kernels and ``b`` into a per-frame constant, and the two models' filter
  banks become one bank of twice the width on the same log-mel patch.
- **Max over frequency first.** Each front-end filter is followed by bias, relu, batch norm
  and a max over frequency. Those are monotonic per filter (decreasing where the norm's scale
  is negative, for which the kernel's sign is flipped), so the max is taken on the raw
  convolution and the rest runs on 187 values per filter instead of up to 96 times as many.
- **Timbral filters (7 frames x 38 and 67 bands, 81 % of the work) by Winograd's F(4, 7)**
  along time (:mod:`playlista.models.winograd`): 10 products for 4 frames instead of 28,
  each a matrix product over the filter's bands.
- **Temporal filters (128, 64, 32 frames per band) as block-Toeplitz products**: 8 output
  frames per row, so each matrix product reads an input window 8 frames longer than the
  filter instead of one row per frame.

The back end (mid-end convolutions, pooling, dense layers) is each model's own, as in
:func:`playlista.models.musicnn.back_end`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import essentia  # noqa: F401  # before tensorflow: see playlista.worker
import numpy as np
import tensorflow as tf

from playlista.errors import InvalidInputError
from playlista.models.frontend import (
    EMBEDDING_SIZE,
    LABELS,
    MODEL_NAMES,
    N_MELS,
    N_TAGS,
    PATCH_FRAMES,
    ModelName,
)
from playlista.models.musicnn import (
    BN_EPSILON,
    back_end,
    batch_norm,
    check_name,
    check_weights,
    read_weights,
)
from playlista.models.winograd import minimal_filter

# Winograd F(4, 7) on these points: measured on real patches, its float32 error on the
# timbral convolutions is 7.6e-6 (direct float32: 1.8e-6; F(6, 7): 1.3e-5).
TILE = 4
WINOGRAD_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 0.75, -0.75)
TILES = -(-PATCH_FRAMES // TILE)  # 47 tiles of 4 frames cover the 187
TEMPORAL_BLOCK = 8  # output frames per row of the temporal filters' products
TIMBRAL = {"conv2d": "batch_normalization_1", "conv2d_1": "batch_normalization_2"}
TEMPORAL = {
    "conv2d_2": "batch_normalization_3",
    "conv2d_3": "batch_normalization_4",
    "conv2d_4": "batch_normalization_5",
}


class MusicnnModels:
    """Several pretrained MusiCNN models run as one: ``MusicnnModels.load()``."""

    def __init__(
        self, weights: Mapping[ModelName, Mapping[str, np.ndarray]], *, jit_compile: bool = False
    ) -> None:
        """Build on each model's ``weights``, which must hold exactly its :data:`WEIGHT_SHAPES`."""
        self.names: tuple[ModelName, ...] = tuple(weights)
        self.labels = {name: LABELS[name] for name in self.names}
        for name, w in weights.items():
            check_name(name)
            check_weights(w, source=name)
        front = _front_constants([weights[name] for name in self.names])
        tails = [{k: tf.constant(v) for k, v in weights[name].items()} for name in self.names]
        self._run = tf.function(
            lambda x: _forward(front, tails, x),
            input_signature=[tf.TensorSpec((None, PATCH_FRAMES, N_MELS), tf.float32)],
            jit_compile=jit_compile,
        )
        self._run.get_concrete_function()  # trace now, not on the first patch

    @classmethod
    def load(
        cls,
        names: tuple[ModelName, ...] = MODEL_NAMES,
        *,
        weights_dir: Path | None = None,
        jit_compile: bool = False,
    ) -> MusicnnModels:
        """The models ``names`` on their shipped weights (or the npz files in ``weights_dir``)."""
        weights = {
            name: read_weights(name, path=weights_dir / f"{name}.npz" if weights_dir else None)
            for name in names
        }
        return cls(weights, jit_compile=jit_compile)

    def predict(
        self, patches: np.ndarray, *, batch_size: int = 1
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per model, tags [shape=(n, 50)] and embeddings [shape=(n, 200)] of ``patches``.

        ``patches`` [shape=(n, 187, 96)]; ``batch_size`` patches go through at a time. One
        at a time is as fast as more on one thread, and holds the least memory.
        """
        patches = np.asarray(patches, dtype=np.float32)
        if patches.ndim != 3 or patches.shape[1:] != (PATCH_FRAMES, N_MELS):
            raise InvalidInputError(f"patches must be (n, 187, 96), got {patches.shape}")
        if not np.isfinite(patches).all():
            raise InvalidInputError("patches must be finite")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {
            name: (
                np.empty((len(patches), N_TAGS), np.float32),
                np.empty((len(patches), EMBEDDING_SIZE), np.float32),
            )
            for name in self.names
        }
        for start in range(0, len(patches), batch_size):
            batch = slice(start, start + batch_size)
            for name, (tags, embeddings) in zip(self.names, self._run(patches[batch]), strict=True):
                out[name][0][batch] = tags.numpy()
                out[name][1][batch] = embeddings.numpy()
        return out


def _scale_shift(w: Mapping[str, np.ndarray], norm: str) -> tuple[np.ndarray, np.ndarray]:
    """A batch norm as ``x * scale + shift``, in float64."""
    scale = w[f"{norm}/gamma"] / np.sqrt(
        w[f"{norm}/moving_variance"].astype(np.float64) + BN_EPSILON
    )
    return scale, w[f"{norm}/beta"] - w[f"{norm}/moving_mean"] * scale


def _front_constants(weights: list[Mapping[str, np.ndarray]]) -> dict[str, tf.Tensor]:
    """Kernels of every model side by side, input norm and signs folded in, and the constants.

    ``{conv}/sign`` and ``{conv}/offset`` [shape=(187, filters of all models)] turn the max
    over frequency of the folded convolution into the original layer's pre-activation max.
    """
    at, g, bt = minimal_filter(TILE, 7, WINOGRAD_POINTS)
    out = {"winograd/AT": at, "winograd/BT": bt}
    for conv, norm in {**TIMBRAL, **TEMPORAL}.items():
        kernels, signs, offsets = [], [], []
        for w in weights:
            (a,), (b,) = _scale_shift(w, "batch_normalization")
            sign = np.where(_scale_shift(w, norm)[0] < 0, -1.0, 1.0)
            kernel = w[f"{conv}/kernel"][:, :, 0, :].astype(np.float64)  # (time, bands, filters)
            taps = len(kernel)
            before = 3 if conv in TIMBRAL else (taps - 1) // 2  # the original's time padding
            # Which taps of frame t read a real frame rather than padding.
            frame = np.arange(PATCH_FRAMES)[:, None] + np.arange(taps) - before
            real = ((frame >= 0) & (frame < PATCH_FRAMES)).astype(np.float64)
            offsets.append(b * real @ kernel.sum(axis=1) + w[f"{conv}/bias"])
            kernels.append(kernel * (a * sign))
            signs.append(np.broadcast_to(sign, (PATCH_FRAMES, len(sign))))
        kernel = np.concatenate(kernels, axis=-1)
        if conv in TIMBRAL:  # (10, bands, filters): Winograd's transformed taps
            out[f"{conv}/kernel"] = np.einsum("ut,tkf->ukf", g, kernel)
        else:  # (taps + 7, 8 frames * filters): row p holds the kernel shifted by p frames
            taps, filters = kernel.shape[0], kernel.shape[2]
            block = np.zeros((taps + TEMPORAL_BLOCK - 1, TEMPORAL_BLOCK, filters))
            for p in range(TEMPORAL_BLOCK):
                block[p : p + taps, p] = kernel[:, 0]
            out[f"{conv}/kernel"] = block.reshape(len(block), -1)
        out[f"{conv}/sign"] = np.concatenate(signs, axis=-1)
        out[f"{conv}/offset"] = np.concatenate(offsets, axis=-1)
    return {key: tf.constant(value, tf.float32) for key, value in out.items()}


def _forward(
    c: Mapping[str, tf.Tensor], tails: Sequence[Mapping[str, tf.Tensor]], x: tf.Tensor
) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """Per model, sigmoid tags (b, 50) and penultimate layer (b, 200) of patches ``x``."""
    extremes = {**_timbral(c, x), **_temporal(c, x)}  # (b, 187, filters of all models)
    outputs = []
    for i, w in enumerate(tails):
        parts = []
        for conv, norm in {**TIMBRAL, **TEMPORAL}.items():
            width = extremes[conv].shape[-1] // len(tails)
            own = slice(i * width, (i + 1) * width)
            pre = extremes[conv][..., own] * c[f"{conv}/sign"][:, own] + c[f"{conv}/offset"][:, own]
            parts.append(batch_norm(w, norm, tf.nn.relu(pre)))
        outputs.append(back_end(w, tf.concat(parts, axis=2)))
    return outputs


def _timbral(c: Mapping[str, tf.Tensor], x: tf.Tensor) -> dict[str, tf.Tensor]:
    """Max over frequency of the folded 7-frame timbral convolutions, by Winograd F(4, 7)."""
    batch, n = tf.shape(x)[0], TILE + 6
    padded = tf.pad(x, [[0, 0], [3, TILES * TILE + 3 - PATCH_FRAMES], [0, 0]])
    tiles = tf.signal.frame(padded, n, TILE, axis=1)  # (b, 47, 10, 96)
    transformed = tf.einsum("us,btsj->ubtj", c["winograd/BT"], tiles)  # (10, b, 47, 96)
    out = {}
    for conv in TIMBRAL:
        kernel = c[f"{conv}/kernel"]  # (10, bands, filters)
        bands, filters = kernel.shape[1], kernel.shape[2]
        positions = N_MELS - bands + 1
        windows = tf.reshape(tf.signal.frame(transformed, bands, 1, axis=-1), (n, -1, bands))
        products = tf.matmul(windows, kernel)  # (10, b * 47 * positions, filters)
        frames = tf.tensordot(c["winograd/AT"], products, axes=[[1], [0]])  # (4, ..., filters)
        peak = tf.reduce_max(tf.reshape(frames, (TILE, -1, positions, filters)), axis=2)
        peak = tf.transpose(tf.reshape(peak, (TILE, batch, TILES, filters)), (1, 2, 0, 3))
        out[conv] = tf.reshape(peak, (batch, TILES * TILE, filters))[:, :PATCH_FRAMES]
    return out


def _temporal(c: Mapping[str, tf.Tensor], x: tf.Tensor) -> dict[str, tf.Tensor]:
    """Max over frequency of the folded temporal convolutions, 8 frames per matrix row."""
    batch = tf.shape(x)[0]
    blocks = -(-PATCH_FRAMES // TEMPORAL_BLOCK)
    by_band = tf.transpose(x, (0, 2, 1))  # (b, 96, 187)
    out = {}
    for conv in TEMPORAL:
        kernel = c[f"{conv}/kernel"]  # (taps + 7, 8 * filters)
        window = kernel.shape[0]
        taps, filters = window - TEMPORAL_BLOCK + 1, kernel.shape[1] // TEMPORAL_BLOCK
        before = (taps - 1) // 2  # "SAME" padding
        after = (blocks - 1) * TEMPORAL_BLOCK + window - PATCH_FRAMES - before
        padded = tf.pad(by_band, [[0, 0], [0, 0], [before, after]])
        rows = tf.signal.frame(padded, window, TEMPORAL_BLOCK, axis=-1)  # (b, 96, 24, window)
        y = tf.reshape(tf.reshape(rows, (-1, window)) @ kernel, (batch, N_MELS, -1, filters))
        out[conv] = tf.reduce_max(y[:, :, :PATCH_FRAMES], axis=1)
    return out
