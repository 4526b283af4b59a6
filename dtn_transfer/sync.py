"""--sync: which files the destination already holds, at globus-url-copy's four levels.

globus-url-copy's ``-sync-level``: 0 the destination exists; 1 same size; 2 same size and
the destination not older than the source; 3 same size and same checksum.  Level 2 here
asks for the *same* modification time (to the second), not "not older": a file being
written, or left half-written by a killed transfer, is newer than its source and would
pass for whole under "not older".  Files get their source's time only with
``--preserve-mtime``, and only once they verified, so level 2 skips exactly the files an
earlier ``--preserve-mtime`` run delivered whole.  A file this run already tried and
did not finish is never skipped, whatever the level.
"""
from __future__ import annotations

import ftplib
from collections.abc import Iterable

from .endpoints import Endpoint
from .plan import PlanError, PlannedFile
from .verify import Checker

EXISTS, SIZE, MTIME, CHECKSUM = 0, 1, 2, 3
LEVELS = {EXISTS: "exists", SIZE: "size", MTIME: "size and modification time",
          CHECKSUM: "size and MD5"}


def level_of(sync_level: int | None, verify: bool) -> int:
    """The level a run syncs at: as asked, else size (MD5 with --verify), as before levels."""
    if sync_level is not None:
        return sync_level
    return CHECKSUM if verify else SIZE


def unchanged(source: Endpoint, dest: Endpoint, pair: tuple[str | None, str | None],
              files: Iterable[PlannedFile], level: int, timeout: float = 15.0) -> set[str]:
    """Relpaths of ``files`` the destination already holds at ``level``.  Nothing is skipped
    when the question cannot be asked (the transfer then meets, and reports, the same)."""
    files = list(files)
    checker = Checker(source, dest, pair, False, timeout)
    try:
        dst, src = checker.sides(source_too=level >= MTIME)
        sizes = dst.sizes([f.relpath for f in files])
        if level == EXISTS:
            return {f.relpath for f in files if sizes.get(f.relpath) is not None}
        same = [f for f in files if sizes.get(f.relpath) == f.size]
        if level == SIZE:
            return {f.relpath for f in same}
        assert src is not None
        if level == MTIME:
            names = [f.relpath for f in same]
            theirs, ours = dst.mtimes(names), src.mtimes(names)
            return {r for r in names if theirs.get(r) is not None and theirs.get(r) == ours.get(r)}
        checks = checker.compare_files({f.relpath: f.size for f in same}, dst, src) if same else {}
        return {r for r, problem in checks.items() if problem is None}
    except (PlanError, OSError, EOFError, ftplib.Error):
        checker.close(broken=True)
        return set()
    finally:
        checker.close()
