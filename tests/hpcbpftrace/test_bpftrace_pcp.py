"""Tier 2+3: the hpcbpftrace agent under the real pmcd with real bpftrace."""
from __future__ import annotations

import subprocess
import time

import pytest

from tests.harness.pcp import hpc_pcp, installed_agent, reader, run_pcp, wait_for, wait_refreshed

from .conftest import slow_to_stop_bpftrace

pytestmark = [pytest.mark.pcp, pytest.mark.services, pytest.mark.usefixtures("pmcd")]

OPENS = """// name: opens_test
// description: openat calls by process name (test)
// requires: tracepoint
// exports: @opens counter by comm unit count: openat calls by processes with this name

tracepoint:syscalls:sys_enter_openat
{
	@opens[comm] = count();
}

interval:s:1
{
	print(@opens);
}
"""


def test_live_script_counts_events_histograms_ordered_and_stores_checked(tmp_path):
    script = tmp_path / "opens_test.bt"
    script.write_text(OPENS)
    with installed_agent("hpcbpftrace", {"script_dir": str(tmp_path / "admin"), "interval": 1,
                                         "enabled": ["runqlat"]}):
        wait_refreshed("hpc.bpftrace")
        added = hpc_pcp("bpftrace", "add", str(script))
        assert added.returncode == 0 and "add opens_test: done by root" in added.stdout, added.stderr
        key = "opens_test:@opens:cat"

        def count() -> int:
            got = reader().fetch(["hpc.bpftrace.data.counter"])["hpc.bpftrace.data.counter"] or {}
            return got.get(key, 0)
        # wait until the script runs and has printed at least once
        wait_for(lambda: reader().fetch(["hpc.bpftrace.script.state"])["hpc.bpftrace.script.state"]
                 .get("opens_test") == "running", 30, what="opens_test to run")
        for _ in range(3):
            subprocess.run(["cat", "/etc/hostname"], capture_output=True)
        wait_for(lambda: count() >= 1, 20, what="first openat counts")
        before = count()
        n = 200
        for _ in range(n):
            subprocess.run(["cat", "/etc/hostname"], capture_output=True)
        wait_for(lambda: count() - before >= n, 20, what=f"the counter to move by {n}")

        # histogram buckets are instances in bucket order, with labels
        def buckets():
            out = run_pcp("pminfo", "-f", "hpc.bpftrace.data.histogram").stdout
            return [line.split('"')[1] for line in out.splitlines() if '"runqlat:@runqlat_us:' in line]
        names = wait_for(lambda: len(buckets()) >= 3 and buckets(), 30, what="runqlat buckets")
        lows = [int(n.rsplit(":", 1)[1].split("-")[0]) for n in names if n.rsplit(":", 1)[1][0].isdigit()]
        assert lows == sorted(lows)
        assert '"bucket":' in run_pcp("pminfo", "-l", "hpc.bpftrace.data.histogram").stdout

        # an unauthorised user cannot change scripts; the reason is reported
        refused = hpc_pcp("bpftrace", "disable", "opens_test", user="nobody")
        assert refused.returncode != 0 and "may not change bpftrace scripts" in refused.stderr
        state = reader().fetch(["hpc.bpftrace.script.enabled"])["hpc.bpftrace.script.enabled"]
        assert state["opens_test"] == 1

        # a kprobe script on this kernel: unsupported with bpftrace's reason, agent fine
        hpc_pcp("bpftrace", "enable", "lnet")
        wait_for(lambda: reader().fetch(["hpc.bpftrace.script.state"])["hpc.bpftrace.script.state"]
                 .get("lnet") in ("unsupported", "running"), 40, what="lnet to settle")
        got = reader().fetch(["hpc.bpftrace.script.state", "hpc.bpftrace.script.error",
                              "hpc.bpftrace.agent.up"])
        if got["hpc.bpftrace.script.state"]["lnet"] == "unsupported":
            assert "kprobe" in got["hpc.bpftrace.script.error"]["lnet"]
        assert got["hpc.bpftrace.agent.up"] == 1

        removed = hpc_pcp("bpftrace", "remove", "opens_test")
        assert removed.returncode == 0, removed.stderr
        wait_for(lambda: "opens_test" not in (reader().fetch(["hpc.bpftrace.script.enabled"])
                                              ["hpc.bpftrace.script.enabled"] or {}), 20,
                 what="opens_test to be gone")
    leftover = subprocess.run(["pgrep", "-f", "bpftrace -f json"], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "bpftrace processes outlived the agent"


def test_pmstore_answers_at_once_while_bpftrace_is_slow_to_stop(tmp_path):
    """pmcd drops an agent that takes 5 s to answer: a store that restarts a script whose
    bpftrace takes 4 s to exit must still answer at once, and the restart happen after."""
    curated = tmp_path / "curated"
    curated.mkdir()
    (curated / "slow_test.bt").write_text("// name: slow_test\n// description: stand-in (test)\n"
                                          "// exports: @n counter: ticks\n"
                                          "interval:s:1 { @n = count(); print(@n); }\n")
    config = {"script_dir": str(tmp_path / "admin"), "curated_dir": str(curated), "interval": 1,
              "enabled": ["slow_test"], "bpftrace": slow_to_stop_bpftrace(tmp_path, 4)}

    def status(metric: str):
        return (reader().fetch([f"hpc.bpftrace.script.{metric}"])[f"hpc.bpftrace.script.{metric}"]
                or {}).get("slow_test")
    with installed_agent("hpcbpftrace", config):
        wait_for(lambda: status("state") == "running", 30, what="slow_test to run")
        first_pid = status("pid")
        took = []
        for control in ("enable", "disable"):
            started = time.monotonic()
            stored = run_pcp("pmstore", "-h", "local:", f"hpc.bpftrace.control.{control}", "slow_test")
            took.append(time.monotonic() - started)
            assert stored.returncode == 0, stored.stderr
            if control == "enable":      # restarted: a new bpftrace once the old one has exited
                wait_for(lambda: status("state") == "running" and status("pid") not in (0, first_pid),
                         30, what="slow_test to restart")
            else:
                wait_for(lambda: status("state") == "stopped" and status("pid") == 0, 30,
                         what="slow_test to stop")
        print(f"pmstore enable, disable took {took[0]:.3f} s, {took[1]:.3f} s")
        assert max(took) < 2.0, f"pmstore took {took} s (the stand-in takes 4 s to stop)"
        got = reader().fetch(["hpc.bpftrace.agent.up", "hpc.bpftrace.agent.failed_refreshes",
                              "hpc.bpftrace.control.result"])
        assert got["hpc.bpftrace.agent.up"] == 1 and got["hpc.bpftrace.agent.failed_refreshes"] == 0, got
        assert got["hpc.bpftrace.control.result"] == "disable slow_test: done by root", got
