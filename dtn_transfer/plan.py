"""Plan: what to move, in which size class, over which source/destination node pair.

Files smaller than the bandwidth-delay product (BDP) cannot fill a pipe with one
stream, so they want many files in flight and pipelining; files many times the BDP
want parallel streams.  Bytes, not file counts, are spread over node pairs (largest
file first onto the least-loaded pair) so every pair finishes at about the same time.
"""
from __future__ import annotations

import ftplib
import os
from dataclasses import asdict, dataclass

from . import control
from .endpoints import FTP, Endpoint, nameable
from .gsi import GsiError, connect
from .progress import parse_mlsx_line

SMALL, MEDIUM, LARGE = "small", "medium", "large"
BINS = (SMALL, MEDIUM, LARGE)
LARGE_FACTOR = 16   # a file is "large" from this many BDPs up


class PlanError(Exception):
    """The data set could not be listed; one sentence for the user."""


@dataclass(frozen=True)
class SourceFile:
    relpath: str
    size: int
    mtime: float | None = None       # seconds since the epoch, when the listing says
    problem: str | None = None       # why this entry is never sent (a hostile name)


@dataclass(frozen=True, kw_only=True)
class PlannedFile:
    """A file of the plan: its size class and the node pair it goes over (first try)."""

    relpath: str
    size: int
    bin: str
    pair: int        # index into Plan.pairs
    mtime: float | None = None
    problem: str | None = None   # set: never sent, reported failed with this reason


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What a run moves: every file with its size class and node pair (kept for --resume)."""

    source: Endpoint
    dest: Endpoint
    bdp: int
    pairs: tuple[tuple[str | None, str | None], ...]
    files: tuple[PlannedFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def bytes_per_pair(self) -> list[int]:
        loads = [0] * len(self.pairs)
        for f in self.files:
            loads[f.pair] += f.size
        return loads

    def to_json(self) -> dict:
        return {"source": {"nodes": list(self.source.nodes), "path": self.source.path,
                           "scheme": self.source.scheme},
                "dest": {"nodes": list(self.dest.nodes), "path": self.dest.path, "scheme": self.dest.scheme},
                "bdp": self.bdp, "pairs": [list(p) for p in self.pairs],
                "files": [asdict(f) for f in self.files]}

    @classmethod
    def from_json(cls, doc: dict) -> Plan:
        # plans from before GSI have no scheme: they were anonymous ftp://
        return cls(source=Endpoint(tuple(doc["source"]["nodes"]), doc["source"]["path"],
                                   doc["source"].get("scheme", FTP)),
                   dest=Endpoint(tuple(doc["dest"]["nodes"]), doc["dest"]["path"],
                                 doc["dest"].get("scheme", FTP)),
                   bdp=int(doc["bdp"]), pairs=tuple((p[0], p[1]) for p in doc["pairs"]),
                   files=tuple(PlannedFile(**f) for f in doc["files"]))


def size_bin(size: int, bdp: int) -> str:
    """Size class of a file relative to the bandwidth-delay product."""
    if size < bdp:
        return SMALL
    if size < LARGE_FACTOR * bdp:
        return MEDIUM
    return LARGE


def node_pairs(source: Endpoint, dest: Endpoint, limit: int | None = None
               ) -> list[tuple[str | None, str | None]]:
    """Source/destination node pairs, as many as the larger cluster has (cycling the smaller)."""
    src = list(source.nodes) or [None]
    dst = list(dest.nodes) or [None]
    count = max(len(src), len(dst))
    if limit is not None:
        count = max(1, min(count, limit))
    return [(src[i % len(src)], dst[i % len(dst)]) for i in range(count)]


def spread(sizes: list[int], pairs: int) -> list[int]:
    """Pair index per file: largest first onto the least-loaded pair (LPT), deterministic."""
    loads = [0] * pairs
    out = [0] * len(sizes)
    for index in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        target = min(range(pairs), key=lambda p: (loads[p], p))
        out[index] = target
        loads[target] += sizes[index]
    return out


def make_plan(source: Endpoint, dest: Endpoint, files: list[SourceFile], bdp: int,
              nodes: int | None = None) -> Plan:
    """Bin and spread a listed data set.  ``nodes`` caps the number of node pairs used."""
    if bdp <= 0:
        raise ValueError("the bandwidth-delay product must be positive")
    pairs = node_pairs(source, dest, nodes)
    ordered = sorted(files, key=lambda f: f.relpath)
    assignment = spread([f.size for f in ordered], len(pairs))
    planned = tuple(PlannedFile(relpath=f.relpath, size=f.size, bin=size_bin(f.size, bdp), pair=pair,
                                mtime=f.mtime, problem=f.problem)
                    for f, pair in zip(ordered, assignment, strict=False))
    return Plan(source=source, dest=dest, bdp=bdp, pairs=tuple(pairs), files=planned)


# -- walking the data set ----------------------------------------------------

def walk_local(root: str) -> list[SourceFile]:
    """Regular files below a local directory (symbolic links are not followed)."""
    if not os.path.isdir(root):
        raise PlanError(f"source directory {root} does not exist or is not a directory")
    found: list[SourceFile] = []
    for directory, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(directory, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if os.path.isfile(full) and not os.path.islink(full):
                found.append(SourceFile(os.path.relpath(full, root), st.st_size, st.st_mtime))
    return found


def ftp_connect(node: str, timeout: float = 10.0, scheme: str = FTP, fresh: bool = False) -> ftplib.FTP:
    """A control connection to a GridFTP node, for listing and verifying: GSI-authenticated
    for ``gsiftp`` (``gsi.connect``), anonymous for ``ftp``; one this run already logged in
    and released (``control``) unless ``fresh``."""
    kept = None if fresh else control.take(node, scheme)
    if kept is not None:
        kept.sock.settimeout(timeout)
        return kept
    if scheme != FTP:
        try:
            return connect(node, timeout=timeout)
        except (GsiError, OSError, EOFError) as exc:
            raise PlanError(f"cannot log in to GridFTP node {node}: {exc or type(exc).__name__}") from None
    host, _, port = node.rpartition(":")
    ftp = ftplib.FTP(timeout=timeout)
    ftp.encoding = "latin-1"  # bytes pass through; names are re-decoded as UTF-8 below
    try:
        ftp.connect(host, int(port))
        ftp.login()
    except (OSError, EOFError, ftplib.Error) as exc:
        ftp.close()
        raise PlanError(f"cannot log in to GridFTP node {node}: {exc or type(exc).__name__}") from None
    return ftp


def _utf8(name: str) -> str:
    return name.encode("latin-1").decode("utf-8", "surrogateescape")


def name_problem(name: str) -> str | None:
    """Why one name from a remote listing cannot be a file's name below the destination, or
    None.  A listing comes from the source server, which need not be friendly: a name with
    ``/``, or ``.``/``..``, would put the file (or, with --split, a DELE) outside the
    destination tree; NUL and control characters end or split control-channel commands."""
    if name in ("", ".", ".."):
        return f"the source listed a file named {name!r}, which names a directory, not a file"
    if "/" in name:
        return f"the source listed a name with '/' in it ({name!r}): it would leave its directory"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        return f"the source listed a name with control characters or NUL ({name!r})"
    return None


def safe_relpath(relpath: str) -> bool:
    """True if every component of ``relpath`` passes ``name_problem`` (nothing escapes)."""
    return all(name_problem(part) is None for part in relpath.split("/"))


def _shown(name: str) -> str:
    """A refused name as a harmless relpath component for the journal and the report."""
    return "!" + name.encode("unicode_escape", "backslashreplace").decode("ascii").replace("/", "\\x2f")


def walk_remote(node: str, root: str, timeout: float = 10.0, scheme: str = FTP) -> list[SourceFile]:
    """Regular files below ``root`` on a GridFTP node, listed with MLSD (MLSC under GSI).  The
    logged-in connection is released for reuse (checks at the source later in the run)."""
    ftp = ftp_connect(node, timeout, scheme)
    found: list[SourceFile] = []
    refused: set[str] = set()
    clean = False
    try:
        pending = [""]
        while pending:
            rel = pending.pop()
            lines: list[str] = []
            path = root.rstrip("/") + ("/" + rel if rel else "")
            try:
                wire = path.encode("utf-8", "surrogateescape").decode("latin-1")   # ftplib sends latin-1
                ftp.retrlines(f"MLSD {wire}", lines.append)
            except ftplib.Error as exc:
                raise PlanError(f"cannot list {path} on {node}: {str(exc).splitlines()[0]}") from None
            for line in lines:
                entry = parse_mlsx_line(line)
                if entry is None or entry.type in ("cdir", "pdir"):
                    continue
                name = _utf8(entry.name)
                child = (rel + "/" if rel else "") + name
                problem = name_problem(name)
                if problem is not None:
                    # reported (once), never sent nor listed further; its relpath made harmless
                    shown = (rel + "/" if rel else "") + _shown(name)
                    if shown not in refused:
                        refused.add(shown)
                        found.append(SourceFile(shown, 0, None, problem))
                elif entry.type == "dir" and not (scheme != FTP or nameable(child)):
                    # Cannot be named on the control channel, so cannot be listed either:
                    # keep it in the plan so the report says so instead of losing it.
                    found.append(SourceFile(child + "/", 0))
                elif entry.type == "dir":
                    pending.append(child)
                elif entry.type == "file" and entry.size is not None:
                    found.append(SourceFile(child, entry.size, entry.modify))
        clean = True
    except OSError as exc:
        raise PlanError(f"listing on GridFTP node {node} failed: {exc}") from None
    finally:
        if clean:
            control.release(node, scheme, ftp)
        else:
            control.close(ftp)
    return found


def walk(source: Endpoint) -> list[SourceFile]:
    """List the data set, trying each source node in turn until one answers."""
    if source.local:
        return walk_local(source.path)
    errors = []
    for node in source.nodes:
        try:
            return walk_remote(node, source.path, scheme=source.scheme)
        except PlanError as exc:
            errors.append(str(exc))
    raise PlanError(errors[-1] if len(errors) == 1 else "; ".join(errors))
