"""Which library and algorithm computes each stored descriptor.

Kept apart from :mod:`playlista.audio.features` so that the flow process can record it
without importing the audio libraries.
"""

from __future__ import annotations

N_MFCC = 13
ROLL_PERCENT = 0.85

FEATURE_SOURCES: dict[str, str] = {
    "bpm": (
        "playlista.audio.rhythm: onset-envelope periodicities at five metrical levels, "
        "scored on the evidence that separates them (22.05 kHz log-mel onset envelope)"
    ),
    "bpm_confidence": (
        "playlista.audio.rhythm: the chosen level's share of the scores times the envelope's "
        "autocorrelation at its period (0-1)"
    ),
    **dict.fromkeys(
        ("key", "mode", "key_strength"),
        "playlista.audio.tonal: treble and bass pitch-class profiles against the mean of the "
        "Krumhansl-Kessler and Temperley key profiles",
    ),
    "camelot": "playlista camelot() of the key and mode",
    "loudness_lufs": "playlista ITU-R BS.1770-4 integrated loudness (EBU R 128), gated",
    "loudness_range_lu": "playlista EBU Tech 3342 loudness range of 3-s short-term blocks",
    "true_peak_dbtp": (
        "playlista ITU-R BS.1770-4 Annex 2 true peak: 4x oversampling through the Annex's "
        "48-tap interpolation filter, every channel"
    ),
    "loudness_histogram": (
        "playlista BS.1770 400-ms blocks above -70 LUFS in 0.1-LU bins (count, summed power)"
    ),
    "energy": "RMS of the mono signal at the file's rate (linear, full scale = 1.0)",
    "danceability": "essentia Danceability's detrended fluctuation analysis (playlista, numpy)",
    "spectral_centroid_hz": "librosa feature.spectral_centroid",
    "spectral_rolloff_hz": f"librosa feature.spectral_rolloff(roll_percent={ROLL_PERCENT})",
    "spectral_flatness": "librosa feature.spectral_flatness",
    "spectral_bandwidth_hz": "librosa feature.spectral_bandwidth",
    "zero_crossing_rate": "librosa feature.zero_crossing_rate",
    "onset_rate": "essentia Onsets of HFC and complex-domain onset functions, as OnsetRate",
    **dict.fromkeys(
        ("mfcc_mean", "mfcc_std"),
        f"librosa feature.mfcc(n_mfcc={N_MFCC}) of power_to_db(feature.melspectrogram)",
    ),
    "chroma_mean": "librosa feature.chroma_stft",
}

# What computes the MusiCNN columns, recorded in feature_sources beside FEATURE_SOURCES.
MODEL_SOURCES: dict[str, str] = {
    "musicnn_scores": (
        "MusiCNN MTT_musicnn and MSD_musicnn (musicnn 0.1.0 weights, TensorFlow 2): "
        "mean sigmoid tag probabilities over up to musicnn_max_patches 3-s patches"
    ),
    "musicnn_embedding": "MusiCNN penultimate layer (200-d, after batch norm), mean over patches",
    "top_tags": "the 5 highest MusiCNN tag scores of either model",
}
