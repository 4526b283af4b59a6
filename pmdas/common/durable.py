"""Replacing a small state file so that a crash or power loss leaves the old or the new one whole.

Write to a temporary file in the same directory, fsync it, rename it over the old name, then
fsync the directory so the rename itself is on disk.  Without the two fsyncs, a crash soon
after the rename can leave an empty file under the final name on ext4/xfs.
"""
from __future__ import annotations

import contextlib
import os
import tempfile


def replace_file(path: str, text: str, mode: int = 0o644) -> None:
    """Atomically and durably make ``path`` hold ``text`` (UTF-8)."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    sync_directory(directory)


def sync_directory(directory: str) -> None:
    """fsync a directory, so that a rename or a new name in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
