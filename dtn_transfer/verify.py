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
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from . import control
from .endpoints import FTP, Endpoint
from .plan import PlanError, PlannedFile, ftp_connect
from .progress import parse_cksm_reply, parse_log_time

# A CKSM reply comes only when the server has hashed the whole range (progress markers
# need OPTS CKSM markers=N, and then arrive as 1xx replies on the same channel): the wait
# for it grows with the size, at least this many bytes per second of disk and MD5.
HASH_FLOOR = 16 << 20


def _md5_local(path: str, offset: int = 0, length: int | None = None) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    left = length
    with open(path, "rb") as f:
        f.seek(offset)
        while left is None or left > 0:
            block = f.read(1 << 20 if left is None else min(1 << 20, left))
            if not block:
                break
            digest.update(block)
            if left is not None:
                left -= len(block)
    return digest.hexdigest()


def _full(endpoint: Endpoint, relpath: str) -> str:
    return endpoint.path.rstrip("/") + "/" + relpath


class _Side:
    """Size and checksum queries on one endpoint, over one reused control connection (one
    the run already logged in, ``control``, unless ``fresh``)."""

    def __init__(self, endpoint: Endpoint, preferred: str | None, timeout: float, fresh: bool = False):
        self.endpoint = endpoint
        self.ftp: ftplib.FTP | None = None
        self.node: str | None = None
        self.error = ""
        if not endpoint.local:
            nodes = [preferred] if preferred else []
            nodes += [n for n in endpoint.nodes if n != preferred]
            for node in nodes:
                try:
                    self.ftp = ftp_connect(node, timeout, endpoint.scheme, fresh=fresh)
                    self.node = node
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

    def sizes(self, relpaths: list[str], chunk: int = 128) -> dict[str, int | None]:
        """Sizes of many files (None: missing).  On a GridFTP node the SIZE commands are
        pipelined, ``chunk`` at a time with the replies read in order, so a thousand files
        cost a few round trips instead of a thousand."""
        if self.endpoint.local:
            return {r: self.size(r) for r in relpaths}
        replies = self._ask_many("SIZE", relpaths, chunk)
        return {r: int(v) if v is not None and v.isdecimal() else None for r, v in replies.items()}

    def mtimes(self, relpaths: list[str], chunk: int = 128) -> dict[str, int | None]:
        """Modification times in whole seconds since the epoch (None: missing), pipelined
        ``MDTM`` on a GridFTP node (its reply is UTC, to the second)."""
        if self.endpoint.local:
            out: dict[str, int | None] = {}
            for r in relpaths:
                try:
                    out[r] = int(os.stat(_full(self.endpoint, r)).st_mtime)
                except OSError:
                    out[r] = None
            return out
        found: dict[str, int | None] = {}
        for relpath, value in self._ask_many("MDTM", relpaths, chunk).items():
            try:
                found[relpath] = int(parse_log_time(value)) if value is not None else None
            except ValueError:
                found[relpath] = None
        return found

    def set_mtime(self, relpath: str, mtime: int) -> None:
        """Set a file's modification time (``MFMT`` on a GridFTP node); OSError or ftplib.Error
        if it cannot be set."""
        if self.endpoint.local:
            os.utime(_full(self.endpoint, relpath), (mtime, mtime))
            return
        if self.ftp is None:
            raise PlanError(self.error or "no node answered")
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(mtime))
        self.ftp.sendcmd(f"MFMT {stamp} {self._path(relpath)}")

    def _ask_many(self, verb: str, relpaths: list[str], chunk: int,
                  hashed: dict[str, int] | None = None) -> dict[str, str | None]:
        """``VERB path`` for many files, pipelined; relpath → the value of a ``213 value`` reply.
        ``hashed``: bytes each command makes the server read (CKSM), so the wait for the
        replies grows with them (``HASH_FLOOR``)."""
        if self.ftp is None:
            raise PlanError(self.error or "no node answered")
        out: dict[str, str | None] = dict.fromkeys(relpaths)
        # A CR or LF would end the command early: such a name cannot be asked for (nor sent).
        paths = ((r, self._path(r)) for r in relpaths)
        askable = [(r, p) for r, p in paths if "\r" not in p and "\n" not in p]
        assert self.ftp.sock is not None
        base = self.ftp.sock.gettimeout()
        try:
            for start in range(0, len(askable), chunk):
                part = askable[start:start + chunk]
                if hashed is not None and base is not None:
                    self.ftp.sock.settimeout(base + sum(hashed.get(r, 0) for r, _ in part) / HASH_FLOOR)
                self.ftp.sock.sendall("".join(f"{verb} {p}\r\n" for _, p in part).encode("latin-1"))
                for relpath, _ in part:
                    try:
                        parts = self.ftp.getresp().split()
                    except ftplib.error_perm:
                        continue
                    if len(parts) == 2 and parts[0] == "213":
                        out[relpath] = parts[1]
        finally:
            if hashed is not None and self.ftp is not None and self.ftp.sock is not None:
                self.ftp.sock.settimeout(base)
        return out

    def make_dirs(self, relpaths: list[str], chunk: int = 128) -> None:
        """Make directories (parents listed before children), pipelined on a GridFTP node; one
        that exists already, or cannot be made, is left to the transfer (which reports it)."""
        if self.endpoint.local:
            for relpath in relpaths:
                try:
                    os.makedirs(_full(self.endpoint, relpath), exist_ok=True)
                except OSError:
                    pass
            return
        if self.ftp is None:
            raise PlanError(self.error or "no node answered")
        # the destination directory's own parents first: like -cd, a new destination is made
        parts = self.endpoint.path.strip("/").split("/")
        above = ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]
        above = [p.encode("utf-8", "surrogateescape").decode("latin-1") for p in above]
        paths = above + [self._path(r).rstrip("/") or "/" for r in relpaths]
        paths = [p for p in paths if "\r" not in p and "\n" not in p]
        for start in range(0, len(paths), chunk):
            part = paths[start:start + chunk]
            self.ftp.sock.sendall("".join(f"MKD {p}\r\n" for p in part).encode("latin-1"))
            for _ in part:
                try:
                    self.ftp.getresp()
                except (ftplib.error_perm, ftplib.error_temp):
                    pass            # exists, or refused: the transfer meets and reports it

    def md5_many(self, sizes: dict[str, int], chunk: int = 32) -> dict[str, str | None]:
        """MD5 of whole files (relpath → size to hash), hashed where the data is: on a GridFTP
        node the CKSM commands are pipelined, so many small files cost a few round trips
        instead of one each; a reply that is not a digest counts as None."""
        if self.endpoint.local:
            return {r: self.md5(r, n) for r, n in sizes.items()}
        replies = self._ask_many("CKSM MD5 0 -1", list(sizes), chunk, hashed=sizes)
        return {r: parse_cksm_reply(f"213 {v}") if v is not None else None for r, v in replies.items()}

    def md5(self, relpath: str, size: int = 0, offset: int = 0, length: int | None = None) -> str | None:
        """MD5 of the file (or of ``length`` bytes from ``offset``), hashed where the data is.
        ``size``: bytes to hash, so the wait for the server's one reply scales with it."""
        if self.endpoint.local:
            try:
                return _md5_local(_full(self.endpoint, relpath), offset, length)
            except OSError:
                return None
        if self.ftp is None:
            raise PlanError(self.error or "no node answered")
        assert self.ftp.sock is not None
        base = self.ftp.sock.gettimeout()
        self.ftp.sock.settimeout((base or 0) + size / HASH_FLOOR if base is not None else None)
        try:
            span = f"{offset} {-1 if length is None else length}"
            return parse_cksm_reply(self.ftp.sendcmd(f"CKSM MD5 {span} {self._path(relpath)}"))
        except ftplib.error_perm:
            return None
        finally:
            if self.ftp is not None and self.ftp.sock is not None:
                self.ftp.sock.settimeout(base)

    def close_checked(self) -> None:
        """Close, raising PlanError if no node could be reached in the first place."""
        if self.ftp is None and not self.endpoint.local:
            raise PlanError(self.error or "no node answered")
        self.close(keep=False)

    def close(self, keep: bool = True) -> None:
        """Done: the connection is released for reuse when ``keep`` (every exchange on it
        completed), else closed (an error may have left replies unread)."""
        if self.ftp is not None:
            ftp, self.ftp = self.ftp, None
            if keep and self.node is not None:
                control.release(self.node, self.endpoint.scheme, ftp)
            else:
                control.close(ftp)


def node_answers(node: str | None, timeout: float = 3.0, scheme: str = FTP) -> bool:
    """True if a GridFTP node accepts a login now (None, a local endpoint, always answers)."""
    if node is None:
        return True
    try:
        _Side(Endpoint((node,), "/", scheme), node, timeout, fresh=True).close_checked()
    except PlanError:
        return False
    return True


def pair_answers(source: Endpoint, dest: Endpoint, pair: tuple[str | None, str | None]) -> bool:
    """True if both nodes of a pair accept a login, each with its endpoint's scheme."""
    return node_answers(pair[0], scheme=source.scheme) and node_answers(pair[1], scheme=dest.scheme)


class Checker:
    """Verifies files of one node pair over control connections kept open between calls
    (a batch verifies its files as they finish, a few at a time)."""

    def __init__(self, source: Endpoint, dest: Endpoint, pair: tuple[str | None, str | None],
                 checksum: bool, timeout: float = 15.0):
        self.source, self.dest, self.pair, self.checksum, self.timeout = source, dest, pair, checksum, timeout
        self._dst: _Side | None = None
        self._src: _Side | None = None

    def _sides(self, checksum: bool | None = None) -> tuple[_Side, _Side | None]:
        if self._dst is None:
            self._dst = _Side(self.dest, self.pair[1], self.timeout)
        if (self.checksum if checksum is None else checksum) and self._src is None:
            self._src = _Side(self.source, self.pair[0], self.timeout)
        return self._dst, self._src

    def sides(self, source_too: bool = True) -> tuple[_Side, _Side | None]:
        """The destination's and (when asked) the source's connections, opened if need be."""
        return self._sides(checksum=source_too)

    def preserve_mtimes(self, relpaths: list[str]) -> dict[str, str | None]:
        """--preserve-mtime: give each destination file its source's modification time;
        relpath → None when set, else why not (a file is done only with its time set)."""
        try:
            dst, src = self._sides(checksum=True)
            assert src is not None
            times = src.mtimes(relpaths)
        except (PlanError, OSError, EOFError, ftplib.Error) as exc:
            self.close(broken=True)
            return dict.fromkeys(relpaths, f"could not verify: modification time not read: {exc}")
        out: dict[str, str | None] = {}
        for relpath in relpaths:
            mtime = times.get(relpath)
            if mtime is None:
                out[relpath] = "the source's modification time could not be read"
                continue
            try:
                dst.set_mtime(relpath, mtime)
                out[relpath] = None
            except ftplib.error_perm as exc:
                out[relpath] = f"modification time not set: {' '.join(str(exc).split())[:200]}"
            except (PlanError, OSError, EOFError, ftplib.Error) as exc:
                self.close(broken=True)
                out[relpath] = f"could not verify: modification time not set: {exc}"
        return out

    def make_dirs(self, relpaths: list[str]) -> bool:
        """Make the destination directories a batch writes into (parents first); False if the
        destination could not be asked (the caller then lets globus-url-copy make them)."""
        try:
            self._sides(checksum=False)[0].make_dirs(relpaths)
        except (PlanError, OSError, EOFError, ftplib.Error):
            self.close(broken=True)
            return False
        return True

    def close(self, broken: bool = False) -> None:
        """Release both connections for reuse, or close them when ``broken`` (an exchange
        failed midway)."""
        for side in (self._dst, self._src):
            if side is not None:
                side.close(keep=not broken)
        self._dst = self._src = None

    def sizes(self, relpaths: list[str]) -> dict[str, int | None]:
        """Destination sizes now (progress of files being written); {} if they cannot be had."""
        try:
            return self._sides()[0].sizes(relpaths)
        except (PlanError, OSError, EOFError, ftplib.Error):
            self.close(broken=True)
            return {}

    def verify(self, files: Iterable[PlannedFile]) -> dict[str, str | None]:
        """relpath → None when the destination matches, else the reason it does not."""
        files = list(files)
        out: dict[str, str | None] = {}
        try:
            dst, src = self._sides()
            sizes = dst.sizes([f.relpath for f in files])
        except (PlanError, OSError, EOFError, ftplib.Error) as exc:
            self.close(broken=True)
            return {f.relpath: f"could not verify: {exc}" for f in files}
        whole = []
        for f in files:
            size = sizes.get(f.relpath)
            if size is None:
                out[f.relpath] = "missing at the destination after transfer"
            elif size != f.size:
                out[f.relpath] = self._size_mismatch(f, size)
            elif src is None:
                out[f.relpath] = None
            else:
                whole.append(f)
        if whole:
            assert src is not None
            out.update(self.compare_files({f.relpath: f.size for f in whole}, dst, src))
        return out

    def _size_mismatch(self, f: PlannedFile, size: int) -> str:
        """Why the sizes differ, with the source's size as it is now: a file that grew (or
        shrank) while it was sent is reported with its new size, not the listed one."""
        try:
            now = current_sizes(self.source, [f.relpath], self.pair[0], self.timeout).get(f.relpath)
        except (PlanError, OSError, EOFError, ftplib.Error):
            now = None
        if now is not None and now != f.size:
            return (f"the source changed while it was sent: it has {now} bytes now, {f.size} when "
                    f"listed; the destination has {size}")
        return f"destination has {size} bytes, source has {f.size}"

    def compare_files(self, sizes: dict[str, int], dst: _Side, src: _Side) -> dict[str, str | None]:
        """Whole-file MD5s of many files (relpath → size), each side hashed once, both sides at
        once, pipelined on each: relpath → None when they match, else why not."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            asked = pool.submit(src.md5_many, sizes)
            try:
                got = dst.md5_many(sizes)
                want = asked.result()
            except (PlanError, OSError, EOFError, ftplib.Error) as exc:
                asked.exception()      # let the other side finish before closing both
                self.close(broken=True)
                return dict.fromkeys(sizes, f"could not verify: {exc}")
        return {r: _md5_problem(want.get(r), got.get(r)) for r in sizes}

    def compare_range(self, relpath: str, dst: _Side, src: _Side, size: int, offset: int = 0,
                      length: int | None = None) -> str | None:
        """Compare MD5s, each side hashed once and both at once (each on its own connection)."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            asked = pool.submit(src.md5, relpath, size, offset, length)
            try:
                got = dst.md5(relpath, size, offset, length)
                want = asked.result()
            except (PlanError, OSError, EOFError, ftplib.Error) as exc:
                asked.exception()      # let the other side finish before closing both
                self.close(broken=True)
                return f"could not verify: {exc}"
        return _md5_problem(want, got)

    def compare_ranges(self, relpath: str, pieces: list[tuple[int, int]]) -> str | None:
        """--split --verify: each range's MD5 on both sides (None when every range matches)."""
        try:
            dst, src = self._sides(checksum=True)
        except (PlanError, OSError, EOFError, ftplib.Error) as exc:
            self.close(broken=True)
            return f"could not verify: {exc}"
        assert src is not None
        for offset, length in pieces:
            problem = self.compare_range(relpath, dst, src, length, offset, length)
            if problem is not None:
                return f"range {offset}+{length}: {problem}"
        return None


def _md5_problem(want: str | None, got: str | None) -> str | None:
    if want is None or got is None:
        return "checksum could not be computed"
    if want != got:
        return f"MD5 mismatch (source {want}, destination {got})"
    return None


def current_sizes(endpoint: Endpoint, relpaths: list[str], preferred: str | None = None,
                  timeout: float = 15.0) -> dict[str, int | None]:
    """relpath → size now (None: missing) on an endpoint; PlanError if no node answers."""
    side = _Side(endpoint, preferred, timeout)
    try:
        if side.ftp is None and not endpoint.local:
            raise PlanError(side.error or "no node answered")
        sizes = side.sizes(relpaths)
    except BaseException:
        side.close(keep=False)
        raise
    side.close()
    return sizes


def verify_files(source: Endpoint, dest: Endpoint, files: Iterable[PlannedFile],
                 pair: tuple[str | None, str | None], checksum: bool,
                 timeout: float = 15.0) -> dict[str, str | None]:
    """relpath → None when the destination matches, else the reason it does not."""
    checker = Checker(source, dest, pair, checksum, timeout)
    try:
        return checker.verify(files)
    finally:
        checker.close()
