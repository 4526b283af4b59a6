"""Endpoints: a local directory, or a DTN cluster (several GridFTP nodes) plus a path.

Written ``[gsiftp://]host:port,host:port/abs/path`` (nodes of one cluster share a file
system, as DTN clusters do) or a plain local path.  GridFTP endpoints are GSI
(``gsiftp://``, X.509 credentials) unless written ``ftp://``, which is anonymous and
clear text and has to be asked for (``anonymous=True``, the CLI's ``--anonymous``);
``--anonymous`` also turns a bare ``host:port/path`` into ``ftp://``.

URLs are built by percent-encoding the path, so spaces, quotes and ``$()`` never need a
shell or quoting.  An anonymous session's control channel (globus XIO telnet driver)
silently drops bytes outside printable ASCII, so on ``ftp://`` such names cannot be
named at all: callers must check ``Endpoint.nameable`` and report those files instead of
sending them.  A GSI session wraps every command (base64 of TLS records), so UTF-8 and
any byte but CR and LF pass.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote

_NODE = re.compile(r"^[A-Za-z0-9._-]+:\d{1,5}$")
GSIFTP, FTP = "gsiftp", "ftp"
SCHEMES = (GSIFTP, FTP)


class EndpointError(ValueError):
    """An endpoint string that cannot be understood; the message says why."""


@dataclass(frozen=True)
class Endpoint:
    nodes: tuple[str, ...]   # "host:port" of each GridFTP node; empty for a local path
    path: str                # absolute directory path (on the nodes, or local)
    scheme: str = GSIFTP     # GSIFTP or FTP (anonymous); meaningless for a local path

    @property
    def local(self) -> bool:
        return not self.nodes

    def url(self, node: str | None, relpath: str) -> str:
        """The globus-url-copy URL of ``relpath`` below this endpoint on ``node``."""
        full = self.path.rstrip("/") + "/" + relpath if relpath else self.path
        encoded = quote(full, safe="/")
        if self.local:
            return "file://" + encoded
        return f"{self.scheme}://{node}{encoded}"

    @property
    def gsi(self) -> bool:
        return not self.local and self.scheme == GSIFTP

    def nameable(self, relpath: str) -> bool:
        """True if this endpoint's nodes can be told this name (see the module doc)."""
        if self.local:
            return True
        if self.gsi:
            return "\r" not in relpath and "\n" not in relpath
        return nameable(relpath)

    def __str__(self) -> str:
        if self.local:
            return self.path
        return ("ftp://" if self.scheme == FTP else "") + ",".join(self.nodes) + self.path


def parse_endpoint(text: str, anonymous: bool = False) -> Endpoint:
    """``[gsiftp://]h1:p1,h2:p2/path`` → GSI GridFTP endpoint (``ftp://`` or, with
    ``anonymous``, a bare one: anonymous); ``/path`` or ``./path`` → local endpoint."""
    if not text:
        raise EndpointError("an endpoint must not be empty")
    scheme = FTP if anonymous else GSIFTP
    if "://" in text and not text.startswith(("/", ".", "~")):
        scheme, text = text.split("://", 1)
        if scheme not in SCHEMES:
            raise EndpointError(f"scheme {scheme}:// is not supported (gsiftp:// or, anonymous, ftp://)")
        if scheme == FTP and not anonymous:
            raise EndpointError("ftp:// is anonymous and clear text: pass --anonymous to use it")
        if scheme == GSIFTP and anonymous:
            raise EndpointError("--anonymous and gsiftp:// contradict each other")
        if text.startswith("/"):
            raise EndpointError(f"{scheme}:// endpoint names no host:port")
    if text.startswith(("/", ".", "~")) or "/" not in text and ":" not in text:
        return Endpoint((), os.path.abspath(os.path.expanduser(text)))
    slash = text.find("/")
    if slash < 0:
        raise EndpointError(f"endpoint {text!r} names nodes but no /path after them")
    node_text, path = text[:slash], text[slash:]
    nodes = tuple(n.strip() for n in node_text.split(",") if n.strip())
    for node in nodes:
        if not _NODE.match(node):
            raise EndpointError(f"node {node!r} in endpoint {text!r} is not host:port")
    if not nodes:
        raise EndpointError(f"endpoint {text!r} lists no nodes")
    return Endpoint(nodes, path, scheme)


def nameable(relpath: str) -> bool:
    """True if an anonymous GridFTP session can be told this name (printable ASCII only)."""
    return all(0x20 <= ord(ch) <= 0x7E for ch in relpath)
