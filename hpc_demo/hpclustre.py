"""Build a Lustre file tree in the real formats, and make its counters move.

No Lustre can run on the demo and build machines, so this writes what a node
that is client, OSS and MDS at once would show (2.15 layout: /sys, debugfs and
/proc; or the 2.10 /proc layout) below a root directory, for the agent's
``root`` setting.  ``--advance`` moves every counter forward as if a period of
I/O had passed, lets some jobs finish (their job_stats entries expire) and
new ones start, so the demo node's metrics change over time:

    python -m hpc_demo.hpclustre --root /var/lib/pcp-hpc/lustre-demo --filesystems 2 --jobs 40
    python -m hpc_demo.hpclustre --root /var/lib/pcp-hpc/lustre-demo --advance
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import sys
import time

STATE = ".hpclustre-demo.json"
LLITE_OPS = (
    "open",
    "close",
    "getattr",
    "setattr",
    "statfs",
    "fsync",
    "seek",
    "readdir",
    "create",
    "unlink",
    "mkdir",
    "rename",
    "getxattr",
    "inode_permission",
)
OSC_OPS = ("ost_read", "ost_write", "ost_punch", "ost_setattr", "ost_statfs", "ldlm_cancel", "obd_ping")
OST_OPS = ("setattr", "punch", "sync", "destroy", "create", "statfs", "get_info")
MDT_OPS = (
    "open",
    "close",
    "mknod",
    "unlink",
    "mkdir",
    "rmdir",
    "rename",
    "getattr",
    "setattr",
    "getxattr",
    "statfs",
)
JOB_OST_OPS = (
    "getattr",
    "setattr",
    "punch",
    "sync",
    "destroy",
    "create",
    "statfs",
    "get_info",
    "set_info",
    "quotactl",
    "prealloc",
)


def _stats_text(counters: dict[str, list], now: float, modern: bool, start: float,
                timed: bool = True) -> str:
    """A Lustre ``stats`` file: zero-count lines are left out, as Lustre does.  ``timed=False``:
    operations are plain counts (``[regs]``, no min/max/sum), as in 2.10's llite stats."""
    unit_secs = "secs.nsecs" if modern else "secs.usecs"
    out = f"{'snapshot_time':<25} {now:.9f} {unit_secs}\n"
    if modern:
        out += (
            f"{'start_time':<25} {start:.9f} secs.nsecs\n{'elapsed_time':<25} {now - start:.9f} secs.nsecs\n"
        )
    for name, (count, unit, total) in counters.items():
        if count == 0:
            continue
        if unit == "reqs" or total is None or (not timed and unit != "bytes"):
            out += f"{name:<25} {count} samples [{'reqs' if modern else 'regs'}]\n"
        else:
            lo, hi = (4096, 4194304) if unit == "bytes" else (3, 90000)
            unit = unit if modern or unit == "bytes" else "usec"
            out += f"{name:<25} {count} samples [{unit}] {lo} {hi} {total}"
            out += f" {total * hi}\n" if modern else "\n"
    return out


def _rpc_stats_text(state: dict, now: float, modern: bool) -> str:
    head = (
        f"snapshot_time:            {now:.9f} secs.nsecs\n"
        if modern
        else f"snapshot_time:         {now:.9f} (secs.usecs)\n"
    )
    head += (
        f"read RPCs in flight:  {state['in_flight'][0]}\nwrite RPCs in flight: {state['in_flight'][1]}\n"
        f"pending write pages:  {state['pending'][1]}\npending read pages:   {state['pending'][0]}\n"
    )
    for title in ("pages per rpc", "rpcs in flight", "offset"):
        rows = state["hist"][title]
        rt = sum(r for _k, r, _w in rows) or 1
        wt = sum(w for _k, _r, w in rows) or 1
        head += f"\n\t\t\tread\t\t\twrite\n{title:<22}rpcs   % cum % |       rpcs   % cum %\n"
        rc = wc = 0
        for key, r, w in rows:
            rc, wc = rc + r, wc + w
            head += (
                f"{key}:\t\t{r:10d} {r * 100 // rt:3d} {rc * 100 // rt:3d}   | "
                f"{w:10d} {w * 100 // wt:3d} {wc * 100 // wt:3d}\n"
            )
    return head


def _job_text(jobs: dict[str, dict], ops: tuple[str, ...], modern: bool, now: float, mdt: bool) -> str:
    out = "job_stats:\n"
    for job_id, c in jobs.items():
        shown = f'"{job_id}"' if (modern and ":" in job_id) else job_id
        out += f"- job_id:          {shown}\n"
        out += (
            f"  snapshot_time:   {now:.9f} secs.nsecs\n  start_time:      {c['start']:.9f} secs.nsecs\n"
            f"  elapsed_time:    {now - c['start']:.9f} secs.nsecs\n"
            if modern
            else f"  snapshot_time:   {int(now)}\n"
        )
        names = ([] if mdt else ["read_bytes", "write_bytes"]) + (
            ["read", "write"] if modern and not mdt else []
        )
        for name in names + list(ops):
            n, total = c.get(name, [0, 0])
            if name.endswith("_bytes") or modern:
                unit = "bytes" if name.endswith("_bytes") else "usecs"
                lo, hi = ((4096, 4194304) if unit == "bytes" else (5, 90000)) if n else (0, 0)
                line = (
                    f"  {name + ':':<16} {{ samples: {n:11d}, unit: {unit}, min: {lo:8d}, "
                    f"max: {hi:8d}, sum: {total:16d}"
                )
                line += f", sumsq: {total * 4:18d}" if modern else ""
                line += (", hist: { %s }" % (f"4M: {n}" if n else " ")) if modern and unit == "bytes" else ""
                out += line + " }\n"
            else:
                out += f"  {name + ':':<16} {{ samples: {n:11d}, unit:  reqs }}\n"
    return out


def _write(root: str, path: str, text: str) -> None:
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    tmp = full + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, full)


def new_state(filesystems: int, oscs: int, osts: int, jobs: int, version: str, seed: int) -> dict:
    """Initial counters for a node that mounts ``filesystems`` and serves their targets."""
    rnd = random.Random(seed)
    names = ["scratch", "home", "project", "archive", "work", "data"]
    fss = [names[i] if i < len(names) else f"fs{i}" for i in range(filesystems)]
    state = {
        "version": version,
        "seed": seed,
        "start": time.time() - 3600,
        "step": 0,
        "fs": {},
        "next_job": 1000,
        "jobs_wanted": jobs,
    }
    for fs in fss:
        hexid = f"ffff{rnd.getrandbits(48):012x}"
        state["fs"][fs] = {
            "hex": hexid,
            "llite": {
                "read_bytes": [0, "bytes", 0],
                "write_bytes": [0, "bytes", 0],
                **{op: [0, "usecs", 0] for op in LLITE_OPS},
            },
            "osc": {f"{fs}-OST{i:04x}": new_osc() for i in range(oscs)},
            "ost": {
                f"{fs}-OST{i:04x}": {
                    "stats": {
                        "read_bytes": [0, "bytes", 0],
                        "write_bytes": [0, "bytes", 0],
                        **{op: [0, "usecs", 0] for op in OST_OPS},
                    },
                    "kbytestotal": 30742154136,
                    "used": rnd.randrange(10**9, 10**10),
                }
                for i in range(osts)
            },
            "mdt": {"stats": {op: [0, "usecs", 0] for op in MDT_OPS}},
            "jobs": {},
        }
    state["lnet"] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    return state


def new_osc() -> dict:
    """An OSC's counters at zero (stats, RPCs in flight, pending pages, rpc_stats histograms)."""
    return {
        "stats": {
            "req_waittime": [0, "usecs", 0],
            "read_bytes": [0, "bytes", 0],
            "write_bytes": [0, "bytes", 0],
            **{op: [0, "usecs", 0] for op in OSC_OPS},
        },
        "in_flight": [0, 0],
        "pending": [0, 0],
        "hist": {
            "pages per rpc": [[1 << i, 0, 0] for i in range(11)],
            "rpcs in flight": [[i, 0, 0] for i in range(1, 9)],
            "offset": [[0 if i == 0 else 1 << (i - 1), 0, 0] for i in range(12)],
        },
    }


def _bump(counter: list, n: int, per: int) -> None:
    counter[0] += n
    counter[2] += n * per


def step(state: dict, slurm_jobs: tuple[str, ...] = (), host: str = "") -> None:
    """One period of I/O: counters grow, some jobs finish and new ones start.

    ``slurm_jobs``: ids of jobs running in a real Slurm (the demo node's); each gets a
    job_stats entry (``SLURM_JOB<id>:0:<host>``) on every target while it runs, so Lustre
    I/O joins hpc.job.* for jobs that exist."""
    rnd = random.Random(state["seed"] * 1000003 + state["step"])
    real = {f"SLURM_JOB{job_id}:0:{host}" for job_id in slurm_jobs}
    state["step"] += 1
    for f in state["fs"].values():
        for name, c in f["llite"].items():
            _bump(c, rnd.randrange(1, 400), 1 << 20 if name.endswith("_bytes") else rnd.randrange(5, 200))
        for osc in f["osc"].values():
            for name, c in osc["stats"].items():
                _bump(
                    c, rnd.randrange(1, 300), 1 << 20 if name.endswith("_bytes") else rnd.randrange(40, 900)
                )
            osc["in_flight"] = [rnd.randrange(0, 9), rnd.randrange(0, 9)]
            osc["pending"] = [rnd.randrange(0, 64), rnd.randrange(0, 4096)]
            for rows in osc["hist"].values():
                for row in rows:
                    row[1] += rnd.randrange(0, 50)
                    row[2] += rnd.randrange(0, 80)
        for ost in f["ost"].values():
            for name, c in ost["stats"].items():
                _bump(
                    c, rnd.randrange(1, 500), 1 << 20 if name.endswith("_bytes") else rnd.randrange(10, 300)
                )
            ost["used"] = min(ost["kbytestotal"] - 1, ost["used"] + rnd.randrange(0, 10**6))
        for c in f["mdt"]["stats"].values():
            _bump(c, rnd.randrange(1, 2000), rnd.randrange(3, 90))
        jobs = f["jobs"]
        for job_id in [j for j in jobs if j not in real and rnd.random() < 0.1]:
            del jobs[job_id]  # finished; its entry expires
        for job_id in real - jobs.keys():
            jobs[job_id] = {"start": time.time(), "ost": {}, "mdt": {}}
        while len(jobs) < state["jobs_wanted"]:
            state["next_job"] += 1
            jobs[
                f"SLURM_JOB{state['next_job']}:{rnd.choice([0, 1000, 1001])}:node{rnd.randrange(1, 65):03d}"
            ] = {"start": time.time(), "ost": {}, "mdt": {}}
        for job_id, entry in jobs.items():
            # the real jobs are the busy ones, so they stay in the agent's top N
            weight = 100 if job_id in real else rnd.choice([0, 1, 1, 10, 100])
            for name in ("read_bytes", "write_bytes", "read", "write") + JOB_OST_OPS[:3]:
                c = entry["ost"].setdefault(name, [0, 0])
                n = rnd.randrange(0, 5) * weight
                c[0] += n
                c[1] += n * (1 << 20 if name.endswith("_bytes") else 120)
            for name in ("open", "close", "getattr", "mknod", "unlink"):
                c = entry["mdt"].setdefault(name, [0, 0])
                n = rnd.randrange(0, 20) * max(1, weight // 10)
                c[0] += n
                c[1] += n * 40
    lnet = state["lnet"]
    lnet[0], lnet[1] = rnd.randrange(0, 40), max(lnet[1], 4096)
    for i, inc in ((3, 5000), (4, 5000), (7, 5000 << 20), (8, 5000 << 20)):
        lnet[i] += rnd.randrange(inc // 2, inc)


def write_tree(root: str, state: dict) -> None:
    """Write every file of the node in the chosen version's layout.  A state may be a
    client's only (no OSTs, ``mdt`` None; ``mdc`` stats per MDT) or a server's only (no
    llite, no osc; its targets' job_stats in ``ost[<target>]["jobs"]`` and ``mdt["jobs"]``),
    as hpc_demo.cluster.lustre builds them for the cluster's nodes."""
    modern = state["version"] != "2.10"
    now, start = time.time(), state["start"]
    dbg = "/sys/kernel/debug/lustre" if modern else "/proc/fs/lustre"
    osd = "/sys/fs/lustre/osd-ldiskfs" if modern else "/proc/fs/lustre/osd-ldiskfs"
    for fs, f in state["fs"].items():
        hx = f["hex"]
        if modern and f["llite"]:
            _write(root, f"/sys/fs/lustre/llite/{fs}-{hx}/max_read_ahead_mb", "1024\n")
        if f["llite"]:
            _write(root, f"{dbg}/llite/{fs}-{hx}/stats",
                   _stats_text(f["llite"], now, modern, start, timed=modern))
        for target, mdc in f.get("mdc", {}).items():
            _write(root, f"{dbg}/mdc/{target}-mdc-{hx}/stats", _stats_text(mdc["stats"], now, modern, start))
        for target, osc in f["osc"].items():
            _write(root, f"{dbg}/osc/{target}-osc-{hx}/stats", _stats_text(osc["stats"], now, modern, start))
            _write(root, f"{dbg}/osc/{target}-osc-{hx}/rpc_stats", _rpc_stats_text(osc, now, modern))
        for target, ost in f["ost"].items():
            _write(
                root,
                f"/proc/fs/lustre/obdfilter/{target}/stats",
                _stats_text(ost["stats"], now, modern, start),
            )
            _write(
                root,
                f"/proc/fs/lustre/obdfilter/{target}/recovery_status",
                f"status: COMPLETE\nrecovery_start: {int(start)}\nrecovery_duration: 60\n"
                "completed_clients: 4/4\nreplayed_requests: 0\nlast_transno: 12884901888\n"
                "VBR: DISABLED\nIR: ENABLED\n",
            )
            on_target = ost["jobs"] if "jobs" in ost else {
                j: {"start": e["start"], **e["ost"]} for j, e in f["jobs"].items()}
            _write(
                root,
                f"/proc/fs/lustre/obdfilter/{target}/job_stats",
                _job_text(on_target, JOB_OST_OPS, modern, now, mdt=False),
            )
            free = ost["kbytestotal"] - ost["used"]
            for item, value in (
                ("kbytestotal", ost["kbytestotal"]),
                ("kbytesfree", free),
                ("kbytesavail", free - free // 20),
                ("filestotal", 122880000),
                ("filesfree", 122880000 - ost["used"] // 4096),
            ):
                _write(root, f"{osd}/{target}/{item}", f"{value}\n")
        if f["mdt"] is None:
            continue
        mdt = f"{fs}-MDT0000"
        _write(
            root, f"/proc/fs/lustre/mdt/{mdt}/md_stats", _stats_text(f["mdt"]["stats"], now, modern, start)
        )
        _write(root, f"/proc/fs/lustre/mdt/{mdt}/recovery_status", "status: COMPLETE\n")
        on_mdt = f["mdt"]["jobs"] if "jobs" in f["mdt"] else {
            j: {"start": e["start"], **e["mdt"]} for j, e in f["jobs"].items()}
        _write(
            root, f"/proc/fs/lustre/mdt/{mdt}/job_stats", _job_text(on_mdt, MDT_OPS, modern, now, mdt=True)
        )
        for item, value in (
            ("kbytestotal", 2147483648),
            ("kbytesfree", 2001201201),
            ("kbytesavail", 2001201201),
            ("filestotal", 1073741824),
            ("filesfree", 1073120120),
        ):
            _write(root, f"{osd}/{mdt}/{item}", f"{value}\n")
    lnet_path = "/sys/kernel/debug/lnet/stats" if modern else "/proc/sys/lnet/stats"
    _write(root, lnet_path, " ".join(str(v) for v in state["lnet"]) + "\n")
    _write(root, "/sys/fs/lustre/health_check" if modern else "/proc/fs/lustre/health_check", "healthy\n")
    # The agent needs the version to tell a zero line left out from a line the version lacks.
    _write(root, "/sys/fs/lustre/version" if modern else "/proc/fs/lustre/version",
           "2.15.5\n" if modern else "lustre: 2.10.8\nkernel: patchless_client\nbuild:  2.10.8\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hpc_demo.hpclustre", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--root", required=True, help="directory to build the tree in (the agent's root)")
    parser.add_argument(
        "--advance", action="store_true", help="move the counters of an existing tree forward"
    )
    parser.add_argument("--every", type=float, default=0, help="with --advance: repeat every SECONDS")
    parser.add_argument("--times", type=int, default=1, help="with --every: how many advances (bounded)")
    parser.add_argument("--filesystems", type=int, default=1)
    parser.add_argument("--oscs", type=int, default=2, help="OSTs each client mount talks to")
    parser.add_argument("--osts", type=int, default=2, help="OSTs this node serves per filesystem")
    parser.add_argument("--jobs", type=int, default=20, help="jobs active at a time per filesystem")
    parser.add_argument("--version", choices=("2.10", "2.15"), default="2.15")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fresh", action="store_true", help="delete the tree first")
    parser.add_argument("--slurm-jobs", default="", help="with --advance: comma-separated ids of "
                        "jobs running in a real Slurm, given job_stats entries while they run")
    args = parser.parse_args(argv)
    state_path = os.path.join(args.root, STATE)
    if args.fresh and os.path.isdir(args.root):
        shutil.rmtree(args.root)
    if args.advance and os.path.exists(state_path):
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
    else:
        state = new_state(args.filesystems, args.oscs, args.osts, args.jobs, args.version, args.seed)
    for i in range(max(1, args.times if args.every else 1)):
        if i:
            time.sleep(args.every)
        step(state, tuple(filter(None, args.slurm_jobs.split(","))), socket.gethostname())
        write_tree(args.root, state)
        _write(args.root, STATE, json.dumps(state))
    print(f"Lustre {state['version']} demo tree at {args.root}, step {state['step']}", file=sys.stderr)
    return 0


def prepare(directory: str) -> dict:
    """Demo node hook: a client + OSS + MDS tree (2 filesystems) and the agent's settings."""
    root = os.path.join(directory, "tree")
    if not os.path.exists(os.path.join(root, STATE)):
        main(["--root", root, "--filesystems", "2", "--oscs", "4", "--osts", "2", "--jobs", "30"])
    return {"root": root, "interval": 5, "job_limit": 50}


def advance(directory: str) -> None:
    """Demo node hook: move the tree's counters on by one period.  Jobs running in the demo
    node's Slurm (the hpcjob demo next to this one) do Lustre I/O too."""
    main(["--root", os.path.join(directory, "tree"), "--advance",
          "--slurm-jobs", ",".join(_demo_slurm_jobs(directory))])


def _demo_slurm_jobs(directory: str) -> list[str]:
    from hpc_demo.hpcjob import running_jobs  # the hpcjob demo next to this one
    return running_jobs(os.path.join(os.path.dirname(directory), "hpcjob"))


if __name__ == "__main__":
    sys.exit(main())
