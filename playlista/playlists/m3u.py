"""M3U8 files: rendering, and writing them atomically inside one output folder."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from playlista.errors import PlaylistError
from playlista.playlists.model import check_name


@dataclass(frozen=True)
class Entry:
    """One line pair of an M3U8 file."""

    path: str
    duration_s: float | None
    artist: str | None
    title: str | None

    def display(self) -> str:
        """``artist - title``; the title alone without an artist; the file name without both."""
        title = self.title or os.path.basename(self.path)
        text = f"{self.artist} - {title}" if self.artist else title
        return " ".join(text.split())  # a newline in a tag would end the line


def render(entries: Sequence[Entry], *, title: str | None = None, base: str | None = None) -> str:
    """Extended M3U (UTF-8): ``#EXTM3U``, then ``#EXTINF:<seconds>,<display>`` and the path of
    each entry, absolute or, with ``base``, relative to that folder."""
    lines = ["#EXTM3U"]
    if title:
        lines.append(f"#PLAYLIST:{' '.join(title.split())}")
    for entry in entries:
        seconds = round(entry.duration_s) if entry.duration_s is not None else -1
        lines.append(f"#EXTINF:{seconds},{entry.display()}")
        lines.append(os.path.relpath(entry.path, base) if base else entry.path)
    return "\n".join(lines) + "\n"


def target(out_dir: str | os.PathLike[str], name: str) -> Path:
    """``out_dir/name.m3u8``, refusing any name that would land outside ``out_dir``."""
    check_name(name)
    folder = Path(out_dir).resolve()
    path = (folder / f"{name}.m3u8").resolve()
    if path.parent != folder:
        raise PlaylistError(f"playlist name {name!r} leaves the output folder {folder}")
    return path


def write_after(paths: Sequence[Path], texts: Sequence[str], commit: Callable[[], None]) -> None:
    """Write each text to its path once ``commit()`` has returned, each atomically.

    The texts go to temporary files beside their paths first; only when ``commit`` (the
    transaction of the playlists' rows) succeeds are they renamed over the old files. If
    anything fails, the temporary files are removed and the old files stay as they were.
    The files get the permissions of any file the user creates (0666 less the umask), so
    that a player or media server running as someone else can read them where it may.
    """
    written: list[tuple[Path, Path]] = []
    try:
        for path, text in zip(paths, texts, strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            written.append((tmp, path))
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
        commit()
    except BaseException:
        for tmp, _ in written:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, path in written:
        os.replace(tmp, path)
