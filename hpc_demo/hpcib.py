"""Build (and advance) a fake /sys/class/infiniband tree for demos and benchmarks.

No InfiniBand hardware exists on the build machines, so the demo node and the
benchmark point the agent's ``root`` at a tree written here, in the exact sysfs
formats (one value per file, trailing newline), laid out as ConnectX (mlx5)
HCAs with the full set of standard, extended and vendor hw_counters.

    python -m hpc_demo.hpcib --root DIR [--hcas 4] [--ports 2]   # build
    python -m hpc_demo.hpcib --root DIR --advance                 # add traffic
"""
from __future__ import annotations

import argparse
import os
import random

from pmdas.hpcib.counters import COUNTERS, TRAFFIC
from pmdas.hpcib.sysfs import CLASS_DIR

# The per-port hw_counters of an mlx5 (ConnectX-6) port on a 5.x/6.x kernel.
MLX5_HW_COUNTERS = (
    "duplicate_request", "implied_nak_seq_err", "lifespan", "local_ack_timeout_err",
    "np_cnp_sent", "np_ecn_marked_roce_packets", "out_of_buffer", "out_of_sequence",
    "packet_seq_err", "req_cqe_error", "req_cqe_flush_error", "req_remote_access_errors",
    "req_remote_invalid_request", "resp_cqe_error", "resp_cqe_flush_error",
    "resp_local_length_error", "resp_remote_access_errors", "rnr_nak_retry_err",
    "roce_adp_retrans", "roce_adp_retrans_to", "roce_slow_restart", "roce_slow_restart_cnps",
    "roce_slow_restart_trans", "rp_cnp_handled", "rp_cnp_ignored", "rx_atomic_requests",
    "rx_dct_connect", "rx_icrc_encapsulated", "rx_read_requests", "rx_write_requests",
)
# Every standard counter, in the file the most kernels have (the last, legacy one), as
# <directory>/<file> paths; traffic counters move fast, error counters now and then.
COUNTER_FILES = tuple(c.files[-1].path for c in COUNTERS)
TRAFFIC_FILES = frozenset(c.files[-1].path for c in COUNTERS if c.cluster == TRAFFIC)


def write_value(path: str, value: object) -> None:
    """One sysfs attribute: the value and a newline, nothing else."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{value}\n")


def build(root: str, hcas: int = 4, ports: int = 2, seed: int = 1) -> list[str]:
    """Write a tree of ``hcas`` ConnectX-6 HCAs with ``ports`` IB ports each; return CA names."""
    rng = random.Random(seed)
    class_dir = os.path.join(root, CLASS_DIR.lstrip("/"))
    names = []
    for h in range(hcas):
        ca = f"mlx5_{h}"
        names.append(ca)
        ca_dir = os.path.join(class_dir, ca)
        os.makedirs(ca_dir, exist_ok=True)
        write_value(os.path.join(ca_dir, "hca_type"), "MT4123")
        write_value(os.path.join(ca_dir, "fw_ver"), "20.39.1002")
        write_value(os.path.join(ca_dir, "board_id"), "MT_0000000223")
        write_value(os.path.join(ca_dir, "node_guid"), f"b8ce:f603:00a1:{0x2b30 + h:04x}")
        for p in range(1, ports + 1):
            port_dir = os.path.join(ca_dir, "ports", str(p))
            for sub in sorted({*(os.path.dirname(f) for f in COUNTER_FILES), "hw_counters"}):
                os.makedirs(os.path.join(port_dir, sub), exist_ok=True)
            for name, value in (("state", "4: ACTIVE"), ("phys_state", "5: LinkUp"),
                                ("rate", "200 Gb/sec (4X HDR)"), ("link_layer", "InfiniBand"),
                                ("lid", hex(0x10 + h * ports + p)), ("sm_lid", "0x1")):
                write_value(os.path.join(port_dir, name), value)
            for relative in COUNTER_FILES:
                start = rng.randrange(10**9, 10**12) if relative in TRAFFIC_FILES else 0
                write_value(os.path.join(port_dir, relative), start)
            for name in MLX5_HW_COUNTERS:
                write_value(os.path.join(port_dir, "hw_counters", name),
                            10 if name == "lifespan" else rng.randrange(0, 1000))
    return names


def prepare(directory: str) -> dict:
    """Demo-node hook (hpc-demo up): build the tree once and return the agent's settings."""
    if not os.path.isdir(os.path.join(directory, CLASS_DIR.lstrip("/"))):
        build(directory)
    return {"root": directory}


def advance(root: str, seed: int | None = None) -> int:
    """Add one interval's worth of traffic (and the odd error) to every counter; return files changed."""
    rng = random.Random(seed)
    class_dir = os.path.join(root, CLASS_DIR.lstrip("/"))
    changed = 0
    if not os.path.isdir(class_dir):
        return 0
    for ca in sorted(os.listdir(class_dir)):
        ports_dir = os.path.join(class_dir, ca, "ports")
        for port in sorted(os.listdir(ports_dir)):
            for relative in (*COUNTER_FILES, *(f"hw_counters/{n}" for n in MLX5_HW_COUNTERS)):
                path = os.path.join(ports_dir, port, relative)
                if relative == "hw_counters/lifespan" or not os.path.isfile(path):
                    continue
                with open(path, encoding="utf-8") as f:
                    text = f.read().strip()
                if not text.isdecimal():
                    continue  # leave deliberately broken files alone
                step = (rng.randrange(10**6, 10**9) if relative in TRAFFIC_FILES
                        else int(rng.random() < 0.05))
                write_value(path, int(text) + step)
                changed += 1
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpc_demo.hpcib", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="directory to hold sys/class/infiniband")
    parser.add_argument("--hcas", type=int, default=4, help="number of HCAs to create (default 4)")
    parser.add_argument("--ports", type=int, default=2, help="ports per HCA (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for counter values")
    parser.add_argument("--advance", action="store_true",
                        help="advance the counters of an existing tree instead of building one")
    args = parser.parse_args(argv)
    if args.advance:
        if not os.path.isdir(os.path.join(args.root, CLASS_DIR.lstrip("/"))):
            parser.error(f"{args.root} has no {CLASS_DIR} tree: build one first (without --advance)")
        print(f"advanced {advance(args.root)} counters under {args.root}")
    else:
        if args.hcas < 1 or args.ports < 1:
            parser.error("--hcas and --ports must be at least 1")
        names = build(args.root, args.hcas, args.ports, args.seed)
        print(f"built {len(names)} HCAs x {args.ports} ports under {args.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
