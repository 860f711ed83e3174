"""Reference outputs of the ORIGINAL MusiCNN checkpoint graphs, for tests/test_musicnn.py.

    python tools/musicnn_reference.py [--wheel-dir DIR] [--corpus DIR]

Imports each checkpoint's own MetaGraphDef (``.meta``, written by TensorFlow 1.12 during
training) in tf.compat.v1 graph mode, restores its variables, and runs up to 8 patches of
three corpus clips through it with ``is_training`` False. The patches are musicnn's own
front end: ``librosa.load(path, sr=16000)`` and ``extractor.batch_data``'s recipe. Writes
``tests/data/musicnn_reference.npz``: ``clips`` (paths relative to the corpus) and, per clip,
``{clip}/index`` (which patches), ``{clip}/patches``, ``{clip}/{model}/tags`` and
``{clip}/{model}/penultimate``.

Two things differ from running musicnn 0.1.0 as shipped, and are checked here:

- TensorFlow 2.21 refuses the ``.meta`` as written: the ``_output_shapes`` hints recorded on
  the training-gradient nodes (FusedBatchNormGrad) disagree with its shape inference. The
  hints are dropped before the import; nodes, attributes and variables are untouched.
- ``batch_data`` computes ``np.log10(10000 * mel16 + 1)`` on a float16 ``mel16``. Under numpy
  1.x, which musicnn was written for, value-based casting made that product float32; numpy 2
  keeps float16 and overflows to inf on loud frames. The recipe below makes the float32 explicit
  (bit-identical to numpy 1.26 running batch_data's line), and the script shows what the
  literal ``batch_data`` now produces under numpy 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import essentia  # noqa: F401  # before tensorflow: see playlista.worker
import librosa
import numpy as np
import tensorflow as tf
from convert_musicnn_weights import WHEEL_SHA256, musicnn_wheel
from tensorflow.core.protobuf import meta_graph_pb2

from playlista.models.frontend import MODEL_NAMES, N_MELS, N_TAGS, PATCH_FRAMES, SR

REPO = Path(__file__).resolve().parents[1]
CLIPS = (
    "good/fof/war_of_freedom_backing.ogg",
    "good/fof/war_of_freedom_full.ogg",
    "good/rendered/bach_bwv269.flac",
)
MAX_PATCHES = 8
# Found by listing the imported graph (printed below): train.py's placeholders and outputs,
# under tf.name_scope("model").
INPUT = "model/Placeholder:0"  # x, (None, 187, 96) float32
IS_TRAINING = "model/Placeholder_2:0"  # is_train, bool
TAGS = "model/Sigmoid:0"  # sigmoid(logits)
# backend()'s bn_dense: batch norm of the 200-unit relu layer, the extractor's "penultimate".
PENULTIMATE = "model/batch_normalization_10/batchnorm/add_1:0"


def batch_data_numpy1(path: Path) -> np.ndarray:
    """musicnn's ``extractor.batch_data(path, 187, 187)`` as it computes under numpy 1.x."""
    audio, sr = librosa.load(path, sr=SR)
    audio_rep = librosa.feature.melspectrogram(
        y=audio, sr=sr, hop_length=256, n_fft=512, n_mels=N_MELS
    ).T
    audio_rep = audio_rep.astype(np.float16)
    audio_rep = np.log10(np.float32(10000) * audio_rep.astype(np.float32) + np.float32(1))
    starts = range(0, audio_rep.shape[0] - PATCH_FRAMES + 1, PATCH_FRAMES)
    return np.stack([audio_rep[t : t + PATCH_FRAMES] for t in starts])


def original_graph(checkpoint_dir: Path) -> tuple[tf.Graph, tf.compat.v1.Session]:
    """The training graph of a checkpoint, imported from its .meta and restored."""
    meta = meta_graph_pb2.MetaGraphDef()
    meta.ParseFromString((checkpoint_dir / ".meta").read_bytes())
    version = meta.meta_info_def.tensorflow_version
    print(f"{checkpoint_dir.name}: .meta written by TensorFlow {version}")
    for node in meta.graph_def.node:
        if "_output_shapes" in node.attr:
            del node.attr["_output_shapes"]
    graph = tf.Graph()
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(meta)
        session = tf.compat.v1.Session(graph=graph)
        saver.restore(session, f"{checkpoint_dir}/")
    return graph, session


def check_tensors(graph: tf.Graph) -> None:
    """Print the graph's placeholders and outputs, and check the names used here."""
    for op in graph.get_operations():
        if op.type in ("Placeholder", "Sigmoid") or op.name.startswith(
            ("model/dense/", "model/batch_normalization_10/batchnorm/")
        ):
            print(f"  {op.type:12} {op.name} {[(t.dtype.name, t.shape) for t in op.outputs]}")
    x, is_training = graph.get_tensor_by_name(INPUT), graph.get_tensor_by_name(IS_TRAINING)
    assert x.dtype == tf.float32 and x.shape.as_list() == [None, PATCH_FRAMES, N_MELS]
    assert is_training.dtype == tf.bool
    tags = graph.get_tensor_by_name(TAGS)
    assert tags.shape.as_list() == [None, N_TAGS]
    assert tags.op.inputs[0].name == "model/dense_1/BiasAdd:0"
    # bn_dense = relu(dense) * scale + shift: the batch norm of the dense layer after its relu.
    penultimate = graph.get_tensor_by_name(PENULTIMATE)
    assert penultimate.op.inputs[0].op.inputs[0].name == "model/dense/Relu:0"


def run(session: tf.compat.v1.Session, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tags, penultimate = session.run(
        [TAGS, PENULTIMATE], feed_dict={INPUT: patches, IS_TRAINING: False}
    )
    return tags, penultimate


def show_numpy2_batch_data(
    batch_data, path: Path, patches: np.ndarray, session: tf.compat.v1.Session
) -> None:
    """What musicnn 0.1.0's own batch_data gives under numpy 2, next to the numpy 1.x recipe."""
    with np.errstate(over="ignore"):
        literal, _ = batch_data(str(path), PATCH_FRAMES, PATCH_FRAMES)
    finite = np.isfinite(literal)
    assert literal.shape == patches.shape
    # Where it does not overflow it agrees to float16's rounding of the log.
    assert np.allclose(literal[finite], patches[finite], rtol=2e-3, atol=1e-3)
    tags, _ = run(session, literal.astype(np.float32))
    print(
        f"  batch_data under numpy {np.__version__}: {(~finite).sum()} of {finite.size} values "
        f"inf, in {(~finite).any(axis=(1, 2)).sum()} of {len(literal)} patches; "
        f"{len(np.unique(tags.round(6), axis=0))} distinct tag rows "
        f"(numpy 1.x recipe: {len(np.unique(run(session, patches)[0].round(6), axis=0))})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel-dir", type=Path, help="an unpacked musicnn 0.1.0 wheel")
    default_corpus = os.environ.get("PLAYLISTA_CORPUS", REPO.parent / "shared" / "corpus")
    parser.add_argument("--corpus", type=Path, default=Path(default_corpus))
    parser.add_argument(
        "--out", type=Path, default=REPO / "tests" / "data" / "musicnn_reference.npz"
    )
    args = parser.parse_args()

    with musicnn_wheel(args.wheel_dir) as root:
        sys.path.insert(0, str(root))
        from musicnn.extractor import batch_data  # disables eager execution, as musicnn does

        graphs = {name: original_graph(root / "musicnn" / name) for name in MODEL_NAMES}
        for name, (graph, _) in graphs.items():
            print(f"{name} tensors:")
            check_tensors(graph)
        arrays: dict[str, np.ndarray] = {"clips": np.array(CLIPS)}
        for clip in CLIPS:
            all_patches = batch_data_numpy1(args.corpus / clip).astype(np.float32)
            index = np.unique(np.linspace(0, len(all_patches) - 1, MAX_PATCHES).round()).astype(int)
            print(f"{clip}: {len(all_patches)} patches, keeping {index.tolist()}")
            show_numpy2_batch_data(
                batch_data, args.corpus / clip, all_patches, graphs["MTT_musicnn"][1]
            )
            arrays[f"{clip}/index"] = index
            arrays[f"{clip}/patches"] = all_patches[index]
            for name, (_, session) in graphs.items():
                tags, penultimate = run(session, all_patches[index])
                arrays[f"{clip}/{name}/tags"] = tags
                arrays[f"{clip}/{name}/penultimate"] = penultimate
        arrays["provenance"] = np.array(
            json.dumps(
                {
                    "wheel_sha256": WHEEL_SHA256,
                    "tensors": {
                        "input": INPUT,
                        "is_training": IS_TRAINING,
                        "tags": TAGS,
                        "penultimate": PENULTIMATE,
                    },
                    "versions": {
                        "tensorflow": tf.__version__,
                        "numpy": np.__version__,
                        "librosa": librosa.__version__,
                    },
                }
            )
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
