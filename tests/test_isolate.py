"""Decoding in a child process: same answers as in-process, and hangs and crashes cost one file.

Real child processes decode real corpus files. Hangs, aborts and I/O errors are injected with
``PLAYLISTA_FAULTS``, the child's fault hook: no real file makes a decoder hang or crash on
demand, so that is the one seam faked here.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import Client, LocalCluster

from playlista.analysis import analyze_file
from playlista.audio.decode import decode
from playlista.audio.isolate import FAULTS_ENV, DecoderProcess
from playlista.errors import (
    AnalysisError,
    DecoderCrashError,
    DecodeTimeoutError,
    NoAudioError,
    TransientIOError,
    UnsupportedFormatError,
)
from playlista.records import Failure, TrackResult
from playlista.settings import AnalysisParams
from playlista.worker import AudioLibraries, audio_libraries, worker_status

GOOD = "good/rendered/bach_bwv351.flac"
OTHER = "good/rendered/mozart_k545.flac"


def gone(pid: int) -> bool:
    """Whether process ``pid`` has exited and been reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def exited(pid: int) -> bool:
    """Whether ``pid`` has exited, reaped or not (an orphan waits for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True


def faulty(monkeypatch: pytest.MonkeyPatch, *rules: dict[str, Any]) -> DecoderProcess:
    """A decoder whose children apply ``rules``; they read them when they start."""
    monkeypatch.setenv(FAULTS_ENV, json.dumps(list(rules)))
    return DecoderProcess()


def copy_as(corpus: Path, part: str, dest: Path) -> str:
    """Copy one corpus file to ``dest`` (a name a fault rule matches); its path."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(corpus / part, dest)
    return str(dest)


@pytest.mark.parametrize(
    ("part", "decoder"),
    [
        (GOOD, "ffmpeg"),
        ("good/formats/war_of_freedom_60s.m4a", "ffmpeg"),
        ("good/games/hyperrogue_caribbean.ogg", "soundfile"),  # FFmpeg cannot open it
    ],
)
def test_the_child_decodes_exactly_what_this_process_decodes(corpus, part, decoder):
    path = str(corpus / part)
    with DecoderProcess() as child:
        got = child.decode(path, min_seconds=1.0, timeout=60)
        pid = child.pid
    want = decode(path, min_seconds=1.0)
    assert got.decoder == want.decoder == decoder
    assert (got.sr, got.native_sr, got.channels, got.codec) == (
        want.sr,
        want.native_sr,
        want.channels,
        want.codec,
    )
    assert (got.loudness_lufs, got.loudness_range_lu, got.energy, got.seconds) == (
        want.loudness_lufs,
        want.loudness_range_lu,
        want.energy,
        want.seconds,
    )
    assert got.samples.dtype == np.float32 and got.samples.flags.c_contiguous
    assert got.samples.shape == want.samples.shape and got.samples.ndim == 1
    np.testing.assert_array_equal(got.samples, want.samples)
    np.testing.assert_array_equal(got.envelope, want.envelope)
    assert pid is not None and gone(pid)  # close() stopped the child


@pytest.mark.parametrize(
    ("part", "error"),
    [
        ("bad/text_file.flac", UnsupportedFormatError),
        ("bad/truncated_no_moov.m4a", UnsupportedFormatError),
        ("bad/header_only_0_frames.wav", NoAudioError),
    ],
)
def test_known_errors_cross_back_with_their_class_and_message(corpus, part, error):
    path = str(corpus / part)
    with pytest.raises(AnalysisError) as in_process:
        decode(path, min_seconds=1.0)
    with DecoderProcess() as child, pytest.raises(AnalysisError) as isolated:
        child.decode(path, min_seconds=1.0, timeout=60)
    assert type(isolated.value) is type(in_process.value) is error
    assert (isolated.value.path, isolated.value.message) == (path, in_process.value.message)


def test_os_errors_cross_back_as_the_same_os_error(tmp_path):
    missing = str(tmp_path / "gone.flac")
    with pytest.raises(OSError) as in_process:
        decode(missing)
    with DecoderProcess() as child, pytest.raises(OSError) as isolated:
        child.decode(missing, timeout=60)
    assert type(isolated.value) is type(in_process.value)
    assert (isolated.value.errno, isolated.value.filename) == (
        in_process.value.errno,
        missing,
    )


def test_an_unexpected_exception_in_the_child_is_raised_here_and_the_child_goes_on(corpus):
    with DecoderProcess() as child:
        child.start()
        pid = child.pid
        with pytest.raises(RuntimeError, match="Error in the decoder process") as bug:
            child.decode(None, timeout=60)  # type: ignore[arg-type]
        assert "decode.py" in "".join(bug.value.__notes__)  # the child's traceback
        assert child.decode(str(corpus / GOOD), timeout=60).native_sr == 44100
        assert (child.pid, child.starts) == (pid, 1)


def test_a_hang_is_stopped_and_the_next_file_gets_a_fresh_child(corpus, tmp_path, monkeypatch):
    stuck = copy_as(corpus, GOOD, tmp_path / "hang_me.flac")
    with faulty(monkeypatch, {"match": "hang_me", "fault": "hang"}) as child:
        child.start()
        first = child.pid
        assert first is not None
        asked = time.monotonic()
        with pytest.raises(DecodeTimeoutError) as stopped:
            child.decode(stuck, timeout=3)
        assert time.monotonic() - asked < 60  # it came back at all
        assert stopped.value.message == (
            "decoding did not finish within 3 s; the decoder was stopped"
        )
        assert (stopped.value.error_class, stopped.value.retryable) == ("timeout", False)
        assert gone(first) and child.pid is None
        # 1257728 frames at 44.1 kHz are 628864 at the analysis rate, 22.05 kHz.
        assert child.decode(str(corpus / GOOD), timeout=60).samples.shape == (628864,)
        assert child.pid not in (None, first) and child.starts == 2


def test_an_abort_is_a_crash_naming_the_signal_and_the_next_file_works(
    corpus, tmp_path, monkeypatch
):
    broken = copy_as(corpus, GOOD, tmp_path / "abort_me.flac")
    with faulty(monkeypatch, {"match": "abort_me", "fault": "abort"}) as child:
        child.start()
        first = child.pid
        assert first is not None
        with pytest.raises(DecoderCrashError) as crashed:
            child.decode(broken, timeout=60)
        assert crashed.value.message == "the decoder crashed (SIGABRT) on this file"
        assert (crashed.value.error_class, crashed.value.retryable) == ("crash", False)
        assert gone(first)
        assert child.decode(str(corpus / GOOD), timeout=60).decoder == "ffmpeg"
        assert child.pid not in (None, first) and child.starts == 2


def test_eio_fails_transiently_for_the_set_number_of_attempts_across_children(
    corpus, tmp_path, monkeypatch
):
    flaky = copy_as(corpus, GOOD, tmp_path / "music" / "flaky.flac")
    rule = {"match": "flaky", "fault": "eio", "times": 2, "state": str(tmp_path / "faults")}
    with faulty(monkeypatch, rule) as child:
        with pytest.raises(OSError) as raw:
            child.decode(flaky, timeout=60)
        assert (raw.value.errno, raw.value.filename) == (errno.EIO, flaky)
        second = analyze_file(
            flaky, worker="test", decoder=child, params=AnalysisParams(decode_timeout=60)
        )
    # The count lives in the state folder: a new child sees the third attempt.
    with DecoderProcess() as fresh:
        third = analyze_file(
            flaky, worker="test", decoder=fresh, params=AnalysisParams(decode_timeout=60)
        )
    assert isinstance(second, Failure)
    assert (second.error_class, second.retryable) == (TransientIOError.error_class, True)
    assert isinstance(third, TrackResult) and third.decoder == "ffmpeg"
    stages = dict(third.stage_seconds)
    assert {"tags", "decode", "features.tempo", "features.spectral"} <= stages.keys()
    assert all(seconds >= 0 for seconds in stages.values())
    assert sum(stages.values()) <= third.elapsed_s


def test_a_hanging_child_exits_when_its_worker_is_killed(corpus, tmp_path):
    stuck = copy_as(corpus, GOOD, tmp_path / "hang_me.flac")
    script = (
        "import sys; from playlista.audio.isolate import DecoderProcess; d = DecoderProcess(); "
        "d.start(); print(d.pid, flush=True); d.decode(sys.argv[1], timeout=600)"
    )
    env = {**os.environ, FAULTS_ENV: json.dumps([{"match": "hang_me", "fault": "hang"}])}
    worker = subprocess.Popen(
        [sys.executable, "-c", script, stuck], env=env, stdout=subprocess.PIPE, text=True
    )
    assert worker.stdout is not None
    child = int(worker.stdout.readline())
    time.sleep(1)  # the request is sent and the child is in its hang
    assert not exited(child)
    worker.kill()
    worker.wait()
    waited = time.monotonic()
    while not exited(child) and time.monotonic() - waited < 30:
        time.sleep(0.2)
    assert exited(child)


def test_a_hang_in_a_batch_fails_that_file_alone(corpus, manifest, tmp_path, monkeypatch):
    stuck = copy_as(corpus, OTHER, tmp_path / "hang_me.flac")
    paths = [str(corpus / GOOD), stuck, str(corpus / OTHER)]
    with faulty(monkeypatch, {"match": "hang_me", "fault": "hang"}) as child:
        outcomes = [
            analyze_file(p, worker="test", decoder=child, params=AnalysisParams(decode_timeout=3))
            for p in paths
        ]
    good, hung, other = outcomes
    assert isinstance(hung, Failure)
    assert (hung.path, hung.error_class, hung.retryable) == (stuck, "timeout", False)
    assert hung.size == os.path.getsize(stuck)  # stat-ed before decoding
    for result, part in ((good, GOOD), (other, OTHER)):
        assert isinstance(result, TrackResult)
        assert result.decoded_seconds == pytest.approx(manifest[part]["duration_s"], abs=0.05)
        assert result.features.bpm is not None


def test_a_crash_in_a_batch_fails_that_file_alone(corpus, tmp_path, monkeypatch):
    broken = copy_as(corpus, GOOD, tmp_path / "abort_me.flac")
    paths = [str(corpus / OTHER), broken, str(corpus / GOOD)]
    with faulty(monkeypatch, {"match": "abort_me", "fault": "abort"}) as child:
        outcomes = [
            analyze_file(p, worker="test", decoder=child, params=AnalysisParams(decode_timeout=60))
            for p in paths
        ]
    assert [type(o) for o in outcomes] == [TrackResult, Failure, TrackResult]
    crashed = outcomes[1]
    assert isinstance(crashed, Failure)
    assert (crashed.error_class, crashed.message) == (
        "crash",
        "the decoder crashed (SIGABRT) on this file",
    )


@pytest.mark.slow
def test_a_worker_survives_a_decoder_crash(corpus, tmp_path):
    broken = copy_as(corpus, GOOD, tmp_path / "abort_me.flac")
    paths = [str(corpus / GOOD), broken, str(corpus / OTHER)]
    faults = json.dumps([{"match": "abort_me", "fault": "abort"}])

    def analyse(paths: list[str]) -> dict[str, Any]:
        plugin = audio_libraries()
        assert plugin.decoder is not None
        before = plugin.decoder.pid
        outcomes = [
            analyze_file(
                p,
                worker=plugin.worker_name,
                decoder=plugin.decoder,
                params=AnalysisParams(decode_timeout=60),
            )
            for p in paths
        ]
        return {"pid": os.getpid(), "decoder_before": before, "outcomes": outcomes}

    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            env={FAULTS_ENV: faults},
        ) as cluster,
        Client(cluster) as client,
    ):
        client.register_plugin(AudioLibraries())
        (before,) = client.run(worker_status).values()
        got = client.submit(analyse, paths, pure=False).result()
        (after,) = client.run(worker_status).values()
    assert before["decoder_pid"] is not None  # started by the plugin, before any file
    assert got["decoder_before"] == before["decoder_pid"]
    assert before["pid"] == got["pid"] == after["pid"]  # the same worker process throughout
    assert after["decoder_pid"] not in (None, before["decoder_pid"])  # a fresh child
    first, crashed, last = got["outcomes"]
    assert isinstance(first, TrackResult) and isinstance(last, TrackResult)
    assert isinstance(crashed, Failure) and crashed.error_class == "crash"
    assert "SIGABRT" in crashed.message and crashed.worker == first.worker
