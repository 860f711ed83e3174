"""MusiCNN's runtimes side by side: CPU per patch, exactness, start-up and memory.

    python bench/musicnn_runtimes.py [--repeats 5] [--json FILE]

Each configuration runs in a fresh process on one thread: the network as written
(:class:`MusiCNN`, one call per model) and the fused form the workers run
(:class:`MusicnnModels`, both models in one call), each under TensorFlow's default kernels,
with oneDNN (``TF_ENABLE_ONEDNN_OPTS=1``), compiled with XLA (``jit_compile``) with and
without oneDNN, and converted by ``tf.lite.TFLiteConverter`` and run by LiteRT (XNNPACK) in
a process that never imports TensorFlow. Per configuration: the CPU time (process time,
median of ``--repeats``) per patch and per model on the reference patches of
``tests/data/musicnn_reference.npz`` one at a time and 8 at a time, the largest difference of
the tags and embeddings from the original checkpoint graph's, the CPU and wall time of the
imports and of loading and warming the models, and the resident memory after that.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "data" / "musicnn_reference.npz"
NAMES = ("MTT_musicnn", "MSD_musicnn")
RUNTIMES = {
    "TF default": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "TF oneDNN": {"TF_ENABLE_ONEDNN_OPTS": "1"},
    "TF XLA": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "TF XLA oneDNN": {"TF_ENABLE_ONEDNN_OPTS": "1"},
    "LiteRT XNNPACK": {},
}
Predict = Callable[[np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as npz:
        return {key: npz[key] for key in npz.files}


def tensorflow_predictor(form: str, runtime: str) -> tuple[Predict, float, float]:
    """The predictor, and the CPU and wall seconds of importing TensorFlow."""
    cpu, wall = time.process_time(), time.perf_counter()
    import essentia  # noqa: F401  # before tensorflow
    import tensorflow as tf

    imported = (time.process_time() - cpu, time.perf_counter() - wall)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from playlista.models.fused import MusicnnModels
    from playlista.models.musicnn import MusiCNN

    jit = "XLA" in runtime
    if form == "fused":
        return MusicnnModels.load(jit_compile=jit).predict, *imported
    models = {name: MusiCNN.load(name, jit_compile=jit) for name in NAMES}
    return (
        lambda x: {name: m.predict(x, batch_size=len(x)) for name, m in models.items()}
    ), *imported


def convert(form: str, out_dir: Path) -> None:
    """Write ``{form}_{batch}.tflite`` for batches of 1 and 8, from the TensorFlow functions."""
    import essentia  # noqa: F401
    import tensorflow as tf

    from playlista.models.fused import MusicnnModels
    from playlista.models.musicnn import MusiCNN

    if form == "fused":
        run = MusicnnModels.load()._run
        functions = [lambda x: [t for pair in run(x) for t in pair]]
    else:
        functions = [MusiCNN.load(name)._run for name in NAMES]
    for batch in (1, 8):
        spec = tf.TensorSpec((batch, 187, 96), tf.float32)
        for i, fn in enumerate(functions):
            concrete = tf.function(fn).get_concrete_function(spec)
            blob = tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert()
            (out_dir / f"{form}{i}_{batch}.tflite").write_bytes(blob)


def litert_predictor(form: str, model_dir: Path) -> tuple[Predict, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    from ai_edge_litert.interpreter import Interpreter

    imported = (time.process_time() - cpu, time.perf_counter() - wall)
    count = 1 if form == "fused" else 2
    interpreters = {
        (i, batch): Interpreter(
            model_path=str(model_dir / f"{form}{i}_{batch}.tflite"), num_threads=1
        )
        for i in range(count)
        for batch in (1, 8)
    }
    for interpreter in interpreters.values():
        interpreter.allocate_tensors()

    def predict(x: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        outputs: list[np.ndarray] = []
        for i in range(count):
            interpreter = interpreters[(i, len(x))]
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
            interpreter.invoke()
            details = sorted(interpreter.get_output_details(), key=lambda d: d["name"])
            outputs += [interpreter.get_tensor(d["index"]) for d in details]
        # Outputs come back as Identity, Identity_1, ...: tags then embedding, per model.
        return {name: (outputs[2 * k], outputs[2 * k + 1]) for k, name in enumerate(NAMES)}

    return predict, *imported


def measure(form: str, runtime: str, model_dir: Path, repeats: int) -> dict[str, float]:
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    if runtime.startswith("LiteRT"):
        predict, import_cpu, import_wall = litert_predictor(form, model_dir)
    else:
        predict, import_cpu, import_wall = tensorflow_predictor(form, runtime)
    ref = reference()
    patches = np.concatenate([ref[f"{clip}/patches"] for clip in ref["clips"]])
    predict(patches[:1])
    predict(patches[:8])
    figures = {
        "import CPU s": import_cpu,
        "import wall s": import_wall,
        "import+load+warm CPU s": time.process_time() - started_cpu,
        "import+load+warm wall s": time.perf_counter() - started_wall,
        "RSS MB": rss_mb(),
    }
    for batch in (1, 8):
        times = []
        for _ in range(repeats):
            started = time.process_time()
            for start in range(0, 8, batch):
                predict(patches[start : start + batch])
            times.append(time.process_time() - started)
        figures[f"ms/patch/model, batch {batch}"] = 1000 * statistics.median(times) / 8 / 2
    worst = {"tags": 0.0, "penultimate": 0.0}
    for clip in ref["clips"]:
        outputs = predict(ref[f"{clip}/patches"])
        for name, (tags, embeddings) in outputs.items():
            for kind, got in (("tags", tags), ("penultimate", embeddings)):
                diff = float(np.abs(got - ref[f"{clip}/{name}/{kind}"]).max())
                worst[kind] = max(worst[kind], diff)
    figures["max |tags diff|"] = worst["tags"]
    figures["max |embedding diff|"] = worst["penultimate"]
    figures["peak RSS MB"] = _peak_rss_mb()
    return figures


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--one", nargs=3, metavar=("FORM", "RUNTIME", "MODEL_DIR"))
    parser.add_argument("--convert", nargs=2, metavar=("FORM", "OUT_DIR"))
    args = parser.parse_args()
    if args.one:
        form, runtime, model_dir = args.one
        print(json.dumps(measure(form, runtime, Path(model_dir), args.repeats)))
        return
    if args.convert:
        convert(args.convert[0], Path(args.convert[1]))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}  # fmt: skip
    me = [sys.executable, __file__]
    rows = []
    with tempfile.TemporaryDirectory() as model_dir:
        for form in ("plain", "fused"):
            subprocess.run([*me, "--convert", form, model_dir], env=env, check=True)
            for runtime, extra in RUNTIMES.items():
                done = subprocess.run(
                    [*me, "--one", form, runtime, model_dir, "--repeats", str(args.repeats)],
                    env={**env, **extra},
                    check=True,
                    capture_output=True,
                    text=True,
                )
                label = (
                    "network as written, a call per model"
                    if form == "plain"
                    else "fused, both models in one call"
                )
                rows.append(
                    {"form": label, "runtime": runtime, **json.loads(done.stdout.splitlines()[-1])}
                )
                print(rows[-1], flush=True)
    columns = list(rows[0])
    print("\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        cells = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
