"""The MusiCNN music taggers in plain TensorFlow 2, with their original pretrained weights.

MusiCNN (Pons and Serra, 2019; github.com/jordipons/musicnn) tags 3-second log-mel patches
with 50 tags learnt on MagnaTagATune (``MTT_musicnn``) or the Million Song Dataset
(``MSD_musicnn``); its 200-unit penultimate layer is a general-purpose music embedding.
The network here is ``build_musicnn`` of musicnn 0.1.0's ``models.py`` in inference form
(batch norm from its moving averages, no dropout), run on the checkpoint variables that
``tools/convert_musicnn_weights.py`` stored in ``weights/``. ``tests/test_musicnn.py`` checks
it against the original checkpoint graph.

:mod:`playlista.models.frontend` computes the models' input; :meth:`MusiCNN.predict` returns
tags and embeddings per patch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import essentia  # noqa: F401  # before tensorflow: see playlista.worker
import numpy as np
import tensorflow as tf

from playlista.errors import InvalidInputError, PlaylistaError
from playlista.models.frontend import (
    EMBEDDING_SIZE,
    LABELS,
    MODEL_NAMES,
    N_MELS,
    N_TAGS,
    PATCH_FRAMES,
    ModelName,
)

BN_EPSILON = 1e-3  # tf.layers.batch_normalization's default, which the models were trained with

WEIGHTS_DIR = Path(__file__).parent / "weights"

# Variables are named as tf.layers named them, in the order build_musicnn creates its layers.
_KERNELS = {
    "conv2d": (7, 38, 1, 204),  # timbral: 7 frames x 40 % of the mel bands
    "conv2d_1": (7, 67, 1, 204),  # timbral: 7 frames x 70 % of the mel bands
    "conv2d_2": (128, 1, 1, 51),  # temporal
    "conv2d_3": (64, 1, 1, 51),
    "conv2d_4": (32, 1, 1, 51),
    "conv2d_5": (7, 561, 1, 64),  # mid-end, across the 561 front-end features
    "conv2d_6": (7, 64, 1, 64),
    "conv2d_7": (7, 64, 1, 64),
    "dense": (1506, EMBEDDING_SIZE),  # max and mean over time of 753 features
    "dense_1": (EMBEDDING_SIZE, N_TAGS),
}
_NORMALISED_WIDTHS = (1, 204, 204, 51, 51, 51, 64, 64, 64, 1506, EMBEDDING_SIZE)
_BATCH_NORMS = {
    f"batch_normalization{f'_{i}' if i else ''}": width
    for i, width in enumerate(_NORMALISED_WIDTHS)
}
WEIGHT_SHAPES: dict[str, tuple[int, ...]] = {
    **{f"{layer}/kernel": shape for layer, shape in _KERNELS.items()},
    **{f"{layer}/bias": shape[-1:] for layer, shape in _KERNELS.items()},
    **{
        f"{layer}/{part}": (width,)
        for layer, width in _BATCH_NORMS.items()
        for part in ("beta", "gamma", "moving_mean", "moving_variance")
    },
}


class MusiCNN:
    """One pretrained MusiCNN, built once and reused: ``MusiCNN.load("MSD_musicnn")``."""

    def __init__(
        self,
        name: ModelName,
        weights: Mapping[str, np.ndarray],
        *,
        source: str = "",
        jit_compile: bool = False,
    ) -> None:
        """Build the network on ``weights``, which must hold exactly :data:`WEIGHT_SHAPES`.

        ``jit_compile`` compiles it with XLA.
        """
        check_name(name)
        check_weights(weights, source=source or name)
        self.name = name
        self.labels = LABELS[name]
        constants = {key: tf.constant(value) for key, value in weights.items()}
        self._run = tf.function(
            lambda x: _forward(constants, x),
            input_signature=[tf.TensorSpec((None, PATCH_FRAMES, N_MELS), tf.float32)],
            jit_compile=jit_compile,
        )
        self._run.get_concrete_function()  # trace now, not on the first patch

    @classmethod
    def load(
        cls, name: ModelName, *, path: str | Path | None = None, jit_compile: bool = False
    ) -> MusiCNN:
        """The model ``name`` on its shipped weights, or on the npz file ``path`` instead."""
        weights = read_weights(name, path=path)
        return cls(name, weights, source=str(path or name), jit_compile=jit_compile)

    def predict(self, patches: np.ndarray, *, batch_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Tag probabilities [shape=(n, 50)] and embeddings [shape=(n, 200)] of ``patches``.

        ``patches`` [shape=(n, 187, 96)] come from :func:`log_mel_patches`. The embedding is the
        penultimate layer after its batch norm, the tensor musicnn's extractor returns as
        ``penultimate``. ``batch_size`` patches go through the network at a time; on one thread
        larger batches are hardly faster and hold far more memory for their activations.
        """
        patches = np.asarray(patches, dtype=np.float32)
        if patches.ndim != 3 or patches.shape[1:] != (PATCH_FRAMES, N_MELS):
            raise InvalidInputError(f"patches must be (n, 187, 96), got {patches.shape}")
        if not np.isfinite(patches).all():
            raise InvalidInputError("patches must be finite")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")
        tags = np.empty((len(patches), N_TAGS), np.float32)
        embeddings = np.empty((len(patches), EMBEDDING_SIZE), np.float32)
        for start in range(0, len(patches), batch_size):
            batch_tags, batch_embeddings = self._run(patches[start : start + batch_size])
            tags[start : start + batch_size] = batch_tags.numpy()
            embeddings[start : start + batch_size] = batch_embeddings.numpy()
        return tags, embeddings


def read_weights(name: ModelName, *, path: str | Path | None = None) -> dict[str, np.ndarray]:
    """The checked weights of model ``name``: shipped, or from the npz file ``path``."""
    check_name(name)
    path = Path(path) if path is not None else WEIGHTS_DIR / f"{name}.npz"
    with np.load(path) as npz:
        weights = {key: npz[key] for key in npz.files}
    check_weights(weights, source=str(path))
    return weights


def check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise PlaylistaError(f"no MusiCNN model {name!r}; there are {MODEL_NAMES}")


def check_weights(weights: Mapping[str, np.ndarray], *, source: str) -> None:
    """Raise unless ``weights`` hold exactly :data:`WEIGHT_SHAPES`, finite float32."""
    missing = sorted(WEIGHT_SHAPES.keys() - weights.keys())
    unused = sorted(weights.keys() - WEIGHT_SHAPES.keys())
    wrong = [
        f"{key} is {weights[key].dtype}{weights[key].shape}, not float32{shape}"
        for key, shape in WEIGHT_SHAPES.items()
        if key in weights and (weights[key].shape != shape or weights[key].dtype != np.float32)
    ]
    non_finite = [
        key for key in WEIGHT_SHAPES.keys() & weights.keys() if not np.isfinite(weights[key]).all()
    ]
    problems = [
        *([f"missing {missing}"] if missing else []),
        *([f"not part of the network {unused}"] if unused else []),
        *wrong,
        *([f"non-finite values in {sorted(non_finite)}"] if non_finite else []),
    ]
    if problems:
        raise PlaylistaError(f"{source}: not MusiCNN weights: {'; '.join(problems)}")


def _forward(w: Mapping[str, tf.Tensor], x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Sigmoid tags (b, 50) and penultimate layer (b, 200) of log-mel patches ``x`` (b, 187, 96)."""
    x = batch_norm(w, "batch_normalization", x[..., None])  # (b, 187, 96, 1)
    padded = _pad_time(x)
    front = tf.concat(
        [
            _front_end(w, "conv2d", "batch_normalization_1", padded, "VALID"),  # (b, 187, 204)
            _front_end(w, "conv2d_1", "batch_normalization_2", padded, "VALID"),
            _front_end(w, "conv2d_2", "batch_normalization_3", x, "SAME"),  # (b, 187, 51)
            _front_end(w, "conv2d_3", "batch_normalization_4", x, "SAME"),
            _front_end(w, "conv2d_4", "batch_normalization_5", x, "SAME"),
        ],
        axis=2,
    )  # (b, 187, 561)
    return back_end(w, front)


def back_end(w: Mapping[str, tf.Tensor], front: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Sigmoid tags (b, 50) and penultimate layer (b, 200) from front-end features (b, 187, 561).

    The mid-end's three 7-frame convolutions, max and mean over time, the two dense layers.
    """
    mid_1 = _mid_end(w, "conv2d_5", "batch_normalization_6", front)  # (b, 187, 64)
    mid_2 = _mid_end(w, "conv2d_6", "batch_normalization_7", mid_1) + mid_1
    mid_3 = _mid_end(w, "conv2d_7", "batch_normalization_8", mid_2) + mid_2
    features = tf.concat([front, mid_1, mid_2, mid_3], axis=2)  # (b, 187, 753)
    # Max and mean over time, interleaved per feature as the original's flatten leaves them.
    pooled = tf.stack([tf.reduce_max(features, 1), tf.reduce_mean(features, 1)], axis=2)
    pooled = batch_norm(w, "batch_normalization_9", tf.reshape(pooled, (-1, 2 * features.shape[2])))
    hidden = tf.nn.relu(pooled @ w["dense/kernel"] + w["dense/bias"])
    penultimate = batch_norm(w, "batch_normalization_10", hidden)  # (b, 200)
    logits = penultimate @ w["dense_1/kernel"] + w["dense_1/bias"]
    return tf.sigmoid(logits), penultimate


def _front_end(
    w: Mapping[str, tf.Tensor], conv: str, norm: str, x: tf.Tensor, padding: str
) -> tf.Tensor:
    """One front-end filter bank on ``x`` (b, t, 96, 1): conv, relu, norm, max over frequency."""
    y = tf.nn.conv2d(x, w[f"{conv}/kernel"], strides=1, padding=padding) + w[f"{conv}/bias"]
    # Max-pooling across the whole frequency axis, as the original does, is a max over it.
    return tf.reduce_max(batch_norm(w, norm, tf.nn.relu(y)), axis=2)


def _mid_end(w: Mapping[str, tf.Tensor], conv: str, norm: str, x: tf.Tensor) -> tf.Tensor:
    """A 7-frame convolution across all features of ``x`` (b, 187, c), relu, norm: (b, 187, 64).

    The original runs it as a conv2d over a one-channel image as wide as ``c`` and transposes
    the result; as a conv1d with ``c`` input channels it is the same sum, with no transposes.
    """
    kernel = tf.squeeze(w[f"{conv}/kernel"], axis=2)  # (7, c, 1, 64) -> (7, c, 64)
    y = tf.nn.conv1d(_pad_time(x), kernel, stride=1, padding="VALID") + w[f"{conv}/bias"]
    return batch_norm(w, norm, tf.nn.relu(y))


def _pad_time(x: tf.Tensor) -> tf.Tensor:
    """Three zero frames either side of axis 1, so 7-frame convolutions keep 187 frames."""
    return tf.pad(x, [[0, 0], [3, 3]] + [[0, 0]] * (len(x.shape) - 2))


def batch_norm(w: Mapping[str, tf.Tensor], name: str, x: tf.Tensor) -> tf.Tensor:
    return tf.nn.batch_normalization(
        x,
        mean=w[f"{name}/moving_mean"],
        variance=w[f"{name}/moving_variance"],
        offset=w[f"{name}/beta"],
        scale=w[f"{name}/gamma"],
        variance_epsilon=BN_EPSILON,
    )
