"""Benchmark: dtn-transfer against raw globus-url-copy, side by side in one run.

1. Same files, same settings (one node pair, -cc/-p/-fast identical; default 48 × 128 MiB
   = 6 GiB, so the steady state is measured and not start-up alone): what dtn-transfer's
   start-up, planning, journaling and verification cost, as a time ratio (goal ≥ 0.97).
2. Many small files (default 2,000 × 1 MiB) over two node pairs with dtn-transfer's
   defaults, against globus-url-copy with its defaults on one pair: what the tool buys
   (goal ≥ 2×).

3. The same question (default 120 × 1 MiB) across the DTN testbed's WAN
   (``dtn_lab.testbed``: namespaces, HTB-shaped links, 2 + 2 nodes, one TCP stream
   capped at 1 MiB/s and a node at 8 MiB/s, as one stream cannot fill a real DTN's path
   while several can).  On loopback both sides are bound by the servers' CPU on two cores,
   which caps scenario 2 near 2×; the testbed is the project's model of the WAN the tool
   is for (it has no added latency, so per-file round trips, which pipelining hides on a
   real WAN, are not counted in the tool's favour).

With one node pair (``--small-pairs 1``, ``--wan-pairs 1``) scenarios 2 and 3 also run raw
globus-url-copy with dtn-transfer's own settings (read from its ``plan --json``: -cc, -p, -pp,
-fast), so what the tool adds (start-up, listing, journaling, checks) is told apart from what
its default settings cost (each -cc slot is a GSI session on both servers).  ``--before-tree``
runs another checkout's dtn_transfer as a further side (before/after in one run).

GSI by default, as the tool is: the servers are GSI-only (a CA, host certificate,
grid-mapfile and proxy made with Debian's GSI tools by the lab's ``GsiFiles`` in the
benchmark's directory), both sides present the same proxy, and both use the same data
channel level (``--data-channel``: auth = DCAU, GridFTP's default; safe; private; clear).
``--anonymous`` runs the old anonymous ftp:// comparison.

Real globus-gridftp-server nodes on 127.0.0.1 (root needed).  Loopback has no latency,
so BDP effects are absent; ratios, not absolute rates, are the result.  ``--dir /dev/shm``
(tmpfs, ~12 GiB for scenario 1) keeps disk writeback, which belongs to neither side, out of
the ratio; ``--dtn-tree`` runs another checkout's dtn_transfer (before/after).  Runs alternate
which side goes first; medians are compared and min–max ranges shown, because the
machine is shared.  CPU seconds (servers, and the client side: globus-url-copy, plus
Python for dtn-transfer) are recorded per side: on two cores, CPU is what bounds both.
Prints a table and writes bench/results/dtn_throughput.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dtn_lab.testbed.gsi import GsiFiles  # noqa: E402
from dtn_transfer.endpoints import FTP, GSIFTP, Endpoint  # noqa: E402
from dtn_transfer.gsi import data_channel_flags  # noqa: E402
from dtn_transfer.servers import GridftpServer  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results", "dtn_throughput.json")
MIB = 2 ** 20
DTN_FLAGS = {"auth": [], "safe": ["--dcsafe"], "private": ["--dcpriv"], "clear": ["--no-dcau"]}


class Security:
    """How both sides authenticate: GSI with one data channel level, or anonymous."""

    def __init__(self, anonymous: bool, data_channel: str):
        self.anonymous, self.data_channel = anonymous, data_channel

    @property
    def scheme(self) -> str:
        return FTP if self.anonymous else GSIFTP

    def raw_flags(self) -> list[str]:
        return [] if self.anonymous else data_channel_flags(self.data_channel)

    def dtn_flags(self) -> list[str]:
        return ["--anonymous"] if self.anonymous else DTN_FLAGS[self.data_channel]

    def label(self) -> str:
        return "anonymous ftp" if self.anonymous else f"GSI, data channel {self.data_channel}"


SECURITY = Security(anonymous=False, data_channel="auth")     # set from the options in main


def make_files(directory: str, count: int, size: int) -> int:
    """``count`` files of ``size`` bytes, each different (a hash of its index up front)."""
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


def server_cpu(servers: list[GridftpServer]) -> float:
    """CPU seconds of the server daemons and their reaped per-session processes."""
    total = 0
    for server in servers:
        try:
            with open(f"/proc/{server.pid}/stat", encoding="ascii") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += sum(int(x) for x in fields[11:15])   # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def raw_copy(src_node: str, dst_node: str, src: str, dst: str, options: list[str], work: str) -> None:
    source, dest = Endpoint((src_node,), src, SECURITY.scheme), Endpoint((dst_node,), dst, SECURITY.scheme)
    listing = os.path.join(work, "raw.list")
    with open(listing, "w", encoding="utf-8") as f:
        for name in sorted(os.listdir(src)):
            f.write(f'"{source.url(src_node, name)}" "{dest.url(dst_node, name)}"\n')
    subprocess.run(["globus-url-copy", *options, *SECURITY.raw_flags(), "-f", listing], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def dtn_copy(src_ep: str, dst_ep: str, options: list[str], state: str, tree: str = ROOT) -> None:
    env = {**os.environ, "DTN_TRANSFER_STATE_DIR": state, "PYTHONPATH": tree}
    # -P: the tree named by PYTHONPATH, not the current directory's (``-m`` puts the current
    # directory first, which made --dtn-tree run this checkout when started from it)
    done = subprocess.run([sys.executable, "-P", "-m", "dtn_transfer.cli", "run", src_ep, dst_ep, "-q",
                           *options, *SECURITY.dtn_flags()], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"dtn-transfer failed ({done.returncode}): {done.stderr}")


def dtn_settings(src_ep: str, dst_ep: str, options: list[str], tree: str = ROOT) -> list[str]:
    """globus-url-copy flags for what dtn-transfer's first batch runs with (its ``plan --json``):
    raw globus-url-copy "with the same settings" as dtn-transfer's defaults."""
    env = {**os.environ, "PYTHONPATH": tree}
    done = subprocess.run([sys.executable, "-P", "-m", "dtn_transfer.cli", "plan", "--json", src_ep, dst_ep,
                           *options, *SECURITY.dtn_flags()], env=env, capture_output=True, text=True,
                          check=True)
    batch = json.loads(done.stdout)["pairs"][0]["batches"][0]
    return (["-cc", str(batch["concurrency"]), "-p", str(batch["parallelism"])]
            + (["-pp"] if batch["pipelining"] else []) + ["-fast"])


def dtn_sides(run: Callable[[str], None], before: str | None) -> dict[str, Callable[[], None]]:
    """The dtn-transfer side (this tree), and with ``before`` the same run from another tree."""
    sides = {"dtn": lambda: run(ROOT)}
    if before:
        sides["before"] = lambda: run(before)
    return sides


def measure(servers: list[GridftpServer], src: str, dst: str, repeat: int,
            sides: dict[str, Callable[[], None]]) -> dict[str, dict[str, list[float]]]:
    """``repeat`` runs per side, alternating which goes first; wall and CPU seconds each."""
    out: dict[str, dict[str, list[float]]] = {name: {"seconds": [], "server_cpu": [], "client_cpu": []}
                                              for name in sides}
    order = list(sides)
    for k in range(repeat):
        for name in (order if k % 2 == 0 else order[::-1]):
            clear(dst)
            s0, c0, t0 = server_cpu(servers), client_cpu(), time.perf_counter()
            sides[name]()
            seconds = time.perf_counter() - t0
            time.sleep(0.2)   # let the servers reap their sessions, so their CPU is counted
            out[name]["seconds"].append(seconds)
            out[name]["server_cpu"].append(server_cpu(servers) - s0)
            out[name]["client_cpu"].append(client_cpu() - c0)
            assert check_arrived(src, dst), f"{name}: files missing or short"
            print(f"  {name}: {seconds:.2f} s", flush=True)
    clear(dst)
    return out


def row(scenario: str, nbytes: int, runs: dict[str, dict[str, list[float]]]) -> dict:
    """Medians per side; ``speedup`` = raw / dtn seconds.  ``raw_same`` (globus-url-copy with
    dtn-transfer's own settings) and ``before`` (another tree's dtn-transfer), when run, get
    their ratios too: ``same_settings`` = raw_same / dtn, ``before_speedup`` = raw / before."""
    raw, mine = runs["raw"], runs["dtn"]
    out = {"scenario": scenario, "bytes": nbytes, "runs": runs}
    for side, data in runs.items():
        out[f"{side}_seconds"] = statistics.median(data["seconds"])
        out[f"{side}_range"] = [min(data["seconds"]), max(data["seconds"])]
        out[f"{side}_MiB_per_s"] = nbytes / out[f"{side}_seconds"] / MIB
        out[f"{side}_cpu_seconds"] = statistics.median(
            [s + c for s, c in zip(data["server_cpu"], data["client_cpu"], strict=True)])
    out["speedup"] = out["raw_seconds"] / out["dtn_seconds"]
    out["speedup_per_round"] = [r / d for r, d in zip(raw["seconds"], mine["seconds"], strict=True)]
    if "raw_same" in runs:
        out["same_settings"] = out["raw_same_seconds"] / out["dtn_seconds"]
        out["same_settings_per_round"] = [r / d for r, d in zip(runs["raw_same"]["seconds"], mine["seconds"],
                                                                strict=True)]
    if "before" in runs:
        out["before_speedup"] = out["raw_seconds"] / out["before_seconds"]
        if "raw_same" in runs:
            out["before_same_settings"] = out["raw_same_seconds"] / out["before_seconds"]
    return out


WAN_BED, WAN_SUBNET = "dtnwan", "10.213.140.0/24"


def wan_small_files(files: int, size: int, repeat: int, node_rate: int, flow_rate: int | None,
                    pairs: int = 2, name: str = WAN_BED, subnet: str = WAN_SUBNET,
                    before: str | None = None) -> dict:
    """Scenario 3: globus-url-copy's defaults against dtn-transfer's on the testbed (and, with one
    pair, globus-url-copy with dtn-transfer's own settings)."""
    from dtn_lab.testbed import DEST, SOURCE, Testbed
    bed = Testbed.up(name, source_nodes=pairs, dest_nodes=pairs, datasets=(), subnet=subnet,
                     node_rate=node_rate, flow_rate=flow_rate, anonymous=SECURITY.anonymous)
    os.environ.update(bed.client_environment())        # the testbed's proxy, for both sides
    base = tempfile.mkdtemp(prefix="dtn-wan-bench-")
    os.chmod(base, 0o777)
    try:
        src, dst, state = (os.path.join(base, d) for d in ("src", "dst", "state"))
        nbytes = make_files(src, files, size)
        sources, dests = bed.layout.cluster(SOURCE), bed.layout.cluster(DEST)
        s0, d0 = sources[0].endpoint, dests[0].endpoint
        src_ep = ",".join(n.endpoint for n in sources) + src
        dst_ep = ",".join(n.endpoint for n in dests) + dst
        cap = f"{flow_rate / MIB:g} MiB/s" if flow_rate else "none"
        print(f"{files} x {size // 1024} KiB across the testbed's WAN (stream cap {cap}, node cap "
              f"{node_rate / MIB:g} MiB/s), defaults:", flush=True)
        sides = {"raw": lambda: raw_copy(s0, d0, src, dst, [], base)}
        if pairs == 1:
            same = dtn_settings(src_ep, dst_ep, [])
            print(f"  dtn-transfer's settings: {' '.join(same)}", flush=True)
            sides["raw_same"] = lambda: raw_copy(s0, d0, src, dst, same, base)
        sides.update(dtn_sides(lambda tree: dtn_copy(src_ep, dst_ep, [], state, tree), before))
        runs = measure([], src, dst, repeat, sides)
        result = row(f"{files} x {size // 1024} KiB, defaults, testbed WAN (dtn: {pairs} pair(s))",
                     nbytes, runs)
        result.update(flow_rate=flow_rate, node_rate=node_rate, pairs=pairs)
        if pairs == 1:
            result["raw_same_flags"] = same
        return result
    finally:
        shutil.rmtree(base, ignore_errors=True)
        Testbed.down(name)


def verify_cost(files: int, size: int, repeat: int, rtt_ms: float, node_rate: int, name: str, subnet: str,
                before: str | None = None) -> dict:
    """Scenario 4 (``--only verify``): ``--verify`` against no verification, one node pair across
    the testbed's delay line (``rtt_ms``), beside raw globus-url-copy with dtn-transfer's
    settings: what checking every file's MD5 on both sides costs when each check is a round
    trip away (the goal is one read per side and no per-file round trips)."""
    from dtn_lab.testbed import DEST, SOURCE, Testbed
    bed = Testbed.up(name, source_nodes=1, dest_nodes=1, datasets=(), subnet=subnet, node_rate=node_rate,
                     flow_rate=None, rtt_ms=rtt_ms, anonymous=SECURITY.anonymous)
    os.environ.update(bed.client_environment())
    base = tempfile.mkdtemp(prefix="dtn-verify-bench-")
    os.chmod(base, 0o777)
    try:
        src, dst, state = (os.path.join(base, d) for d in ("src", "dst", "state"))
        nbytes = make_files(src, files, size)
        s0, d0 = bed.layout.cluster(SOURCE)[0].endpoint, bed.layout.cluster(DEST)[0].endpoint
        src_ep, dst_ep = s0 + src, d0 + dst
        same = dtn_settings(src_ep, dst_ep, [])
        print(f"{files} x {size // 1024} KiB at {rtt_ms:g} ms RTT, --verify against none "
              f"(raw: {' '.join(same)}):", flush=True)
        sides = {"raw": lambda: raw_copy(s0, d0, src, dst, same, base),
                 "plain": lambda: dtn_copy(src_ep, dst_ep, [], state)}
        sides.update(dtn_sides(lambda tree: dtn_copy(src_ep, dst_ep, ["--verify"], state, tree), before))
        runs = measure([], src, dst, repeat, sides)
        result = row(f"{files} x {size // 1024} KiB, --verify, {rtt_ms:g} ms RTT (raw: dtn's settings)",
                     nbytes, runs)
        result["verify_cost"] = result["dtn_seconds"] / result["plain_seconds"]
        if before:
            result["before_verify_cost"] = result["before_seconds"] / result["plain_seconds"]
        result.update(rtt_ms=rtt_ms, node_rate=node_rate, raw_flags=same)
        return result
    finally:
        shutil.rmtree(base, ignore_errors=True)
        Testbed.down(name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="small files in scenario 2")
    parser.add_argument("--size", type=int, default=MIB, help="bytes per small file")
    parser.add_argument("--same-files", type=int, default=48, help="files in scenario 1")
    parser.add_argument("--same-size", type=int, default=128 * MIB, help="bytes per file in scenario 1")
    parser.add_argument("--port", type=int, default=21000)
    parser.add_argument("--repeat", type=int, default=5, help="runs per side; medians are compared")
    parser.add_argument("--dir", default="/tmp", help="where the data sets live (both sides alike)")
    parser.add_argument("--only", choices=("same", "small", "wan", "verify"), default=None,
                        help="run one scenario (verify: only when asked for)")
    parser.add_argument("--verify-rtt", type=float, default=130.0, help="ms of RTT in the verify scenario")
    parser.add_argument("--verify-files", type=int, default=100, help="files in the verify scenario")
    parser.add_argument("--wan-files", type=int, default=120, help="small files in scenario 3")
    parser.add_argument("--wan-flow-rate", type=int, default=MIB,
                        help="bytes/s one TCP stream may use (0: no per-stream cap)")
    parser.add_argument("--wan-pairs", type=int, choices=(1, 2), default=2,
                        help="node pairs in scenario 3 (with 1, raw globus-url-copy also runs with "
                             "dtn-transfer's settings)")
    parser.add_argument("--wan-name", default=WAN_BED, help="testbed name for scenario 3")
    parser.add_argument("--wan-subnet", default=WAN_SUBNET, help="testbed subnet for scenario 3")
    parser.add_argument("--small-pairs", type=int, choices=(1, 2), default=2,
                        help="node pairs dtn-transfer uses in scenario 2 (with 1, raw globus-url-copy "
                             "also runs with dtn-transfer's settings)")
    parser.add_argument("--before-tree", default=None,
                        help="also run another tree's dtn_transfer side by side (before/after in one run)")
    parser.add_argument("--wan-node-rate", type=int, default=8 * MIB, help="bytes/s one node may use")
    parser.add_argument("--anonymous", action="store_true",
                        help="anonymous ftp:// servers and transfers instead of GSI")
    parser.add_argument("--data-channel", choices=tuple(DTN_FLAGS), default="auth",
                        help="GSI data channel level for both sides (auth = DCAU, GridFTP's default)")
    parser.add_argument("--dtn-tree", default=ROOT,
                        help="tree whose dtn_transfer runs (an exported older commit: before/after)")
    args = parser.parse_args(argv)
    global SECURITY
    SECURITY = Security(args.anonymous, args.data_channel)

    base = tempfile.mkdtemp(prefix="dtn-bench-", dir=args.dir)
    os.chmod(base, 0o777)
    servers: list[GridftpServer] = []
    rows = []
    try:
        gsi = None
        if not args.anonymous:
            files = GsiFiles(os.path.join(base, "gsi"), "bench").ensure(["127.0.0.1"])
            gsi = files.server_environment("127.0.0.1")
            os.environ.update(files.client_environment())    # both sides present this proxy
        for i in range(4):
            servers.append(GridftpServer(args.port + i, base, gsi=gsi).start())
        s = [x.node for x in servers]
        src1, src2, dst, state = (os.path.join(base, d) for d in ("same", "small", "dst", "state"))

        if args.only in (None, "same"):   # 1. same files, same settings, one pair
            nbytes = make_files(src1, args.same_files, args.same_size)
            print(f"same settings, {args.same_files} x {args.same_size // MIB} MiB:", flush=True)
            runs = measure(servers, src1, dst, args.repeat, {
                "raw": lambda: raw_copy(s[0], s[2], src1, dst, ["-cc", "4", "-p", "4", "-fast"], base),
                **dtn_sides(lambda tree: dtn_copy(f"{s[0]}{src1}", f"{s[2]}{dst}",
                                                  ["-c", "4", "-p", "4", "--no-pipelining", "--bdp", "1G"],
                                                  state, tree), args.before_tree)})
            rows.append(row(f"same settings, {args.same_files} x {args.same_size // MIB} MiB, 1 pair",
                            nbytes, runs))
            shutil.rmtree(src1, ignore_errors=True)

        if args.only in (None, "small"):   # 2. small files: defaults against defaults
            nbytes = make_files(src2, args.files, args.size)
            print(f"{args.files} x {args.size // 1024} KiB, defaults:", flush=True)
            src_ep = ",".join(s[:args.small_pairs]) + src2
            dst_ep = ",".join(s[2:2 + args.small_pairs]) + dst
            sides = {"raw": lambda: raw_copy(s[0], s[2], src2, dst, [], base)}
            if args.small_pairs == 1:
                same = dtn_settings(src_ep, dst_ep, [], args.dtn_tree)
                print(f"  dtn-transfer's settings: {' '.join(same)}", flush=True)
                sides["raw_same"] = lambda: raw_copy(s[0], s[2], src2, dst, same, base)
            sides.update(dtn_sides(lambda tree: dtn_copy(src_ep, dst_ep, [], state, tree), args.before_tree))
            runs = measure(servers, src2, dst, args.repeat, sides)
            rows.append(row(f"{args.files} x {args.size // 1024} KiB, defaults (dtn: {args.small_pairs} "
                            f"pair(s))", nbytes, runs))
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    if args.only in (None, "wan"):       # 3. small files across the testbed's WAN
        rows.append(wan_small_files(args.wan_files, args.size, args.repeat, args.wan_node_rate,
                                    args.wan_flow_rate or None, args.wan_pairs, args.wan_name,
                                    args.wan_subnet, args.before_tree))
    if args.only == "verify":            # 4. --verify against none across the delay line
        rows.append(verify_cost(args.verify_files, args.size, args.repeat, args.verify_rtt,
                                64 * MIB, args.wan_name, args.wan_subnet, args.before_tree))

    print(f"\n{'scenario':52} {'raw s (range)':>18} {'dtn s (range)':>18} {'raw MiB/s':>10} "
          f"{'dtn MiB/s':>10} {'dtn/raw':>8} {'CPU s raw/dtn':>14}")
    for r in rows:
        print(f"{r['scenario']:52} {r['raw_seconds']:6.2f} ({r['raw_range'][0]:.2f}-{r['raw_range'][1]:.2f}) "
              f"{r['dtn_seconds']:6.2f} ({r['dtn_range'][0]:.2f}-{r['dtn_range'][1]:.2f}) "
              f"{r['raw_MiB_per_s']:10.1f} {r['dtn_MiB_per_s']:10.1f} {r['speedup']:8.2f} "
              f"{r['raw_cpu_seconds']:6.2f}/{r['dtn_cpu_seconds']:<6.2f}")
        if "verify_cost" in r:
            print(f"  dtn-transfer without --verify: {r['plain_seconds']:.2f} s; --verify / none "
                  f"{r['verify_cost']:.2f}" + (f" (before: {r['before_verify_cost']:.2f})"
                                               if "before_verify_cost" in r else ""))
        for side, ratio in (("raw_same", "same_settings"), ("before", "before_speedup")):
            if f"{side}_seconds" in r:
                extra = (f"; raw with dtn's settings / before {r['before_same_settings']:.2f}"
                         if side == "before" and "before_same_settings" in r else "")
                label = ("raw globus-url-copy with dtn-transfer's settings" if side == "raw_same"
                         else "dtn-transfer before (--before-tree)")
                print(f"  {label}: {r[f'{side}_seconds']:.2f} s ({r[f'{side}_range'][0]:.2f}-"
                      f"{r[f'{side}_range'][1]:.2f}); "
                      + (f"raw same settings / dtn {r[ratio]:.2f}" if side == "raw_same"
                         else f"raw / before {r[ratio]:.2f}") + extra)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w", encoding="utf-8") as f:
        json.dump({"taken": time.time(), "rows": rows, "load_average": os.getloadavg(),
                   "security": SECURITY.label(),
                   "dtn_tree": args.dtn_tree, "before_tree": args.before_tree, "data_dir": args.dir,
                   "note": "speedup = raw seconds / dtn-transfer seconds (>1: dtn-transfer faster), "
                           "medians of alternating runs; loopback, real globus-gridftp-server nodes"},
                  f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
