"""The files mentionwatch creates — config, database (with its -wal and -shm), reply drafts —
are the owner's alone: 0600 files in 0700 directories. They hold credentials, session tokens
and what people wrote. Directories that already exist (a home folder, a shared data folder)
are left as they are; only the ones created here are made private.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """Create `path` if needed; a directory created here is 0700. Missing parents get the
    usual mode: places such as ~/.config are shared, and other programs list them."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)


def create_private(path: Path) -> bool:
    """Create an empty 0600 file unless one exists; returns True when it was created."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` as a 0600 file (an existing file is made 0600 too)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), FILE_MODE)
        handle.write(text)


@contextlib.contextmanager
def whole_or_nothing(path: Path) -> Iterator[IO[str]]:
    """A text file written beside `path` and renamed over it once complete, so an export that
    fails or is interrupted leaves the file that was there (last night's backup), not a part
    of the new one. A link or a device (/dev/stdout, a pipe) is written in place."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        with path.open("w", encoding="utf-8", newline="") as handle:
            yield handle
        return
    fd, part = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        # the mode a new file gets here, or the one the replaced file had
        os.chmod(part, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(part, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise


def readable_by_others(path: Path) -> bool:
    """True when users other than the owner may read `path` (never on Windows, whose
    permissions these bits do not describe)."""
    if os.name == "nt":
        return False
    try:
        return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False


def writable(path: Path) -> bool:
    """True when the database at `path` can be written: the file (when it exists) and its
    directory (SQLite creates -wal and -shm beside it)."""
    folder = path.parent if path.parent != Path("") else Path(".")
    if path.exists() and not os.access(path, os.W_OK):
        return False
    return os.access(folder, os.W_OK | os.X_OK) if folder.exists() else True
