"""Checks of the testbed's path from inside a node: ICMP echo round trips and one timed TCP stream.

The machine has no ``ping`` or ``iperf``; these are the few lines of each the delay line's
checks need.  Run inside a node's namespace (``ip netns exec``)::

    python -m dtn_lab.testbed.probe ping ADDRESS [--count N] [--interval S]
    python -m dtn_lab.testbed.probe sink [--port P]                 # receives, prints bytes and seconds
    python -m dtn_lab.testbed.probe send ADDRESS [--port P] [--seconds S] [--buffer BYTES]

Each prints one JSON line.  ``send`` reports the rate over the last half of its run, so slow
start does not count; ``--buffer`` sets SO_SNDBUF (capped by the node's ``wmem_max``).
"""
from __future__ import annotations

import argparse
import json
import os
import select
import socket
import struct
import sys
import time

PORT = 5301


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping(address: str, count: int = 10, interval: float = 0.2, timeout: float = 2.0) -> dict:
    """Round-trip times (ms) of ``count`` ICMP echoes; lost ones are counted, not timed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    rtts, lost = [], 0
    try:
        for seq in range(count):
            body = struct.pack("!d", time.monotonic()) + b"x" * 48
            header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            packet = struct.pack("!BBHHH", 8, 0, _checksum(header + body), ident, seq) + body
            sent = time.monotonic()
            sock.sendto(packet, (address, 0))
            deadline = sent + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([sock], [], [], left)[0]:
                    lost += 1
                    break
                reply = sock.recv(2048)
                ihl = (reply[0] & 0x0F) * 4
                kind, _code, _sum, rid, rseq = struct.unpack("!BBHHH", reply[ihl:ihl + 8])
                if kind == 0 and rid == ident and rseq == seq:
                    rtts.append((time.monotonic() - sent) * 1000)
                    break
            time.sleep(max(0.0, interval - (time.monotonic() - sent)))
    finally:
        sock.close()
    rtts.sort()
    return {"sent": count, "lost": lost, "rtt_ms": [round(r, 3) for r in rtts],
            "median_ms": round(rtts[len(rtts) // 2], 3) if rtts else None,
            "min_ms": round(rtts[0], 3) if rtts else None}


def sink(port: int = PORT, once: bool = True) -> dict:
    """Accept one connection and read it to the end."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(1)
    print(json.dumps({"listening": port}), flush=True)
    conn, _ = server.accept()
    received, started = 0, time.monotonic()
    buf = bytearray(1 << 20)
    while True:
        n = conn.recv_into(buf)
        if not n:
            break
        received += n
    conn.close()
    server.close()
    return {"bytes": received, "seconds": round(time.monotonic() - started, 3)}


def send(address: str, port: int = PORT, seconds: float = 4.0, buffer: int | None = None) -> dict:
    """Send for ``seconds``; the rate is taken over the second half (after slow start)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
    for _ in range(50):
        try:
            sock.connect((address, port))
            break
        except ConnectionRefusedError:
            time.sleep(0.1)
            sock.close()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if buffer:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
    chunk = b"\0" * (256 << 10)
    started = time.monotonic()
    half, half_bytes, sent = started + seconds / 2, None, 0
    while True:
        now = time.monotonic()
        if now >= started + seconds:
            break
        if half_bytes is None and now >= half:
            half_bytes, half = sent, now
        sent += sock.send(chunk)
    ended = time.monotonic()
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    sock.close()
    # struct tcp_info: tcpi_snd_cwnd is the u32 at offset 80, tcpi_rtt (us) at 68, tcpi_snd_mss at 16
    mss, rtt_us, cwnd = (struct.unpack_from("I", info, off)[0] for off in (16, 68, 80))
    tail = (sent - (half_bytes or 0)) / max(1e-6, ended - half)
    return {"bytes": sent, "seconds": round(ended - started, 3), "rate": round(tail),
            "mss": mss, "srtt_ms": rtt_us / 1000, "cwnd": cwnd}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("ping")
    p.add_argument("address")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each reply")
    s = sub.add_parser("sink")
    s.add_argument("--port", type=int, default=PORT)
    t = sub.add_parser("send")
    t.add_argument("address")
    t.add_argument("--port", type=int, default=PORT)
    t.add_argument("--seconds", type=float, default=4.0)
    t.add_argument("--buffer", type=int, default=None)
    args = parser.parse_args(argv)
    if args.what == "ping":
        out = ping(args.address, args.count, args.interval, args.timeout)
    elif args.what == "sink":
        out = sink(args.port)
    else:
        out = send(args.address, args.port, args.seconds, args.buffer)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
