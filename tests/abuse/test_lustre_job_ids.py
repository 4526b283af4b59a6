"""Lustre job ids: jobid_var names an environment variable of the user's own process (or
jobid_name a pattern of its name), so any user writes the ids a server's job_stats lists.
Hostile ids in both job_stats forms go through the real hpclustre in the real pmcd, on a
copy of the recorded 2.15 OSS tree."""
from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmdas.common.names import renamed
from pmdas.hpclustre.job_stats import parse_job_stats
from tests.harness.pcp import installed_agent, reader

from .actions import run_rule_actions
from .ledger import LEDGER, Figures, served, wait_served, watch
from .payloads import hostile_names

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]

TREE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "lustre", "v2_15", "oss")
OST = "proc/fs/lustre/obdfilter/scratch-OST0000/job_stats"
COUNTERS = ("  read_bytes:      { samples:           7, unit: bytes, min:     4096, max:  4194304, "
            "sum:           700000, sumsq:  1, hist: { 4K: 7 } }\n"
            "  write_bytes:     { samples:           0, unit: bytes, min:        0, max:        0, "
            "sum:                0, sumsq:                  0, hist: {  } }\n")


def _entry(job_id: str, quoted: bool) -> str:
    shown = f'"{job_id}"' if quoted else job_id
    return (f"- job_id:          {shown}\n  snapshot_time:   1723114647.887515895 secs.nsecs\n"
            f"  start_time:      1723102025.057286226 secs.nsecs\n{COUNTERS}")


def _ids(canary, tag: str) -> list[str]:
    return hostile_names(canary, tag) + [
        f'{tag}"quoted"', f"{tag}: {{ yaml: [broken", f"{tag}\n- job_id: SLURM_JOB10:0:node-client",
        f"{tag}\n  read_bytes: {{ samples: 9, unit: bytes, min: 0, max: 0, sum: 99999999 }}",
        f"{tag}  ", "   ", "", f"{tag}" + "9" * 100_000, f"{tag}.{os.getuid()}", f"{tag}.{os.getuid()}",
        f"{tag}%e.%u.%h", "*", "~", "[other]", "null", "!!python/object:os.system"]


def test_hostile_job_ids_through_pmcd(abuse_dir, tmp_path):
    root = os.path.join(abuse_dir, "root")
    shutil.copytree(TREE, root)
    with installed_agent("hpclustre", {"root": root, "interval": 1}) as _, \
            watch("lustre job ids", ["hpclustre"], [abuse_dir]) as case:
        ids = _ids(case.canary, "job")
        text = "job_stats:\n" + "".join(_entry(j, k % 2 == 0) for k, j in enumerate(ids))
        with open(os.path.join(root, OST), "wb") as f:
            f.write(text.encode("utf-8") + b'- job_id: "bad\xed\xa0\x80\xff"\n' + COUNTERS.encode())
        case.written()
        case.tried(len(ids) + 1)
        parsed = parse_job_stats(text)

        def hostile_served():
            names = served("hpc.lustre.job.read.bytes")
            return names if len(names) >= len(parsed) else None
        names = wait_served(hostile_served, "hpc.lustre", "the hostile job ids to be served")
        assert reader().fetch(["hpc.lustre.agent.up"])["hpc.lustre.agent.up"] == 1
        assert all(n.isprintable() for n in names), [n for n in names if not n.isprintable()]
        assert len({n.split(" ")[0] for n in names}) == len(names), "PCP's first-word rule broken"
        assert max(map(len, names)) <= 200, "a huge job id was served whole"
        case.tried(run_rule_actions("lustre", list(names), str(tmp_path)))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=40), st.booleans()), max_size=8))
def test_any_job_ids_parse_to_safe_distinct_names(entries):
    """Whatever ids job_stats holds: it parses, and the names PCP gets are printable and
    unique by first word."""
    LEDGER.add("lustre job ids", Figures(inputs=max(1, len(entries))))
    jobs = parse_job_stats("job_stats:\n" + "".join(_entry(j, q) for j, q in entries))
    changes = renamed(list(jobs))
    shown = [changes.get(j, j) for j in jobs]
    assert all(s.isprintable() for s in shown)
    assert len({s.split(" ")[0] for s in shown}) == len(shown)
