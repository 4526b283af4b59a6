"""Benchmark: one hpcib refresh against reading the same files with cat and plain Python.

A node with 4 HCAs x 2 ports and the full mlx5 hw_counters set is built with
hpc_demo.hpcib in a temporary directory.  Side by side in one run:

  cat          one `cat f1 f2 ...` process reading every file the agent reads (the anchor)
  python read  open()/read() of the same files in a loop, no parsing
  agent read   the agent's sysfs reader for every CA (listing + reading + parsing)
  agent        a whole refresh through the shared Refresher: sources in threads,
               build (file choice, saturation, resets, totals), metric table, instance ids

Absolute times on shared machines are noise; the ratios are the result.  Note
that on real hardware each counter read is a MAD round trip to the HCA firmware,
which costs far more than these page-cache reads: the overhead measured here is
the agent's own, an upper bound on its share.

    .venv/bin/python bench/ib_refresh.py [--runs 50] [--hcas 4] [--ports 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from hpc_demo import hpcib as demo  # noqa: E402
from pmdas.common.config import COMMON_OPTIONS, Config, validate  # noqa: E402
from pmdas.common.refresh import Refresher  # noqa: E402
from pmdas.hpcib import sysfs  # noqa: E402
from pmdas.hpcib.collector import InfinibandAgent  # noqa: E402

RESULTS = os.path.join(HERE, "results", "ib_refresh.json")


def files_the_agent_reads(class_dir: str) -> list[str]:
    """Every file one refresh opens, in the order the agent reads them."""
    out = []
    for ca in sorted(os.listdir(class_dir)):
        ca_dir = os.path.join(class_dir, ca)
        out += [os.path.join(ca_dir, a) for a in sysfs.CA_ATTRIBUTES
                if os.path.exists(os.path.join(ca_dir, a))]
        for port in sorted(os.listdir(os.path.join(ca_dir, "ports"))):
            port_dir = os.path.join(ca_dir, "ports", port)
            out += [os.path.join(port_dir, a) for a in sysfs.PORT_ATTRIBUTES]
            for sub in ("counters", "counters_ext", "hw_counters"):
                d = os.path.join(port_dir, sub)
                if os.path.isdir(d):
                    out += [os.path.join(d, n) for n in sorted(os.listdir(d)) if n != "lifespan"]
    return out


def timed(fn, runs: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--hcas", type=int, default=4)
    parser.add_argument("--ports", type=int, default=2)
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ib-bench-") as root:
        demo.build(root, args.hcas, args.ports)
        class_dir = os.path.join(root, sysfs.CLASS_DIR.lstrip("/"))
        files = files_the_agent_reads(class_dir)
        config = Config(validate({"root": root}, {**COMMON_OPTIONS, **InfinibandAgent.options},
                                 "bench"), None)
        refresher = Refresher(InfinibandAgent(config))
        check = refresher.refresh_once()
        assert check.values["hpc.ib.agent.up"] == 1, check.values["hpc.ib.agent.last_error"]
        hw_instances = len(check.instances["hw_counter"])

        def cat() -> None:
            subprocess.run(["cat", *files], stdout=subprocess.PIPE, check=True)

        def python_read() -> None:
            for path in files:
                with open(path) as f:
                    f.read()

        def agent_read() -> None:
            for ca in sysfs.list_devices(class_dir):
                sysfs.read_ca(class_dir, ca)

        cases = {"cat (one process)": cat, "python open/read": python_read,
                 "agent read+parse": agent_read, "agent refresh": refresher.refresh_once}
        samples = {name: timed(fn, args.runs) for name, fn in cases.items()}

    anchor = statistics.median(samples["cat (one process)"])
    py = statistics.median(samples["python open/read"])
    rows = []
    for name, values in samples.items():
        median = statistics.median(values)
        rows.append({"case": name, "median_ms": median * 1e3, "min_ms": min(values) * 1e3,
                     "p90_ms": sorted(values)[int(0.9 * (len(values) - 1))] * 1e3,
                     "vs_cat": median / anchor, "vs_python_read": median / py})
    print(f"hpcib refresh: {args.hcas} HCAs x {args.ports} ports, {len(files)} files, "
          f"{hw_instances} hw_counter instances, {args.runs} runs each")
    print(f"{'case':<20} {'median ms':>10} {'min ms':>8} {'p90 ms':>8} {'x cat':>7} {'x py read':>10}")
    for row in rows:
        print(f"{row['case']:<20} {row['median_ms']:>10.3f} {row['min_ms']:>8.3f} {row['p90_ms']:>8.3f} "
              f"{row['vs_cat']:>7.2f} {row['vs_python_read']:>10.2f}")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump({"benchmark": "ib_refresh", "hcas": args.hcas, "ports": args.ports,
                   "files": len(files), "hw_counter_instances": hw_instances, "runs": args.runs,
                   "python": platform.python_version(), "machine": platform.machine(),
                   "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "results": rows}, f, indent=2)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
