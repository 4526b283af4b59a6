"""Verify: a file counts as done only when the destination proves it, never on exit codes.

globus-url-copy has exited 0 after writing an empty file (gsiftp:// against an ftp-only
server), so every file is checked at the destination: its size always, its MD5 when
asked (local hashing, or the GridFTP ``CKSM`` command on the nodes, which hashes where
the data is instead of pulling it back over the network).
"""
from __future__ import annotations

import ftplib
import hashlib
import os
from collections.abc import Iterable

from .endpoints import Endpoint
from .plan import PlanError, PlannedFile, ftp_connect
from .progress import parse_cksm_reply


def _md5_local(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _full(endpoint: Endpoint, relpath: str) -> str:
    return endpoint.path.rstrip("/") + "/" + relpath


class _Side:
    """Size and checksum queries on one endpoint, over one reused control connection."""

    def __init__(self, endpoint: Endpoint, preferred: str | None, timeout: float):
        self.endpoint = endpoint
        self.ftp: ftplib.FTP | None = None
        self.error = ""
        if not endpoint.local:
            nodes = [preferred] if preferred else []
            nodes += [n for n in endpoint.nodes if n != preferred]
            for node in nodes:
                try:
                    self.ftp = ftp_connect(node, timeout)
                    break
                except PlanError as exc:
                    self.error = str(exc)

    def _path(self, relpath: str) -> str:
        # ftplib sends str as latin-1; this turns the UTF-8 name back into its bytes.
        return _full(self.endpoint, relpath).encode("utf-8", "surrogateescape").decode("latin-1")

    def size(self, relpath: str) -> int | None:
        if self.endpoint.local:
            try:
                return os.stat(_full(self.endpoint, relpath)).st_size
            except OSError:
                return None
        if self.ftp is None:
            raise PlanError(self.error or "no node answered")
        try:
            reply = self.ftp.sendcmd("SIZE " + self._path(relpath))
        except ftplib.error_perm:
            return None
        parts = reply.split()
        return int(parts[1]) if len(parts) == 2 and parts[1].isdecimal() else None

    def md5(self, relpath: str) -> str | None:
        if self.endpoint.local:
            try:
                return _md5_local(_full(self.endpoint, relpath))
            except OSError:
                return None
        if self.ftp is None:
            raise PlanError(self.error or "no node answered")
        try:
            return parse_cksm_reply(self.ftp.sendcmd(f"CKSM MD5 0 -1 {self._path(relpath)}"))
        except ftplib.error_perm:
            return None

    def close_checked(self) -> None:
        """Close, raising PlanError if no node could be reached in the first place."""
        if self.ftp is None and not self.endpoint.local:
            raise PlanError(self.error or "no node answered")
        self.close()

    def close(self) -> None:
        if self.ftp is not None:
            try:
                self.ftp.quit()
            except (OSError, ftplib.Error):
                self.ftp.close()


def node_answers(node: str | None, timeout: float = 3.0) -> bool:
    """True if a GridFTP node accepts a login now (None, a local endpoint, always answers)."""
    if node is None:
        return True
    try:
        _Side(Endpoint((node,), "/"), node, timeout).close_checked()
    except PlanError:
        return False
    return True


def verify_files(source: Endpoint, dest: Endpoint, files: Iterable[PlannedFile],
                 pair: tuple[str | None, str | None], checksum: bool,
                 timeout: float = 15.0) -> dict[str, str | None]:
    """relpath → None when the destination matches, else the reason it does not."""
    out: dict[str, str | None] = {}
    dst = _Side(dest, pair[1], timeout)
    src = _Side(source, pair[0], timeout) if checksum else None
    try:
        for f in files:
            try:
                size = dst.size(f.relpath)
                if size is None:
                    out[f.relpath] = "missing at the destination after transfer"
                elif size != f.size:
                    out[f.relpath] = f"destination has {size} bytes, source has {f.size}"
                elif src is not None:
                    want, got = src.md5(f.relpath), dst.md5(f.relpath)
                    if want is None or got is None:
                        out[f.relpath] = "checksum could not be computed"
                    elif want != got:
                        out[f.relpath] = f"MD5 mismatch (source {want}, destination {got})"
                    else:
                        out[f.relpath] = None
                else:
                    out[f.relpath] = None
            except PlanError as exc:
                out[f.relpath] = f"could not verify: {exc}"
            except (OSError, EOFError, ftplib.Error) as exc:
                out[f.relpath] = f"could not verify: {exc}"
                dst.close()
                dst = _Side(dest, pair[1], timeout)
    finally:
        dst.close()
        if src is not None:
            src.close()
    return out
