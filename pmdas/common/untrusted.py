"""Reading files that someone else can write (a user's dtn-transfer run, pmie's alarm state).

An agent may run as root and read a directory an ordinary user (or the pcp account) writes.
A plain ``open().read()`` there follows a symlink to ``/dev/zero`` and grows without bound,
blocks forever on a FIFO, or fails the whole source on one invalid byte.  ``read_text``
opens without following a final symlink, without blocking, accepts only a regular file,
reads at most ``limit`` bytes and decodes strictly, and says what is wrong with *this* file
in one sentence, so the caller skips it and reports it instead of failing everything.
"""
from __future__ import annotations

import errno
import os
import stat


class UntrustedFileError(Exception):
    """One file could not be used; the message names it and says why."""


DEFAULT_LIMIT = 1 << 20   # bytes; state files here are a few KiB


def read_text(path: str, limit: int = DEFAULT_LIMIT) -> str:
    """The UTF-8 text of the regular file ``path`` (at most ``limit`` bytes)."""
    data = read_bytes(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UntrustedFileError(f"{path} is not UTF-8 text (byte {exc.start})") from None


def read_bytes(path: str, limit: int = DEFAULT_LIMIT) -> bytes:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UntrustedFileError(f"{path} is a symbolic link; not followed") from None
        raise UntrustedFileError(f"{path} could not be opened: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UntrustedFileError(f"{path} is not a regular file")
        if st.st_size > limit:
            raise UntrustedFileError(f"{path} is {st.st_size} bytes, over the {limit}-byte limit")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:    # it grew while we read
            raise UntrustedFileError(f"{path} grew over the {limit}-byte limit while being read")
        return data
    except OSError as exc:
        raise UntrustedFileError(f"{path} could not be read: {exc.strerror}") from None
    finally:
        os.close(fd)
