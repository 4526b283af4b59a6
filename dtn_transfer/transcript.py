"""Incremental parser of ``globus-url-copy -dbg`` output (its control-channel transcript).

One long-running globus-url-copy per node pair is what makes many-file transfers fast (a
process per few files costs a fork and a login per slot on both servers), but its normal
output does not say which file finished.  The debug transcript does: every server reply
is printed under the URL of the transfer it belongs to, so ``226`` from a destination URL
means that file was closed there, and 4xx/5xx replies name the file they failed.

Records (captured from globus-url-copy 10.12, see tests/dtn/fixtures/dbg_*.txt)::

    debug: starting to transfer <src url> to <dst url>     (also: to get <url>, to put <url>)
    debug: sending command to <url>:
    <command>
    debug: response from <url>:
    NNN-first line            (multi-line reply)  or   NNN text   (one line)
    ...
    NNN last line
    debug: fault on connection to <url>: <message>

Anything outside a record (``error: ...``, ``continuing on error: ...``) is the client's
own error text.  Pure: lines in, events out, no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

STARTED, DONE, FAILED, PERF, CLIENT_ERROR = "started", "done", "failed", "perf", "client-error"

_FINAL = re.compile(r"^(\d{3}) ")
_STRIPE_BYTES = " Stripe Bytes Transferred: "


@dataclass(frozen=True)
class Event:
    kind: str                  # STARTED, DONE, FAILED, PERF, CLIENT_ERROR
    urls: tuple[str, ...]      # STARTED: every URL of the transfer; else the URL replied for
    text: str = ""             # FAILED/CLIENT_ERROR: the reply or message, one line
    nbytes: int = 0            # PERF: bytes the server reports for this file so far


class Transcript:
    """Feed it lines (without newline); it returns the events each line completes."""

    def __init__(self) -> None:
        self._url: str | None = None         # reply being read, for this URL
        self._reply: list[str] = []
        self._code = ""
        self._command_for: str | None = None  # next line is a command sent to this URL

    def feed(self, line: str) -> list[Event]:
        if line.startswith("debug: "):
            events = self._flush()
            self._command_for = None
            body = line[7:]
            if body.startswith("response from "):
                self._url = body[14:].rstrip(":")
            elif body.startswith("sending command to "):
                self._command_for = body[19:].rstrip(":")
            elif body.startswith("starting to transfer "):
                src, sep, dst = body[21:].partition(" to ")
                events.append(Event(STARTED, (src, dst) if sep else (src,)))
            elif body.startswith(("starting to get ", "starting to put ")):
                events.append(Event(STARTED, (body[16:],)))
            elif body.startswith("fault on connection to "):
                url, _, message = body[23:].partition(": ")
                events.append(Event(FAILED, (url,), message.strip()))
            return events
        if self._command_for is not None:
            self._command_for = None         # the command itself: nothing to learn from it
            return []
        if self._url is None:
            text = line.strip()
            return [Event(CLIENT_ERROR, (), text)] if text else []
        if not self._reply:
            if not line.strip():
                return []
            self._code = line[:3]
        self._reply.append(line)
        if _FINAL.match(line) and line[:3] == self._code:
            return self._flush()
        return []

    def _flush(self) -> list[Event]:
        url, reply, code = self._url, self._reply, self._code
        self._url, self._reply, self._code = None, [], ""
        if url is None or not reply:
            return []
        if code == "226":
            return [Event(DONE, (url,))]
        if code == "112":
            nbytes = sum(int(r[len(_STRIPE_BYTES):]) for r in reply
                         if r.startswith(_STRIPE_BYTES) and r[len(_STRIPE_BYTES):].strip().isdecimal())
            return [Event(PERF, (url,), nbytes=nbytes)]
        if code[:1] in ("4", "5"):
            text = " ".join(r[4:].strip() if r[:3] == code else r.strip() for r in reply)
            return [Event(FAILED, (url,), f"{code} {text}".strip())]
        return []
