"""The library report as a user opens it: `playlista report` on a really analysed corpus,
the page loaded in headless Chromium, every plot decoded and drawn, nothing fetched."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from playlista.report import FIGURES
from tests.test_cli import run_cli

pytestmark = pytest.mark.slow


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("headless Chromium is needed: apt-get install chromium (make test does)")
    return found


def open_in_chromium(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--window-size=1400,2400",
            "--virtual-time-budget=5000",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_report_opens_in_headless_chromium_with_every_plot(analysed_corpus, tmp_path):
    out = tmp_path / "report.html"
    result = run_cli("report", "--out", str(out), "--db", str(analysed_corpus["db"]), home=tmp_path)
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert "http://" not in page and "https://" not in page  # self-contained
    dom = open_in_chromium(out, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    match = re.search(r'data-rendered="([^"]+)"', dom.stdout)
    assert match, dom.stdout[:2000]
    rendered = json.loads(match.group(1).replace("&quot;", '"'))
    assert [f["id"] for f in rendered] == [fig_id for fig_id, _ in FIGURES]
    for figure in rendered:  # decoded, and drawn at a real size
        assert figure["ok"] and figure["width"] > 200 and figure["height"] > 100, figure
    assert re.search(r"\d+ tracks, [\d.]+ hours of audio; \d+ files failed", dom.stdout)
    shot = tmp_path / "report.png"
    open_in_chromium(out, tmp_path, f"--screenshot={shot}")
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.01  # not a blank page
