"""Only ``playlista`` is installed; ``flows`` and ``tasks`` are the checkout's, whatever else
the environment holds under those names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools/bin/uv")
    if not Path(found).exists():
        pytest.fail("uv not found: `make setup` installs it into .tools/")
    return found


def test_the_wheel_holds_the_playlista_package_alone(tmp_path):
    subprocess.run(
        [uv(), "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
    assert {t for t in top if not t.endswith(".dist-info")} == {"playlista"}


def test_another_tasks_package_on_the_path_does_not_stand_in_for_the_checkouts(tmp_path):
    for name in ("tasks", "flows"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise ImportError('not playlista')\n")
    code = (
        "from playlista.checkout import on_path; on_path(); "
        "import tasks.analyze, flows.analyze_library; "
        "print(tasks.analyze.__file__); print(flows.analyze_library.__file__)"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # ahead of site-packages
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [
        str(ROOT / "tasks/analyze.py"),
        str(ROOT / "flows/analyze_library.py"),
    ]
