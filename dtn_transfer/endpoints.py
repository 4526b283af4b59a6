"""Endpoints: a local directory, or a DTN cluster (several GridFTP nodes) plus a path.

Written ``host:port,host:port/abs/path`` (nodes of one cluster share a file system,
as DTN clusters do) or a plain local path.  URLs are built by percent-encoding the
path, so spaces, quotes and ``$()`` never need a shell or quoting.  The GridFTP
control channel (globus XIO telnet driver) silently drops bytes outside printable
ASCII, so names with such bytes cannot be named on a GridFTP node at all: callers
must check ``nameable`` and report those files instead of sending them.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote

_NODE = re.compile(r"^[A-Za-z0-9._-]+:\d{1,5}$")


class EndpointError(ValueError):
    """An endpoint string that cannot be understood; the message says why."""


@dataclass(frozen=True)
class Endpoint:
    nodes: tuple[str, ...]   # "host:port" of each GridFTP node; empty for a local path
    path: str                # absolute directory path (on the nodes, or local)

    @property
    def local(self) -> bool:
        return not self.nodes

    def url(self, node: str | None, relpath: str) -> str:
        """The globus-url-copy URL of ``relpath`` below this endpoint on ``node``."""
        full = self.path.rstrip("/") + "/" + relpath if relpath else self.path
        encoded = quote(full, safe="/")
        if self.local:
            return "file://" + encoded
        return f"ftp://{node}{encoded}"

    def __str__(self) -> str:
        return self.path if self.local else ",".join(self.nodes) + self.path


def parse_endpoint(text: str) -> Endpoint:
    """``h1:p1,h2:p2/path`` → GridFTP endpoint; ``/path`` or ``./path`` → local endpoint."""
    if not text:
        raise EndpointError("an endpoint must not be empty")
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
    return Endpoint(nodes, path)


def nameable(relpath: str) -> bool:
    """True if a GridFTP server can be told this name (printable ASCII only)."""
    return all(0x20 <= ord(ch) <= 0x7E for ch in relpath)
