"""Files others can write: one bad file is refused in one sentence, and nothing hangs or grows."""
from __future__ import annotations

import os
import time

import pytest

from pmdas.common.untrusted import UntrustedFileError, read_text


def test_a_regular_file_reads(tmp_path):
    (tmp_path / "state.json").write_text('{"run": "ünï"}')
    assert read_text(str(tmp_path / "state.json")) == '{"run": "ünï"}'


def test_a_symlink_to_dev_zero_is_not_followed(tmp_path):
    os.symlink("/dev/zero", tmp_path / "state.json")
    with pytest.raises(UntrustedFileError, match="symbolic link"):
        read_text(str(tmp_path / "state.json"))


def test_a_device_is_refused(tmp_path):
    with pytest.raises(UntrustedFileError, match="not a regular file"):
        read_text("/dev/zero")


def test_a_fifo_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "state.json")
    started = time.monotonic()
    with pytest.raises(UntrustedFileError, match="not a regular file"):
        read_text(str(tmp_path / "state.json"))
    assert time.monotonic() - started < 1


def test_a_big_file_is_refused_without_reading_it_all(tmp_path):
    (tmp_path / "state.json").write_bytes(b"x" * 5000)
    with pytest.raises(UntrustedFileError, match="over the 4096-byte limit"):
        read_text(str(tmp_path / "state.json"), limit=4096)


def test_invalid_utf8_is_this_files_error(tmp_path):
    (tmp_path / "state.json").write_bytes(b'{"run": "\xff"}')
    with pytest.raises(UntrustedFileError, match=r"not UTF-8 text \(byte 9\)"):
        read_text(str(tmp_path / "state.json"))


def test_a_directory_and_a_missing_file(tmp_path):
    with pytest.raises(UntrustedFileError, match="not a regular file"):
        read_text(str(tmp_path))
    with pytest.raises(UntrustedFileError, match="could not be opened"):
        read_text(str(tmp_path / "absent"))
