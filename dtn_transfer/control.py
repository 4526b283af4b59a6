"""Logged-in control connections kept for reuse within one run.

A GSI login is the dearest thing the tool's own connections do: AUTH, a TLS handshake
in ADAT tokens and the grid-mapfile login, about six round trips, and on the server a
forked session process.  Without reuse one run logged in to the source to list it, again
to check sizes or checksums there (``--verify``, ``--sync``, ``--preserve-mtime``,
``--resume``), and to the destination once per batch.  Inside ``kept()`` a connection
that finished its work cleanly is parked here instead of closed, and the next user of
the same node (same scheme, same identity) takes it after one ``NOOP``; leaving
``kept()`` closes them all.

Only connections whose every command got its reply are parked (``release``): one that
raised mid-exchange may still owe replies, and a later SIZE would read a stale one.
Liveness checks (``verify.node_answers``) always log in afresh, as that is what they ask.
"""
from __future__ import annotations

import contextlib
import ftplib
import os
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_parked: dict[tuple[str, str, str], list[ftplib.FTP]] | None = None   # None: not keeping


def _key(node: str, scheme: str) -> tuple[str, str, str]:
    """A connection serves only the identity it logged in with (credentials come from the
    environment, which ``Security.use_credentials`` sets for the run)."""
    identity = "|".join(os.environ.get(k, "") for k in ("X509_USER_PROXY", "X509_USER_CERT", "X509_CERT_DIR"))
    return node, scheme, identity


@contextlib.contextmanager
def kept() -> Iterator[None]:
    """Within: connections released cleanly are kept for the next user; at the end, closed."""
    global _parked
    with _lock:
        outer = _parked is not None
        if not outer:
            _parked = {}
    try:
        yield
    finally:
        if not outer:
            with _lock:
                parked, _parked = _parked or {}, None
            for connections in parked.values():
                for ftp in connections:
                    _bye(ftp)


def take(node: str, scheme: str) -> ftplib.FTP | None:
    """A parked connection to ``node`` that still answers, or None."""
    while True:
        with _lock:
            if _parked is None:
                return None
            connections = _parked.get(_key(node, scheme))
            if not connections:
                return None
            ftp = connections.pop()
        try:
            ftp.voidcmd("NOOP")
            return ftp
        except (OSError, EOFError, ftplib.Error):
            ftp.close()       # gone meanwhile (server idle timeout, node restarted): try the next


def release(node: str, scheme: str, ftp: ftplib.FTP) -> None:
    """Done with a connection whose exchanges all completed: parked if keeping, else closed."""
    with _lock:
        if _parked is not None:
            _parked.setdefault(_key(node, scheme), []).append(ftp)
            return
    close(ftp)


def _bye(ftp: ftplib.FTP) -> None:
    """QUIT without waiting for the reply (a round trip each at the end of a run: on a WAN,
    a few of them were most of the time after the last file)."""
    try:
        ftp.putcmd("QUIT")
    except (OSError, EOFError, ftplib.Error):
        pass
    ftp.close()


def close(ftp: ftplib.FTP) -> None:
    """QUIT politely, or just drop the socket."""
    try:
        ftp.quit()
    except (OSError, EOFError, ftplib.Error):
        ftp.close()
