"""The run's options: what the user asked of a run, kept in the run for ``--resume``.

``None`` for concurrency, parallelism or pipelining means "choose per size class"
(``tuning.default_tuning``, or the online search with ``--auto``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """Options of one run; written to the run's ``settings.json`` (its name on disk since the
    first runs, so that older runs still resume)."""

    concurrency: int | None = None
    parallelism: int | None = None
    pipelining: bool | None = None
    tcp_buffer: int | None = None
    sync: bool = False
    verify: bool = False
    fast: bool = True
    retries: int = 2
    stall_timeout: int = 60
    split: int | None = None     # files larger than this go as byte ranges over every pair
    data_channel: str = "auth"   # GSI data channels: clear, auth (GridFTP's default), safe, private
    sync_level: int | None = None   # --sync-level 0-3 (sync.py); None: size, or MD5 with --verify
    preserve_mtime: bool = False    # a verified file takes its source's modification time

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict) -> RunOptions:
        return cls(**doc)
