"""Benchmark: dtn-transfer against raw globus-url-copy, side by side in one run.

1. Same files, same settings (one node pair, -cc/-p/-pp identical): the overhead of
   dtn-transfer's planning, batching, journaling and verification, as a time ratio.
2. Many small files (default 2,000 × 1 MiB) over two node pairs with dtn-transfer's
   defaults, against globus-url-copy with its defaults on one pair: what the tool buys.

Real globus-gridftp-server nodes on 127.0.0.1 (root needed).  Loopback has no latency,
so BDP effects are absent; ratios, not absolute rates, are the result.  Prints a table
and writes bench/results/dtn_throughput.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dtn_transfer.endpoints import Endpoint  # noqa: E402
from dtn_transfer.servers import GridftpServer  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results", "dtn_throughput.json")


def make_files(directory: str, count: int, size: int) -> int:
    os.makedirs(directory, exist_ok=True)
    block = os.urandom(size)
    for i in range(count):
        with open(os.path.join(directory, f"file{i:05d}.bin"), "wb") as f:
            f.write(hashlib.sha256(str(i).encode()).digest() + block[32:])
    return count * size


def clear(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    os.chmod(directory, 0o777)


def check_arrived(src: str, dst: str) -> bool:
    names = sorted(os.listdir(src))
    return names == sorted(os.listdir(dst)) and all(
        os.path.getsize(os.path.join(src, n)) == os.path.getsize(os.path.join(dst, n)) for n in names)


def raw_copy(src_node: str, dst_node: str, src: str, dst: str, options: list[str], work: str) -> float:
    source, dest = Endpoint((src_node,), src), Endpoint((dst_node,), dst)
    listing = os.path.join(work, "raw.list")
    with open(listing, "w", encoding="utf-8") as f:
        for name in sorted(os.listdir(src)):
            f.write(f'"{source.url(src_node, name)}" "{dest.url(dst_node, name)}"\n')
    started = time.perf_counter()
    subprocess.run(["globus-url-copy", *options, "-f", listing], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def dtn_copy(src_ep: str, dst_ep: str, options: list[str], state: str) -> float:
    env = {**os.environ, "DTN_TRANSFER_STATE_DIR": state, "PYTHONPATH": ROOT}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dtn_transfer.cli", "run", src_ep, dst_ep, "-q",
                           *options], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dtn-transfer failed ({done.returncode}): {done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="small files in scenario 2")
    parser.add_argument("--size", type=int, default=1 << 20, help="bytes per small file")
    parser.add_argument("--same-files", type=int, default=40, help="files in scenario 1")
    parser.add_argument("--same-size", type=int, default=8 << 20, help="bytes per file in scenario 1")
    parser.add_argument("--port", type=int, default=21000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; the median is kept")
    args = parser.parse_args()

    base = tempfile.mkdtemp(prefix="dtn-bench-", dir="/tmp")
    os.chmod(base, 0o777)
    servers = []
    rows = []
    try:
        for i in range(4):
            servers.append(GridftpServer(args.port + i, base).start())
        s = [x.node for x in servers]
        src1, src2, dst, state = (os.path.join(base, d) for d in ("same", "small", "dst", "state"))
        clear(dst)

        def measure(src: str, raw_call, dtn_call) -> tuple[float, float]:
            """Median of ``repeat`` runs each, alternating which goes first (cache, CPU drift)."""
            raws, mine = [], []
            for k in range(args.repeat):
                order = [("raw", raw_call), ("dtn", dtn_call)]
                for name, call in (order if k % 2 == 0 else order[::-1]):
                    (raws if name == "raw" else mine).append(call())
                    assert check_arrived(src, dst), f"{name}: files missing or short"
                    clear(dst)
            return statistics.median(raws), statistics.median(mine)

        # 1. same files, same settings, one pair
        nbytes = make_files(src1, args.same_files, args.same_size)
        raw, mine = measure(
            src1, lambda: raw_copy(s[0], s[2], src1, dst, ["-cc", "4", "-p", "4", "-fast"], base),
            lambda: dtn_copy(f"{s[0]}{src1}", f"{s[2]}{dst}",
                             ["-c", "4", "-p", "4", "--no-pipelining", "--bdp", "1G"], state))
        rows.append({"scenario": f"same settings, {args.same_files} x {args.same_size >> 20} MiB, 1 pair",
                     "bytes": nbytes, "raw_seconds": raw, "dtn_seconds": mine})

        # 2. many small files: globus-url-copy defaults vs dtn-transfer defaults on 2 pairs
        nbytes = make_files(src2, args.files, args.size)
        raw, mine = measure(
            src2, lambda: raw_copy(s[0], s[2], src2, dst, [], base),
            lambda: dtn_copy(f"{s[0]},{s[1]}{src2}", f"{s[2]},{s[3]}{dst}", [], state))
        rows.append({"scenario": f"{args.files} x {args.size >> 10} KiB, defaults (dtn: 2 pairs)",
                     "bytes": nbytes, "raw_seconds": raw, "dtn_seconds": mine})
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)

    for row in rows:
        row["raw_MiB_per_s"] = row["bytes"] / row["raw_seconds"] / 2**20
        row["dtn_MiB_per_s"] = row["bytes"] / row["dtn_seconds"] / 2**20
        row["speedup"] = row["raw_seconds"] / row["dtn_seconds"]
    print(f"{'scenario':52} {'raw s':>8} {'dtn s':>8} {'raw MiB/s':>10} {'dtn MiB/s':>10} {'dtn/raw':>8}")
    for r in rows:
        print(f"{r['scenario']:52} {r['raw_seconds']:8.2f} {r['dtn_seconds']:8.2f} "
              f"{r['raw_MiB_per_s']:10.1f} {r['dtn_MiB_per_s']:10.1f} {r['speedup']:8.2f}")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w", encoding="utf-8") as f:
        json.dump({"taken": time.time(), "rows": rows,
                   "note": "speedup = raw seconds / dtn-transfer seconds (>1: dtn-transfer faster); "
                           "loopback, real globus-gridftp-server nodes"}, f, indent=1)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
