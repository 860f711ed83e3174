"""MusiCNN in TensorFlow 2 against the original checkpoint graphs, its input, and its weights.

``tests/data/musicnn_reference.npz`` holds what musicnn 0.1.0's own graphs computed for a few
patches of three corpus clips (``tools/musicnn_reference.py``). Both forms are checked against
it: :class:`MusiCNN`, the network as written, and :class:`MusicnnModels`, the fused fast form
the workers run (compiled with XLA, oneDNN on, as there: see conftest).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
import pytest
import soxr

from playlista.errors import InvalidInputError, PlaylistaError
from playlista.models.frontend import (
    LABELS,
    MODEL_NAMES,
    N_MELS,
    PATCH_FRAMES,
    SR,
    log_mel_patches,
    patch_count,
    spread_patches,
)
from playlista.models.fused import MusicnnModels
from playlista.models.musicnn import WEIGHT_SHAPES, WEIGHTS_DIR, MusiCNN
from playlista.models.tagging import (
    musicnn_patches,
    musicnn_scores,
    resample_stretch,
    to_mono_16k,
)
from playlista.models.winograd import minimal_filter

REFERENCE = Path(__file__).parent / "data" / "musicnn_reference.npz"
BACKING, FULL, BACH = (
    "good/fof/war_of_freedom_backing.ogg",
    "good/fof/war_of_freedom_full.ogg",
    "good/rendered/bach_bwv269.flac",
)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as npz:
        return {key: npz[key] for key in npz.files}


@pytest.fixture(scope="module")
def models() -> dict[str, MusiCNN]:
    return {name: MusiCNN.load(name) for name in MODEL_NAMES}


@pytest.fixture(scope="module")
def fused() -> MusicnnModels:
    """Both models as the workers run them."""
    return MusicnnModels.load(jit_compile=True)


@pytest.fixture(scope="module")
def clip_patches(corpus: Path) -> dict[str, np.ndarray]:
    """Every patch of the three reference clips, loaded as musicnn loads audio."""
    return {
        clip: log_mel_patches(y=librosa.load(corpus / clip, sr=SR)[0], sr=SR)
        for clip in (BACKING, FULL, BACH)
    }


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_reproduces_the_original_graph(
    name: str, models: dict[str, MusiCNN], reference: dict[str, np.ndarray]
) -> None:
    assert list(reference["clips"]) == [BACKING, FULL, BACH]
    for clip in reference["clips"]:
        tags, embeddings = models[name].predict(reference[f"{clip}/patches"])
        assert tags.shape == (8, 50) and embeddings.shape == (8, 200)
        # Measured: tags within 2e-6, embeddings within 5e-6.
        np.testing.assert_allclose(tags, reference[f"{clip}/{name}/tags"], rtol=0, atol=1e-4)
        np.testing.assert_allclose(
            embeddings, reference[f"{clip}/{name}/penultimate"], rtol=0, atol=1e-4
        )


def test_the_fused_models_reproduce_the_original_graphs(
    fused: MusicnnModels, reference: dict[str, np.ndarray]
) -> None:
    assert fused.names == MODEL_NAMES
    for clip in reference["clips"]:
        outputs = fused.predict(reference[f"{clip}/patches"])
        assert list(outputs) == list(MODEL_NAMES)
        for name, (tags, embeddings) in outputs.items():
            assert tags.shape == (8, 50) and embeddings.shape == (8, 200)
            # Measured: tags within 5e-6, embeddings within 1.5e-5.
            np.testing.assert_allclose(tags, reference[f"{clip}/{name}/tags"], rtol=0, atol=1e-4)
            np.testing.assert_allclose(
                embeddings, reference[f"{clip}/{name}/penultimate"], rtol=0, atol=1e-4
            )


def test_the_fused_batch_size_does_not_change_the_outputs(
    fused: MusicnnModels, reference: dict[str, np.ndarray]
) -> None:
    patches = reference[f"{BACKING}/patches"]
    one_by_one = fused.predict(patches, batch_size=1)
    in_threes = fused.predict(patches, batch_size=3)
    for name in MODEL_NAMES:
        for a, b in zip(one_by_one[name], in_threes[name], strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_fused_models_reject_other_input(fused: MusicnnModels) -> None:
    with pytest.raises(InvalidInputError):
        fused.predict(np.zeros((2, 96, 187), np.float32))
    with pytest.raises(InvalidInputError):
        fused.predict(np.full((1, 187, 96), np.nan, np.float32))


@pytest.mark.parametrize(("m", "r"), [(2, 3), (4, 7), (3, 5)])
def test_winograd_minimal_filtering_is_a_correlation(m: int, r: int) -> None:
    points = [0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 0.75, -0.75][: m + r - 2]
    at, g, bt = minimal_filter(m, r, points)
    rng = np.random.default_rng(0)
    for _ in range(5):
        d, taps = rng.standard_normal(m + r - 1), rng.standard_normal(r)
        np.testing.assert_allclose(
            at @ ((g @ taps) * (bt @ d)), np.correlate(d, taps, "valid"), atol=1e-12
        )
    with pytest.raises(ValueError, match="distinct"):
        minimal_filter(m, r, [0.0] * (m + r - 2))


def test_batch_size_does_not_change_the_outputs(
    models: dict[str, MusiCNN], reference: dict[str, np.ndarray]
) -> None:
    patches = reference[f"{FULL}/patches"]
    one_by_one = models["MSD_musicnn"].predict(patches, batch_size=1)
    in_threes = models["MSD_musicnn"].predict(patches, batch_size=3)
    for a, b in zip(one_by_one, in_threes, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("clip", [BACKING, FULL, BACH])
def test_log_mel_patches_are_musicnns_input(
    clip: str, corpus: Path, reference: dict[str, np.ndarray], clip_patches: dict[str, np.ndarray]
) -> None:
    y, _ = librosa.load(corpus / clip, sr=SR)
    patches = clip_patches[clip]
    assert patches.dtype == np.float32
    assert patches.shape == ((1 + len(y) // 256) // PATCH_FRAMES, PATCH_FRAMES, N_MELS)
    # The same recipe on the same decoding: equal up to rounding (soxr picks its SIMD path by
    # CPU, so the resampled samples, and the log-mels, can differ in the last bits).
    np.testing.assert_allclose(
        patches[reference[f"{clip}/index"]], reference[f"{clip}/patches"], rtol=0, atol=2e-3
    )


def test_log_mel_patches_of_silence_are_zero() -> None:
    patches = log_mel_patches(y=np.zeros(10 * SR, np.float32), sr=SR)
    assert patches.shape == (3, PATCH_FRAMES, N_MELS)
    assert not patches.any()


def test_loud_music_does_not_overflow() -> None:
    """A full-scale bass note's mel power passes float16's 65504 once multiplied by 10000."""
    t = np.arange(5 * SR) / SR
    patches = log_mel_patches(y=np.sin(2 * np.pi * 110 * t).astype(np.float32), sr=SR)
    assert np.isfinite(patches).all()
    assert patches.max() > np.log10(np.finfo(np.float16).max) + 0.5


def test_a_short_clip_is_repeated_to_one_patch() -> None:
    y = np.random.default_rng(0).uniform(-0.5, 0.5, SR).astype(np.float32)  # 63 frames
    patches = log_mel_patches(y=y, sr=SR)
    assert patches.shape == (1, PATCH_FRAMES, N_MELS)
    np.testing.assert_array_equal(patches[0, 63:126], patches[0, :63])
    np.testing.assert_array_equal(patches[0, 126:], patches[0, :61])
    assert patches[0, :63].std(axis=0).min() > 0  # not a constant that trivially repeats


@pytest.mark.parametrize(
    ("y", "sr"),
    [
        (np.zeros(SR, np.float32), 22050),
        (np.zeros((2, SR), np.float32), SR),
        (np.zeros(SR, np.float64), SR),
        (np.zeros(0, np.float32), SR),
        (np.array([0.0, np.nan] * SR, np.float32), SR),
    ],
    ids=["rate", "stereo", "float64", "empty", "nan"],
)
def test_log_mel_patches_rejects_other_input(y: np.ndarray, sr: int) -> None:
    with pytest.raises(InvalidInputError):
        log_mel_patches(y=y, sr=sr)


@pytest.mark.parametrize(
    ("n_patches", "cap"),
    [(58, 8), (58, 2), (58, 1), (187, 32), (10, 9), (5, 5), (3, 100), (5, 0), (5, -1), (1, 4)],
)
def test_spread_patches_cover_the_track(n_patches: int, cap: int) -> None:
    index = spread_patches(n_patches, cap=cap)
    expected = n_patches if cap <= 0 else min(n_patches, cap)
    assert len(index) == expected
    gaps = np.diff(index)
    assert (gaps >= 1).all()
    if expected == n_patches:
        np.testing.assert_array_equal(index, np.arange(n_patches))
    else:
        # Cut into equal parts, the patch holding the middle of each.
        middles = (np.arange(expected) + 0.5) * n_patches / expected
        assert ((index <= middles) & (middles < index + 1)).all()
        assert abs((index[0] + 1) - (n_patches - index[-1])) <= 1  # as far from either end
        assert len(gaps) == 0 or gaps.max() - gaps.min() <= 1  # evenly spaced


def test_spread_patches_needs_a_patch() -> None:
    with pytest.raises(InvalidInputError):
        spread_patches(0, cap=4)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_labels_are_the_packages(name: str, models: dict[str, MusiCNN]) -> None:
    shipped = json.loads((WEIGHTS_DIR / "labels.json").read_text())
    assert LABELS[name] == tuple(shipped[name])
    assert len(LABELS[name]) == len(set(LABELS[name])) == 50
    assert models[name].labels == LABELS[name]


def test_tags_name_what_is_playing(
    models: dict[str, MusiCNN], clip_patches: dict[str, np.ndarray]
) -> None:
    """Labels in the wrong order would name other tags."""

    def top(name: str, clip: str, k: int) -> list[str]:
        tags, _ = models[name].predict(clip_patches[clip])
        return [LABELS[name][i] for i in np.argsort(-tags.mean(axis=0))[:k]]

    for clip in (BACKING, FULL):
        assert top("MTT_musicnn", clip, 1) == ["rock"]
        assert top("MSD_musicnn", clip, 1) == ["metal"]
    bach = top("MTT_musicnn", BACH, 5)
    assert {"classical", "piano"} <= set(bach) and "rock" not in bach


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_two_renderings_of_a_song_are_closer_than_bach(
    name: str, models: dict[str, MusiCNN], clip_patches: dict[str, np.ndarray]
) -> None:
    means = {clip: models[name].predict(p)[1].mean(axis=0) for clip, p in clip_patches.items()}

    def cosine(a: str, b: str) -> float:
        return float(means[a] @ means[b] / np.linalg.norm(means[a]) / np.linalg.norm(means[b]))

    same_song = cosine(BACKING, FULL)
    assert same_song > cosine(BACKING, BACH) + 0.3
    assert same_song > cosine(FULL, BACH) + 0.3


@pytest.fixture(scope="module")
def shipped_weights() -> dict[str, np.ndarray]:
    with np.load(WEIGHTS_DIR / "MTT_musicnn.npz") as npz:
        return {key: npz[key] for key in npz.files}


def test_a_faithful_copy_of_the_weights_loads(
    tmp_path: Path,
    shipped_weights: dict[str, np.ndarray],
    models: dict[str, MusiCNN],
    reference: dict[str, np.ndarray],
) -> None:
    assert shipped_weights.keys() == WEIGHT_SHAPES.keys()
    np.savez(tmp_path / "copy.npz", **shipped_weights)
    copy = MusiCNN.load("MTT_musicnn", path=tmp_path / "copy.npz")
    patches = reference[f"{BACH}/patches"]
    np.testing.assert_array_equal(
        copy.predict(patches)[0], models["MTT_musicnn"].predict(patches)[0]
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w: w.pop("conv2d_5/kernel"), r"missing \['conv2d_5/kernel'\]"),
        (lambda w: w.update({"dense/kernel": w["dense/kernel"].T}), "dense/kernel is"),
        (lambda w: w.update({"conv2d/bias": w["conv2d/bias"][:-1]}), "conv2d/bias is"),
        (lambda w: w.update({"dense/bias": w["dense/bias"].astype(np.float64)}), "float64"),
        (lambda w: w.update({"dense_2/kernel": np.zeros((2, 2), np.float32)}), "dense_2/kernel"),
        (lambda w: w["batch_normalization_3/gamma"].__setitem__(0, np.nan), "non-finite"),
    ],
    ids=["missing", "transposed", "short", "float64", "extra", "nan"],
)
def test_load_rejects_weights_that_do_not_fit(
    change: Callable[[dict[str, np.ndarray]], object],
    message: str,
    tmp_path: Path,
    shipped_weights: dict[str, np.ndarray],
) -> None:
    weights = {key: value.copy() for key, value in shipped_weights.items()}
    change(weights)
    np.savez(tmp_path / "changed.npz", **weights)
    with pytest.raises(PlaylistaError, match=message):
        MusiCNN.load("MTT_musicnn", path=tmp_path / "changed.npz")


def test_load_rejects_an_unknown_model() -> None:
    with pytest.raises(PlaylistaError, match="no MusiCNN model"):
        MusiCNN.load("MTT_vgg")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def full_22k(corpus: Path) -> np.ndarray:
    """A 3-minute corpus song, mono at 22050 Hz as the pipeline hands it over."""
    y, sr = librosa.load(corpus / FULL, sr=None, mono=True)
    return soxr.resample(y, sr, 22050, quality="HQ").astype(np.float32)


@pytest.mark.parametrize("sr", [22050, 44100, 16000])
def test_a_stretch_resampled_alone_is_the_whole_tracks(full_22k: np.ndarray, sr: int) -> None:
    y = soxr.resample(full_22k, 22050, sr, quality="HQ").astype(np.float32)
    whole = to_mono_16k(y=y, sr=sr)
    n16 = len(whole)
    padded = np.concatenate([np.zeros(1000, np.float32), whole, np.zeros(60000, np.float32)])
    for start in (-256, 0, 12345, n16 // 2, n16 - 40000, n16 - 100):  # both ends included
        stretch = resample_stretch(y, sr=sr, start=start, n16=n16)
        expected = padded[1000 + start : 1000 + start + len(stretch)]
        # Measured: within 5e-7, float rounding of the filter's sums.
        np.testing.assert_allclose(stretch, expected, rtol=0, atol=2e-6)


@pytest.mark.parametrize("cap", [8, 3, -1])
def test_the_chosen_patches_alone_are_the_whole_tracks(full_22k: np.ndarray, cap: int) -> None:
    whole = log_mel_patches(y=to_mono_16k(y=full_22k, sr=22050), sr=SR)
    n_patches = len(whole)
    cap = n_patches - 1 if cap < 0 else cap  # one less than all: the first and the last
    assert patch_count(len(to_mono_16k(y=full_22k, sr=22050))) == n_patches == 58
    partial = musicnn_patches(y=full_22k, sr=22050, cap=cap)
    expected = whole[spread_patches(n_patches, cap=cap)]
    assert partial.shape == expected.shape == (cap, PATCH_FRAMES, N_MELS)
    # The few differences are float16 rounding steps of the mel power that the last bit of a
    # sample tips over (measured: up to 4.2e-4, in 0.1 % of the values).
    assert np.abs(partial - expected).max() < 1e-3
    assert (partial != expected).mean() < 0.005


def test_a_track_shorter_than_the_cap_takes_every_patch(full_22k: np.ndarray) -> None:
    clip = full_22k[: 20 * 22050]  # 6 patches
    patches = musicnn_patches(y=clip, sr=22050, cap=8)
    np.testing.assert_array_equal(patches, log_mel_patches(y=to_mono_16k(y=clip, sr=22050), sr=SR))
    assert len(patches) == 6


def test_musicnn_scores_are_the_means_of_the_chosen_patches(
    full_22k: np.ndarray, fused: MusicnnModels
) -> None:
    scores = musicnn_scores(y=np.stack([full_22k, full_22k]), sr=22050, taggers=fused, cap=8)
    whole = log_mel_patches(y=to_mono_16k(y=full_22k, sr=22050), sr=SR)
    expected = fused.predict(whole[spread_patches(len(whole), cap=8)])
    assert [s.model for s in scores] == list(MODEL_NAMES)
    for record in scores:
        tags, embeddings = expected[record.model]
        assert record.patches == 8
        np.testing.assert_allclose(record.scores, tags.mean(axis=0), rtol=0, atol=1e-4)
        np.testing.assert_allclose(record.embedding, embeddings.mean(axis=0), rtol=0, atol=1e-4)
