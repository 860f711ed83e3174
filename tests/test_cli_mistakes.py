"""The README's table of mistakes, run as written: one line on stderr, its exit status, and
nothing written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from playlista.store import Store
from tests.services import REPO

BIN = Path(sys.executable).parent


def code(cell: str) -> str:
    """The text of the first Markdown code span in ``cell``: `x`, or `` x `` (which may hold
    backticks; CommonMark strips one space each side)."""
    match = re.search(r"(`+)(.+?)\1(?!`)", cell)
    assert match, cell
    text = match.group(2)
    return text[1:-1] if text.startswith(" ") and text.endswith(" ") else text


def mistakes() -> list[tuple[str, int, str]]:
    """(command, exit status, stderr line) of each row of the README's table of mistakes."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## A mistake gets one line") :]
    section = section[: section.index("\n## ")]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 3 and cells[1].isdigit():
            rows.append((code(cells[0]), int(cells[1]), code(cells[2])))
    return rows


MISTAKES = mistakes()


def test_the_table_covers_every_command():
    commands = {shlex.split(c)[1] for c, _, _ in MISTAKES if len(shlex.split(c)) > 1}
    commands |= {shlex.split(c)[2] for c, _, _ in MISTAKES if c.startswith("PLAYLISTA_")}
    assert {"analyze", "failures", "similar", "sql", "playlist", "export", "report"} <= commands
    assert len(MISTAKES) >= 35


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the README says the table's commands run in."""
    root = tmp_path_factory.mktemp("mistakes")
    (root / "music").mkdir()
    (root / "music" / "song.ogg").write_bytes(os.urandom(5000))
    (root / "notes.txt").write_text("shopping list: milk, eggs\n")
    Store.open(root / "library.duckdb").close()
    return root


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` with its size and mtime."""
    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        found[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.mark.parametrize(("typed", "status", "line"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_mistake_is_one_line_with_its_status_and_nothing_written(
    folder: Path, tmp_path: Path, typed: str, status: int, line: str
) -> None:
    words = shlex.split(typed)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAYLISTA_", "PREFECT_API"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")  # outside the folder
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    assert words[0] == "playlista"
    before = tree(folder)
    run = subprocess.run(
        [str(BIN / "playlista"), *words[1:]],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    pattern = re.escape(line).replace("…", re.escape(str(folder)))
    assert re.fullmatch(pattern, run.stderr.rstrip("\n")), run.stderr
    assert run.returncode == status
    assert tree(folder) == before
