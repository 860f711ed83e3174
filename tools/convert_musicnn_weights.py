"""Convert the MusiCNN checkpoints of PyPI's musicnn 0.1.0 into playlista's weight files.

    python tools/convert_musicnn_weights.py [--wheel-dir DIR]

Reads the MTT_musicnn and MSD_musicnn checkpoints of the unpacked wheel in DIR (the folder
holding ``musicnn/``), or of the wheel that ``pip download musicnn==0.1.0 --no-deps`` fetches
into a temporary folder (checked against its pinned sha256). Keeps the inference variables
(drops Adam's slots and beta powers), checks them against the network's
``WEIGHT_SHAPES``, and writes ``playlista/models/weights/``: ``{model}.npz`` (float32, keys =
checkpoint variable names), ``labels.json`` and ``LICENSE.md``. Fails on anything unexpected.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import runpy
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import essentia  # noqa: F401  # before tensorflow: see playlista.worker
import numpy as np
import tensorflow as tf

from playlista.models.frontend import LABELS, MODEL_NAMES
from playlista.models.musicnn import WEIGHT_SHAPES, WEIGHTS_DIR

REQUIREMENT = "musicnn==0.1.0"
WHEEL = "musicnn-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
CHECKPOINT_FILES = (".index", ".data-00000-of-00001", ".meta")
OPTIMIZER_SUFFIXES = ("/Adam", "/Adam_1")
OPTIMIZER_VARIABLES = {"beta1_power", "beta2_power"}


class ConversionError(Exception):
    """The wheel does not hold what this conversion expects."""


@contextmanager
def musicnn_wheel(wheel_dir: Path | None) -> Iterator[Path]:
    """The folder holding the unpacked ``musicnn/`` package: ``wheel_dir``, or a fresh download."""
    if wheel_dir is not None:
        yield wheel_dir
        return
    pip = [sys.executable, "-m", "pip"] if _has_pip() else [shutil.which("pip") or "pip"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [*pip, "download", REQUIREMENT, "--no-deps", "--only-binary=:all:", "-d", tmp],
            check=True,
        )
        wheel = Path(tmp) / WHEEL
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            raise ConversionError(f"{wheel.name} has sha256 {digest}, expected {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(Path(tmp) / "unpacked")
        yield Path(tmp) / "unpacked"


def check_record(root: Path, files: list[str]) -> None:
    """Check unpacked ``files`` (paths relative to ``root``) against the wheel's RECORD."""
    record = (root / "musicnn-0.1.0.dist-info" / "RECORD").read_text().splitlines()
    expected = {path: digest for path, digest, _ in (line.split(",") for line in record)}
    for name in files:
        digest = hashlib.sha256((root / name).read_bytes()).digest()
        actual = "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if expected.get(name) != actual:
            raise ConversionError(f"{root / name} differs from the wheel's RECORD")


def read_checkpoint(checkpoint_dir: Path) -> dict[str, np.ndarray]:
    """The inference variables of a checkpoint, checked to be exactly the network's weights."""
    reader = tf.compat.v1.train.NewCheckpointReader(f"{checkpoint_dir}/")
    names = {
        name
        for name in reader.get_variable_to_shape_map()
        if not name.endswith(OPTIMIZER_SUFFIXES) and name not in OPTIMIZER_VARIABLES
    }
    missing, unexpected = WEIGHT_SHAPES.keys() - names, names - WEIGHT_SHAPES.keys()
    if missing or unexpected:
        raise ConversionError(
            f"{checkpoint_dir}: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
        )
    weights = {name: reader.get_tensor(name) for name in sorted(names)}
    for name, value in weights.items():
        if value.dtype != np.float32 or value.shape != WEIGHT_SHAPES[name]:
            raise ConversionError(
                f"{checkpoint_dir}: {name} is {value.dtype}{value.shape}, "
                f"expected float32{WEIGHT_SHAPES[name]}"
            )
        if not np.isfinite(value).all():
            raise ConversionError(f"{checkpoint_dir}: {name} has non-finite values")
    return weights


def read_labels(package: Path) -> dict[str, list[str]]:
    """Each model's labels from musicnn/configuration.py, checked against playlista's LABELS."""
    configuration = runpy.run_path(str(package / "configuration.py"))
    labels = {name: list(configuration[f"{name[:3]}_LABELS"]) for name in MODEL_NAMES}
    for name, names in labels.items():
        if tuple(names) != LABELS[name]:
            raise ConversionError(f"playlista's LABELS[{name!r}] differ from configuration.py")
    return labels


def licence_notice(licence: str) -> str:
    return f"""# MusiCNN weights

`MTT_musicnn.npz` and `MSD_musicnn.npz` hold the inference variables (float32, unchanged; each
key is the checkpoint's variable name) of the `MTT_musicnn` and `MSD_musicnn` checkpoints in the
PyPI package musicnn 0.1.0 by Jordi Pons, Music Technology Group, Universitat Pompeu Fabra:
https://github.com/jordipons/musicnn. Wheel: `{WHEEL}`,
sha256 `{WHEEL_SHA256}`. The models are described
in J. Pons and X. Serra, "musicnn: pre-trained convolutional neural networks for music audio
tagging", ISMIR 2019 late-breaking demo. `labels.json` holds each model's 50 tags in output
order, from the package's `musicnn/configuration.py`.

To regenerate all three files: `python tools/convert_musicnn_weights.py` (fetches the wheel
with `pip download {REQUIREMENT} --no-deps`), or `--wheel-dir DIR` for an unpacked wheel.

## Licence (ISC), from the wheel's LICENSE.md

{licence.strip()}
"""


def convert(root: Path, out: Path) -> None:
    package = root / "musicnn"
    check_record(
        root,
        [f"musicnn/{name}/{suffix}" for name in MODEL_NAMES for suffix in CHECKPOINT_FILES]
        + ["musicnn/configuration.py", "musicnn-0.1.0.dist-info/LICENSE.md"],
    )
    labels = read_labels(package)
    out.mkdir(parents=True, exist_ok=True)
    for name in MODEL_NAMES:
        weights = read_checkpoint(package / name)
        np.savez_compressed(out / f"{name}.npz", **weights)
        size = sum(value.size for value in weights.values())
        print(f"{out / name}.npz: {len(weights)} arrays, {size} parameters")
    (out / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    licence = (root / "musicnn-0.1.0.dist-info" / "LICENSE.md").read_text()
    (out / "LICENSE.md").write_text(licence_notice(licence))
    print(f"{out / 'labels.json'}, {out / 'LICENSE.md'}")


def _has_pip() -> bool:
    try:
        import pip  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel-dir", type=Path, help="an unpacked musicnn 0.1.0 wheel")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="default: %(default)s")
    args = parser.parse_args()
    try:
        with musicnn_wheel(args.wheel_dir) as root:
            convert(root, args.out)
    except ConversionError as exc:
        raise SystemExit(f"conversion failed: {exc}") from exc


if __name__ == "__main__":
    main()
