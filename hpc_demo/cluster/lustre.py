"""The cluster's Lustre: compute nodes are clients, the server nodes count what they send.

A real compute node shows client statistics only (llite per mount, osc per OST, mdc per
MDT); job_stats live on the servers, one entry per job id that clients stamp on their RPCs
(``jobid_var=SLURM_JOB_ID``, ``jobid_name=%j:%u:%H``: ``4242:0:node01``).  Here, every
period, each compute node's running Slurm jobs do I/O (each job its own mix, from its id);
the node's client counters grow by exactly that, and each server adds, per target it
serves and per job id, what every client sent it.  So a job's bytes on the servers are the
sum of its clients' bytes, the servers' job_stats hold the jobs that run and nothing else,
and an OST's totals are the sum of its clients' OSC totals.  An entry idle for
``CLEANUP`` seconds expires, as with Lustre's job_cleanup_interval.

Each client also keeps a ledger beside its tree (not a Lustre file): per job id and target,
the bytes it sent so far, for the last ``LEDGER_PERIODS`` periods, so a test can check the
servers' figures against the clients'.

The trees are written by hpc_demo.hpclustre.write_tree (the demo node's, which is client
and server at once), so both speak the same formats.
"""
from __future__ import annotations

import copy
import random
import time
from collections.abc import Iterable, Mapping

from hpc_demo import hpclustre

FILESYSTEMS = ("scratch", "home")
OSTS = 4                 # per filesystem; each client talks to all of them
VERSION = "2.15"
MIB = 1 << 20
CLEANUP = 300.0          # seconds an idle job_stats entry lives (job_cleanup_interval)
LEDGER_PERIODS = 12
# A job's metadata operations on an MDT, and the client RPC (mdc stats) each one costs.
MDC_RPC = {"open": "ldlm_ibits_enqueue", "close": "mds_close", "getattr": "mds_getattr",
           "mknod": "mds_reint", "unlink": "mds_reint"}
LLITE_OP = {"open": "open", "close": "close", "getattr": "getattr", "mknod": "create", "unlink": "unlink"}
MDC_RPCS = tuple(sorted(set(MDC_RPC.values())))
JOB_OST_OPS = ("punch", "setattr", "sync")   # besides reads and writes
BYTES = ("read_bytes", "write_bytes")

Sent = dict[str, dict[str, dict[str, list[int]]]]   # job id → target → counter → [samples, sum]


def ost_name(fs: str, index: int) -> str:
    return f"{fs}-OST{index:04x}"


def mdt_name(fs: str) -> str:
    return f"{fs}-MDT0000"


def served(index: int, servers: int) -> list[str]:
    """The targets server ``index`` (1-based) of ``servers`` serves: OSTs round robin, every
    MDT on the first (the MDS)."""
    targets = [ost_name(fs, i) for fs in FILESYSTEMS for i in range(OSTS) if i % servers == index - 1]
    return targets + ([mdt_name(fs) for fs in FILESYSTEMS] if index == 1 else [])


def _counters(names: Iterable[str], unit: str = "usecs") -> dict[str, list]:
    return {name: [0, unit, 0] for name in names}


def _bump(counter: list, samples: int, total: int) -> None:
    counter[0] += samples
    counter[-1] += total


def _base(seed: int, role: str) -> dict:
    return {"version": VERSION, "role": role, "seed": seed, "start": time.time() - 3600, "step": 0,
            "fs": {}, "lnet": [0, 4096, 0, 0, 0, 0, 0, 0, 0, 0, 0]}


def new_client(seed: int) -> dict:
    """A compute node's client counters, all mounts, at zero."""
    rnd = random.Random(seed)
    state = _base(seed, "client")
    state.update(ledger={}, log=[])
    for fs in FILESYSTEMS:
        state["fs"][fs] = {
            "hex": f"ffff{rnd.getrandbits(48):012x}",
            "llite": {**_counters(BYTES, "bytes"), **_counters(hpclustre.LLITE_OPS)},
            "osc": {ost_name(fs, i): hpclustre.new_osc() for i in range(OSTS)},
            "mdc": {mdt_name(fs): {"stats": _counters(("req_waittime", "obd_ping", *MDC_RPCS))}},
            "ost": {}, "mdt": None, "jobs": {},
        }
    return state


def new_server(index: int, servers: int, seed: int) -> dict:
    """A server's targets (``served``), empty job_stats."""
    rnd = random.Random(seed)
    state = _base(seed, "server")
    targets = served(index, servers)
    state["targets"] = targets
    for fs in FILESYSTEMS:
        osts = {t: {"stats": {**_counters(BYTES, "bytes"), **_counters(hpclustre.OST_OPS)},
                    "kbytestotal": 30742154136, "used": rnd.randrange(10**9, 10**10), "jobs": {}}
                for t in targets if t.startswith(f"{fs}-OST")}
        mdt = ({"stats": _counters(hpclustre.MDT_OPS), "jobs": {}} if mdt_name(fs) in targets else None)
        state["fs"][fs] = {"hex": f"ffff{rnd.getrandbits(48):012x}", "llite": {}, "osc": {}, "ost": osts,
                           "mdt": mdt, "jobs": {}}
    return state


def _job_io(job: str, rnd: random.Random) -> dict[str, dict[str, list[int]]]:
    """One period of one job on one node: target → counter → [samples, sum].  The job's
    character (which filesystems, how much it writes and reads) comes from its id, the
    period's amounts from ``rnd``; it writes at least one 1 MiB RPC to every OST it uses."""
    character = random.Random(int(job) if job.isdecimal() else sum(job.encode()))
    filesystems = character.sample(FILESYSTEMS, character.choice((1, 2)))
    writes, reads = character.choice((1, 2, 4, 16)), character.choice((0, 1, 4, 8))
    meta = character.choice((1, 5))
    io: dict[str, dict[str, list[int]]] = {}
    for fs in filesystems:
        for i in range(OSTS):
            nw, nr = rnd.randrange(1, 8) * writes, rnd.randrange(0, 8) * reads
            counters = {"write_bytes": [nw, nw * MIB], "write": [nw, nw * rnd.randrange(200, 3000)]}
            if nr:
                counters.update(read_bytes=[nr, nr * MIB], read=[nr, nr * rnd.randrange(100, 2000)])
            for op in JOB_OST_OPS:
                n = rnd.randrange(0, 3)
                if n:
                    counters[op] = [n, n * rnd.randrange(20, 400)]
            io[ost_name(fs, i)] = counters
        ops = {}
        for op in MDC_RPC:
            n = rnd.randrange(0, 20) * meta
            if n:
                ops[op] = [n, n * rnd.randrange(10, 90)]
        if ops:
            io[mdt_name(fs)] = ops
    return io


def client_step(state: dict, jobs: Mapping[str, int], host: str, now: float) -> Sent:
    """One period on a compute node: ``jobs`` (Slurm job id → uid) do their I/O; the client
    counters grow by it; return what was sent, by job id as the servers see it."""
    rnd = random.Random(state["seed"] * 1000003 + state["step"])
    state["step"] += 1
    sent: Sent = {f"{job}:{uid}:{host}": _job_io(job, rnd) for job, uid in sorted(jobs.items())}
    for f in state["fs"].values():
        for osc in f["osc"].values():   # pings go on with no job
            _bump(osc["stats"]["obd_ping"], 1, rnd.randrange(40, 200))
            _bump(osc["stats"]["req_waittime"], 1, rnd.randrange(40, 200))
            osc["in_flight"] = [0, 0]
        for mdc in f["mdc"].values():
            _bump(mdc["stats"]["obd_ping"], 1, rnd.randrange(40, 200))
            _bump(mdc["stats"]["req_waittime"], 1, rnd.randrange(40, 200))
    sent_bytes = 0
    for targets in sent.values():
        for target, counters in targets.items():
            fs = target.rsplit("-", 1)[0]
            f = state["fs"][fs]
            if target in f["osc"]:
                _osc_io(f, f["osc"][target], counters, rnd)
                sent_bytes += counters["write_bytes"][1] + counters.get("read_bytes", [0, 0])[1]
            else:
                stats = f["mdc"][target]["stats"]
                for op, (n, usecs) in counters.items():
                    _bump(stats[MDC_RPC[op]], n, usecs)
                    _bump(stats["req_waittime"], n, usecs)
                    _bump(f["llite"][LLITE_OP[op]], n, usecs)
    lnet = state["lnet"]
    rpcs = sum(c[0] for t in sent.values() for cs in t.values() for c in cs.values())
    lnet[0] = min(rpcs, 4096)
    lnet[3] += rpcs
    lnet[4] += rpcs
    lnet[7] += sent_bytes
    lnet[8] += sent_bytes
    _record(state, sent, now)
    return sent


def _osc_io(f: dict, osc: dict, counters: dict[str, list[int]], rnd: random.Random) -> None:
    stats = osc["stats"]
    for kind in ("read", "write"):
        n, usecs = counters.get(kind, [0, 0])
        if not n:
            continue
        _bump(stats[f"{kind}_bytes"], n, counters[f"{kind}_bytes"][1])
        _bump(f["llite"][f"{kind}_bytes"], n, counters[f"{kind}_bytes"][1])
        _bump(stats[f"ost_{kind}"], n, usecs)
        _bump(stats["req_waittime"], n, usecs)
        column = 1 if kind == "read" else 2
        osc["hist"]["pages per rpc"][8][column] += n              # 1 MiB: 256 pages
        osc["hist"]["rpcs in flight"][rnd.randrange(0, 8)][column] += n
        osc["hist"]["offset"][rnd.randrange(0, 12)][column] += n
        osc["in_flight"][column - 1] = min(8, n)
    for op in ("punch", "setattr"):
        if op in counters:
            _bump(stats[f"ost_{op}"], *counters[op])
            _bump(stats["req_waittime"], *counters[op])


def _record(state: dict, sent: Sent, now: float) -> None:
    """The ledger: per running job id and target, [bytes read, bytes written] so far."""
    ledger = {job_id: state["ledger"].get(job_id, {}) for job_id in sent}
    for job_id, targets in sent.items():
        for target, counters in targets.items():
            if "write_bytes" in counters:
                mine = ledger[job_id].setdefault(target, [0, 0])
                mine[0] += counters.get("read_bytes", [0, 0])[1]
                mine[1] += counters["write_bytes"][1]
    state["ledger"] = ledger
    state["log"] = (state["log"] + [[now, copy.deepcopy(ledger)]])[-LEDGER_PERIODS:]


def server_step(state: dict, sent_by_clients: Iterable[Sent], now: float) -> None:
    """One period on a server: what every client sent to the targets it serves joins the
    targets' totals and job_stats; idle job entries expire."""
    state["step"] += 1
    received = 0
    for sent in sent_by_clients:
        for job_id, targets in sent.items():
            for target, counters in targets.items():
                if target not in state["targets"]:
                    continue
                f = state["fs"][target.rsplit("-", 1)[0]]
                ost = f["ost"].get(target)
                where = ost if ost is not None else f["mdt"]
                entry = where["jobs"].setdefault(job_id, {"start": now})
                entry["last"] = now
                for name, (n, total) in counters.items():
                    _bump(entry.setdefault(name, [0, 0]), n, total)
                    if name in where["stats"]:
                        _bump(where["stats"][name], n, total)
                    received += n
                if ost is not None:
                    written = counters["write_bytes"][1] // 1024
                    ost["used"] = min(ost["kbytestotal"] - 1, ost["used"] + written)
    for f in state["fs"].values():
        for where in [*f["ost"].values(), *([f["mdt"]] if f["mdt"] else [])]:
            for job_id in [j for j, e in where["jobs"].items() if e["last"] < now - CLEANUP]:
                del where["jobs"][job_id]
    lnet = state["lnet"]
    lnet[3] += received
    lnet[4] += received


def job_ids(state: dict) -> set[str]:
    """Every job id with a job_stats entry on the server (any target)."""
    return {j for f in state["fs"].values()
            for where in [*f["ost"].values(), *([f["mdt"]] if f["mdt"] else [])] for j in where["jobs"]}
