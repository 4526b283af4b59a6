"""The runner with the real bpftrace 0.17 of this machine (tier 3: root, tracepoints)."""
from __future__ import annotations

import os
import re
import time

import pytest

from pmdas.hpcbpftrace.output import bucket_bounds, flatten
from pmdas.hpcbpftrace.process import Limits
from pmdas.hpcbpftrace.registry import CURATED_DIR, ScriptRegistry
from pmdas.hpcbpftrace.runner import FAILED, RESTARTING, RUNNING, STOPPED, UNSUPPORTED, Runner, RunnerError

pytestmark = [pytest.mark.services, pytest.mark.root]

HEADER = "// name: {name}\n// description: test script\n"


def write(tmp_path, name: str, body: str, exports: str = "") -> str:
    path = tmp_path / f"{name}.bt"
    path.write_text(HEADER.format(name=name) + exports + body)
    return str(path)


def wait_for(predicate, timeout: float = 30.0, runner: Runner | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runner is not None:
            runner.tick()
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture
def runner(live_bpftrace):
    runners = []

    def make(**limits) -> Runner:
        r = Runner(Limits(**limits), bpftrace=live_bpftrace)
        runners.append(r)
        return r
    yield make
    for r in runners:
        r.shutdown()
    for r in runners:
        for status in r.statuses().values():
            assert status.pid == 0, f"{status.name} left running"


def test_openat_count_moves_by_at_least_n(runner, tmp_path):
    r = runner()
    path = write(tmp_path, "opens", "tracepoint:syscalls:sys_enter_openat { @opens[comm] = count(); }\n"
                 "interval:s:1 { print(@opens); }\n")
    r.start("opens", path)
    with open("/proc/self/comm", encoding="ascii") as f:
        comm = f.read().strip()
    wait_for(lambda: "@opens" in r.values("opens"), runner=r)
    assert r.statuses()["opens"].state == RUNNING and r.statuses()["opens"].probes == 2
    before_var = r.values("opens")["@opens"]
    before = before_var.value.get(comm, 0)
    n = 200
    for i in range(n):
        with open(tmp_path / f"f{i}", "w"):
            pass
    after = wait_for(lambda: (v := r.values("opens")["@opens"]) is not before_var
                     and v.value.get(comm, 0) >= before + n and v.value[comm], runner=r)
    assert after - before >= n
    status = r.statuses()["opens"]
    assert status.lines >= 3 and status.bytes > 0 and status.pid > 0 and status.cpu_seconds >= 0


def test_hist_gives_ordered_stable_bucket_instances(runner, tmp_path):
    r = runner()
    path = write(tmp_path, "sizes", "tracepoint:syscalls:sys_enter_write /pid == " + str(os.getpid())
                 + "/ { @size = hist(args->count); @lsize = lhist(args->count, 0, 4000, 500); }\n"
                 "interval:s:1 { print(@size); print(@lsize); }\n")
    r.start("sizes", path)
    wait_for(lambda: r.statuses()["sizes"].state == RUNNING, runner=r)
    time.sleep(1.0)
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (0, 1, 3, 100, 1000, 5000, 70000):
            os.write(fd, b"x" * size)
    finally:
        os.close(fd)
    size = wait_for(lambda: (v := r.values("sizes").get("@size")) and sum(flatten(v).values()) >= 7
                    and v, runner=r)
    names = list(flatten(size))
    assert names == sorted(names, key=bucket_bounds)
    assert {"0", "1", "2-3", "64-127", "512-1023", "4096-8191", "65536-131071"} <= set(names)
    lsize = flatten(r.values("sizes")["@lsize"])
    assert list(lsize)[0] == "0-499" and ">=4000" in lsize
    assert lsize[">=4000"] >= 2


def test_exiting_script_restarts_with_growing_backoff(runner, tmp_path):
    r = runner(backoff_initial=0.5, backoff_max=4.0)
    path = write(tmp_path, "quitter", "interval:s:1 { exit(); }\n")
    r.start("quitter", path)
    delays = []

    def seen_restarts():
        s = r.statuses()["quitter"]
        m = re.search(r"restarting in ([\d.]+) s", s.error)
        if s.state == RESTARTING and m and (not delays or delays[-1][0] != s.restarts):
            delays.append((s.restarts, float(m[1])))
        return len(delays) >= 3
    wait_for(seen_restarts, timeout=60, runner=r)
    assert [d for _, d in delays[:3]] == [0.5, 1.0, 2.0]
    assert "exited with status 0" in r.statuses()["quitter"].error


def test_kprobe_script_is_unsupported_not_restarted(runner):
    r = runner(backoff_initial=0.2)
    r.start("lnet", os.path.join(CURATED_DIR, "lnet.bt"))
    status = wait_for(lambda: (s := r.statuses()["lnet"]).state == UNSUPPORTED and s, runner=r)
    assert "kprobe" in status.error and "unsupported on this kernel" in status.error
    for _ in range(10):
        r.tick()
        time.sleep(0.1)
    assert r.statuses()["lnet"].state == UNSUPPORTED and r.statuses()["lnet"].restarts == 0


def test_broken_script_fails_without_restart(runner, tmp_path):
    r = runner(backoff_initial=0.2)
    r.start("typo", write(tmp_path, "typo", "BEGIN { @x = count( }\n"))
    status = wait_for(lambda: (s := r.statuses()["typo"]).state == FAILED and s, runner=r)
    assert "syntax error" in status.error and status.restarts == 0


def test_script_cap(runner, tmp_path):
    r = runner(max_scripts=1)
    body = "interval:s:1 { @n = count(); print(@n); }\n"
    r.start("one", write(tmp_path, "one", body))
    with pytest.raises(RunnerError, match="limit 1"):
        r.start("two", write(tmp_path, "two", body))
    r.stop("one")
    assert r.statuses()["one"].state == STOPPED
    r.start("two", str(tmp_path / "two.bt"))      # room again


def test_output_rate_cap_stops_the_script(runner, tmp_path):
    r = runner(max_lines_per_sec=50, rate_window=1.0)
    r.start("chatty", write(tmp_path, "chatty", 'profile:hz:499 { printf("tick %d\\n", cpu); }\n'))
    status = wait_for(lambda: (s := r.statuses()["chatty"]).state == FAILED and s, runner=r)
    assert "exceeds the limit of 50 lines/s" in status.error and status.restarts == 0
    assert status.pid == 0


def test_cpu_budget_stops_the_script(runner, tmp_path):
    r = runner(cpu_budget=0.002, cpu_window=2.0, max_lines_per_sec=1e6, max_bytes_per_sec=1e9)
    r.start("hungry", write(tmp_path, "hungry",
                            "tracepoint:raw_syscalls:sys_enter { @m[tid, nsecs % 3000] = count(); }\n"
                            "interval:ms:20 { print(@m); }\n"))
    status = wait_for(lambda: (s := r.statuses()["hungry"]).state == FAILED and s, timeout=40, runner=r)
    assert "over its budget of 0.2%" in status.error
    assert status.cpu_seconds > 0


def test_missing_binary_is_a_clear_failure(tmp_path):
    r = Runner(bpftrace="/nonexistent/bpftrace")
    status = r.start("x", write(tmp_path, "x", "BEGIN { exit(); }\n"))
    assert status.state == FAILED and "cannot run /nonexistent/bpftrace" in status.error


def test_sync_follows_the_registry(runner, tmp_path):
    r = runner()
    registry = ScriptRegistry(str(tmp_path / "none"), str(tmp_path / "admin"))
    text = (HEADER.format(name="a") + "// exports: @n counter: ticks\n"
            "interval:s:1 { @n = count(); print(@n); }\n")
    registry.add("a", text)
    registry.add("b", text.replace("name: a", "name: b"), enable=False)
    assert r.sync(registry) == {}
    assert set(r.statuses()) == {"a"}
    wait_for(lambda: r.values("a").get("@n"), runner=r)
    registry.disable("a")
    registry.enable("b")
    r.sync(registry)
    assert set(r.statuses()) == {"b"}
