"""Find audio files under the library roots and fingerprint them, without decoding anything."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator

from playlista.records import FileStat, UnlistedFolder
from playlista.settings import AUDIO_EXTENSIONS

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 64 * 1024


def discover(
    roots: Iterable[str | os.PathLike[str]],
    *,
    follow_symlinks: bool = False,
    extensions: frozenset[str] = AUDIO_EXTENSIONS,
) -> Iterator[FileStat | UnlistedFolder]:
    """Yield every audio file under ``roots``, recursively, as an absolute path with its stat.

    Hidden files and folders (a leading dot) are skipped; so are symbolic links unless
    ``follow_symlinks``, in which case each real folder is entered once (no loops), except
    a dangling link named like audio, which is broken whether followed or not.
    Nothing is opened: the size and mtime come from the directory entry's stat.
    Entries that are not regular files but are named like audio (a folder called
    ``x.mp3``, a dangling link) are yielded too, with size -1, so that they end up
    recorded as failures rather than silently ignored. A folder that cannot be listed (no
    permission, an I/O error on a network mount) is yielded as an :class:`UnlistedFolder`:
    what is under it is unknown, not gone.
    """
    seen_dirs: set[tuple[int, int]] = set()
    for root in roots:
        top = os.path.abspath(os.fspath(root))
        if not os.path.isdir(top):
            raise NotADirectoryError(f"library root is not a folder: {top}")
        yield from _walk(top, follow_symlinks, extensions, seen_dirs)


def _walk(
    top: str,
    follow_symlinks: bool,
    extensions: frozenset[str],
    seen_dirs: set[tuple[int, int]],
) -> Iterator[FileStat | UnlistedFolder]:
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen_dirs:
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            continue  # removed since its parent was listed: gone, not unknown
        except OSError as exc:
            log.warning("cannot list %s: %s", folder, exc)
            yield UnlistedFolder(folder, exc.strerror or str(exc))
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            audio_name = os.path.splitext(entry.name)[1].lower() in extensions
            if entry.is_symlink() and not follow_symlinks:
                if audio_name and not os.path.exists(entry.path):
                    yield FileStat(entry.path, -1, 0)  # broken either way: say so
                continue
            try:
                if entry.is_dir(follow_symlinks=True):
                    if audio_name:
                        yield FileStat(entry.path, -1, 0)
                    subfolders.append(entry.path)
                    continue
                if not audio_name:
                    continue
                st = entry.stat(follow_symlinks=True)
            except OSError:
                if audio_name:  # a dangling link or an entry gone while listing
                    yield FileStat(entry.path, -1, 0)
                continue
            yield FileStat(entry.path, st.st_size, st.st_mtime_ns)
        stack.extend(reversed(subfolders))


def fingerprint(path: str, *, size: int | None = None) -> str:
    """Hash of the size and the first and last 64 KiB: identifies a file across a move.

    Reads at most 128 KiB whatever the file's length.
    """
    with open(path, "rb") as f:
        if size is None:
            size = os.fstat(f.fileno()).st_size
        h = hashlib.blake2b(str(size).encode(), digest_size=16)
        h.update(f.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            f.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            h.update(f.read(FINGERPRINT_BYTES))
    return h.hexdigest()
