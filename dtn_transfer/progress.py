"""Pure parsers for what GridFTP tools print: text in, plain data out, no I/O.

Formats (see design/sources.md and the captures in tests/dtn/fixtures); the control-channel
transcript of ``globus-url-copy -dbg`` (perf markers, per-file results) is parsed by
``transcript.py``:
- GridFTP server transfer log: one ``DATE=... HOST=... NBYTES=... STREAMS=... DEST=[ip] ...``
  line per transfer, possibly behind a ``[pid] date :: Transfer stats: `` prefix.
- ``MLSD``/``MLST`` fact lines and ``CKSM`` replies from the server.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TransferLogRecord:
    """One completed transfer as the GridFTP server logged it."""

    start: float          # seconds since the epoch (UTC)
    end: float
    host: str             # the server's host name
    user: str
    file: str
    nbytes: int
    streams: int
    stripes: int
    buffer: int
    block: int
    remote: str           # the data peer's address (DEST=[ip])
    type: str             # RETR (sent), STOR (received), ...
    code: int             # FTP reply code, 226 = success

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


_LOG_KEY = re.compile(r"(?:^| )([A-Za-z][A-Za-z.]*)=")
_LOG_TIME = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,6}))?$")


def parse_log_time(text: str) -> float:
    """``YYYYmmddHHMMSS.uuuuuu`` (UTC, as the server writes it) → seconds since the epoch."""
    match = _LOG_TIME.match(text)
    if match is None:
        raise ValueError(f"not a GridFTP log time: {text!r}")
    y, mo, d, h, mi, s = (int(match.group(k)) for k in range(1, 7))
    micros = int((match.group(7) or "0").ljust(6, "0"))
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + micros / 1e6


def parse_transfer_log_line(line: str) -> TransferLogRecord | None:
    """One transfer-log line (with or without the ``Transfer stats:`` prefix), else None.

    Values may contain spaces (FILE=), so a value runs up to the next `` KEY=``.
    """
    start = line.find("DATE=")
    if start < 0:
        return None
    body = line[start:].rstrip("\r\n")
    keys = list(_LOG_KEY.finditer(body))
    fields: dict[str, str] = {}
    for k, match in enumerate(keys):
        end = keys[k + 1].start() if k + 1 < len(keys) else len(body)
        fields[match.group(1)] = body[match.end():end]
    try:
        return TransferLogRecord(
            start=parse_log_time(fields["START"]), end=parse_log_time(fields["DATE"]),
            host=fields.get("HOST", ""), user=fields.get("USER", ""), file=fields.get("FILE", ""),
            nbytes=int(fields["NBYTES"]), streams=int(fields.get("STREAMS", "1")),
            stripes=int(fields.get("STRIPES", "1")), buffer=int(fields.get("BUFFER", "0")),
            block=int(fields.get("BLOCK", "0")), remote=fields.get("DEST", "").strip("[]"),
            type=fields.get("TYPE", ""), code=int(fields.get("CODE", "0")))
    except (KeyError, ValueError):
        return None


def parse_transfer_log(text: str) -> list[TransferLogRecord]:
    """Every well-formed transfer record in a log; other lines are skipped."""
    out = []
    for line in text.splitlines():
        record = parse_transfer_log_line(line)
        if record is not None:
            out.append(record)
    return out


@dataclass(frozen=True)
class ListingEntry:
    name: str
    type: str    # file, dir, cdir, pdir, OS.unix=slink...
    size: int | None
    modify: float | None = None   # the Modify fact (UTC), seconds since the epoch


def parse_mlsx_line(line: str) -> ListingEntry | None:
    """One MLSD/MLST line ``Fact=value;...; name`` → entry, or None if malformed."""
    line = line.rstrip("\r\n")
    if line.startswith(" "):
        line = line[1:]  # MLST replies indent the fact line
    facts_text, sep, name = line.partition("; ")
    if not sep or not name:
        return None
    facts: dict[str, str] = {}
    for fact in facts_text.split(";"):
        key, eq, value = fact.partition("=")
        if eq:
            facts[key.lower()] = value
    size: int | None
    try:
        size = int(facts["size"]) if "size" in facts else None
    except ValueError:
        size = None
    try:
        modify = parse_log_time(facts["modify"]) if "modify" in facts else None
    except ValueError:
        modify = None
    return ListingEntry(name, facts.get("type", "").lower(), size, modify)


def parse_cksm_reply(reply: str) -> str | None:
    """``213 <hex digest>`` → lower-case digest, else None."""
    parts = reply.strip().split()
    if len(parts) == 2 and parts[0] == "213" and re.fullmatch(r"[0-9a-fA-F]+", parts[1]):
        return parts[1].lower()
    return None


_FULL = ("No space left on device", "Disk quota exceeded", "Exceeded storage allocation")


def destination_full(reply: str) -> bool:
    """True if a server reply (or client error) says the destination is out of space or over
    quota: ``552`` (RFC 959, "exceeded storage allocation") or the errno text the GridFTP
    server quotes in its ``500``/``451`` replies (ENOSPC, EDQUOT).  Sending again cannot help."""
    return reply.startswith("552") or any(text in reply for text in _FULL)


def error_blocks(stderr: str) -> list[str]:
    """globus-url-copy's stderr split into its ``error: ...`` blocks, each one string."""
    blocks: list[str] = []
    for piece in re.split(r"(?m)^error: ", stderr):
        piece = piece.strip()
        if piece:
            blocks.append(" ".join(line.strip() for line in piece.splitlines() if line.strip()))
    return blocks
