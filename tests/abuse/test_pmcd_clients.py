"""pmcd clients over TCP: anyone who can reach port 44321 can send pmcd anything before it
knows who they are.  Garbage, truncated and oversized PDUs, a flood of connections and a
flood of stores go to the real pmcd while one of our agents is installed: pmcd and the agent
must stay up and keep answering."""
from __future__ import annotations

import os
import socket
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness.pcp import installed_agent, reader, run_pcp

from .ledger import LEDGER, Figures, Inconclusive, watch

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]

PORT = 44321
PDU_ERROR, PDU_FETCH, PDU_CREDS, PDU_PMNS_NAMES, PDU_LABEL_REQ = 0x7000, 0x7003, 0x700C, 0x700E, 0x7012


def pdu(kind: int, body: bytes = b"", length: int | None = None) -> bytes:
    """A PCP PDU: length, type and sender (network byte order) then the body; ``length``
    lies about the size when given."""
    return struct.pack("!iii", 12 + len(body) if length is None else length, kind, 0) + body


def send(payload: bytes, wait: float = 0.3) -> None:
    """Connect, read pmcd's greeting, send ``payload``, read what comes back, close."""
    with socket.create_connection(("127.0.0.1", PORT), timeout=2) as s:
        s.settimeout(wait)
        try:
            s.recv(4096)
            s.sendall(payload)
            s.recv(4096)
        except (TimeoutError, ConnectionError, OSError):
            pass


def pmcd_pid() -> int:
    return reader().fetch(["pmcd.pid"])["pmcd.pid"]


def pmcd_conf_changed(since: float) -> bool:
    """Whether an agent was installed or removed (pmcd.conf rewritten) since ``since``: other
    developers' tests share this pmcd, and pmdaproc.sh may restart it."""
    return os.stat(os.environ.get("PCP_PMCDCONF_PATH", "/etc/pcp/pmcd/pmcd.conf")).st_mtime > since


def assert_same_pmcd(before: int, since: float) -> None:
    now = pmcd_pid()
    if now != before and pmcd_conf_changed(since):
        raise Inconclusive("pmcd was restarted while another test (re)installed an agent")
    assert now == before, "pmcd restarted"


def answering() -> bool:
    return run_pcp("pminfo", "-f", "hpc.sample.agent.up", timeout=10).returncode == 0


CRAFTED = {
    "empty": b"",
    "short header": b"\x00\x00",
    "zero length": pdu(PDU_CREDS, length=0),
    "negative length": pdu(PDU_CREDS, length=-12),
    "huge length": pdu(PDU_CREDS, length=0x7FFFFFFF),
    "length beyond body": pdu(PDU_FETCH, b"\x00" * 8, length=1 << 20),
    "unknown type": pdu(0x7FFF, b"\x00" * 16),
    "error pdu": pdu(PDU_ERROR, struct.pack("!i", -12345)),
    "creds of 2^31 entries": pdu(PDU_CREDS, struct.pack("!i", 0x7FFFFFFF)),
    "fetch of 2^31 pmids": pdu(PDU_CREDS, struct.pack("!iI", 1, 0x01020000))
    + pdu(PDU_FETCH, struct.pack("!iiiii", 0, 0, 0, 0x7FFFFFFF, 1)),
    "names with a huge count": pdu(PDU_CREDS, struct.pack("!iI", 1, 0x01020000))
    + pdu(PDU_PMNS_NAMES, struct.pack("!iii", 0x7FFFFFFF, 0x7FFFFFFF, 0)),
    "labels for every domain": pdu(PDU_CREDS, struct.pack("!iI", 1, 0x01020000))
    + pdu(PDU_LABEL_REQ, struct.pack("!ii", -1, 0x7FFFFFFF)),
    "http to pmcd": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "tls hello": bytes.fromhex("160301002a010000260303") + b"\x00" * 40,
}


def test_garbage_pdus_flood_and_stores(abuse_dir):
    with installed_agent("hpcsample", {"interval": 1}), \
            watch("pmcd clients over TCP", ["hpcsample"], [abuse_dir]) as case:
        before, since = pmcd_pid(), time.time()
        for payload in CRAFTED.values():
            send(payload)
            case.tried()
        # a flood of connections, held open together, then dropped
        flood = []
        try:
            for _ in range(200):
                try:
                    flood.append(socket.create_connection(("127.0.0.1", PORT), timeout=2))
                except OSError:
                    break
            case.tried(len(flood))
        finally:
            for s in flood:
                s.close()
        # a flood of stores to a read-only metric of our agent, as pmstore sends them
        for k in range(50):
            done = run_pcp("pmstore", "-h", "local:", "hpc.sample.agent.up", str(k))
            assert done.returncode != 0
            case.tried()
        assert answering(), "pmcd or hpcsample stopped answering"
        assert_same_pmcd(before, since)


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="upstream pmcd (Debian 12, PCP 6.0) reads a client's PDU "
                   "to its end with its agent timeout (-t, 5 s) while serving no one else: any host "
                   "that can connect to port 44321, before any access check on PDUs, stalls every "
                   "client for 5 s per half-sent PDU (measured 5.0 s). Not ours to fix; sites limit "
                   "who reaches the port (firewall) and may lower pmcd -t")
def test_a_half_sent_pdu_does_not_stall_other_clients(abuse_dir):
    with watch("pmcd clients over TCP", [], [abuse_dir]) as case:
        with socket.create_connection(("127.0.0.1", PORT), timeout=2) as stalled:
            stalled.recv(4096)
            stalled.sendall(pdu(PDU_CREDS, length=4096)[:20])
            started = time.monotonic()
            assert run_pcp("pminfo", "-f", "pmcd.version", timeout=10).returncode == 0
            took = time.monotonic() - started
            case.tried()
        print(f"another client waited {took:.2f} s")
        assert took < 2, f"a half-sent PDU stalled pmcd for other clients for {took:.1f} s"


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=256) | st.builds(lambda k, n, body: pdu(k, body, n),
                                          st.integers(0x6FFF, 0x7020), st.integers(-16, 1 << 31 - 1),
                                          st.binary(max_size=64)))
def test_random_bytes_to_pmcd(payload):
    LEDGER.add("pmcd clients over TCP", Figures(inputs=1))
    before, since = pmcd_pid(), time.time()
    send(payload, wait=0.05)
    assert_same_pmcd(before, since)
