"""The runner with the real bpftrace 0.17 of this machine (tier 3: root, tracepoints)."""
from __future__ import annotations

import mmap
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from pmdas.hpcbpftrace.header import parse_header
from pmdas.hpcbpftrace.output import Variable, bucket_bounds, flatten, parse_line
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
    # @lsize is printed just after @size: wait for both prints of the same interval.
    values = wait_for(lambda: (v := r.values("sizes")).get("@size") and v.get("@lsize")
                      and min(sum(flatten(v[k]).values()) for k in ("@size", "@lsize")) >= 7 and v,
                      runner=r)
    size = values["@size"]
    names = list(flatten(size))
    assert names == sorted(names, key=bucket_bounds)
    assert {"0", "1", "2-3", "64-127", "512-1023", "4096-8191", "65536-131071"} <= set(names)
    lsize = flatten(values["@lsize"])
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


@pytest.mark.parametrize("name", ["lnet", "lustre_client"])
def test_kprobe_script_is_unsupported_not_restarted(runner, name):
    """On this kernel (no kprobes) the scripts get as far as attaching: unsupported, not broken."""
    r = runner(backoff_initial=0.2)
    r.start(name, os.path.join(CURATED_DIR, f"{name}.bt"))
    status = wait_for(lambda: (s := r.statuses()[name]).state == UNSUPPORTED and s, runner=r)
    assert "kprobe" in status.error and "unsupported on this kernel" in status.error
    for _ in range(10):
        r.tick()
        time.sleep(0.1)
    assert r.statuses()[name].state == UNSUPPORTED and r.statuses()[name].restarts == 0


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


# -- maps that would fill up: 5,000 distinct keys, then new keys must still count ------------
FLOOD = 5000        # over bpftrace's 4,096 keys per map


def start_curated(r: Runner, name: str) -> None:
    path = os.path.join(CURATED_DIR, f"{name}.bt")
    with open(path, encoding="utf-8") as f:
        r.start(name, path, parse_header(f.read()).deltas)
    wait_for(lambda: r.statuses()[name].state == RUNNING, runner=r)


def flood_then_new_keys(r: Runner, name: str, variable: str, events, key) -> None:
    """``events(prefix, n)`` makes n events with keys ``key(prefix, 1..n)``.  After FLOOD keys,
    the next print clears the map (scripts print every 5 s), so later new keys are counted.
    Of the flood, all events are counted but those that came while bpftrace printed and
    cleared the map (user space does both, one after the other: a few ms for 4,096 keys),
    or a print that found the map full says that some were lost."""
    def totals() -> dict:
        found = r.values(name).get(variable)
        return found.value if found is not None else {}
    started = time.monotonic()
    events("flood", FLOOD)
    flood_seconds = time.monotonic() - started
    time.sleep(6.0)                                  # a print (and clear) after the flood
    r.tick()
    later = [key("later", i) for i in range(1, 21)]
    events("later", 20)
    got = wait_for(lambda: (t := totals()) and all(t.get(k, 0) >= 1 for k in later) and t,
                   timeout=30, runner=r)
    flooded = sum(got.get(key("flood", i), 0) for i in range(1, FLOOD + 1))
    full = r.statuses()[name].full_map_prints
    print(f"{name}: {FLOOD} keys in {flood_seconds:.1f} s, {flooded} counted by key, "
          f"{full} full print(s); 20 of 20 later keys counted")
    assert flooded >= 0.98 * FLOOD or (flooded < FLOOD and full >= 1)
    assert r.statuses()[name].state == RUNNING


def test_procexec_counts_new_names_after_5000_distinct_ones(runner, tmp_path):
    r = runner(max_keys=2 * FLOOD)
    start_curated(r, "procexec")
    for prefix, n in (("flood", FLOOD), ("later", 20)):
        for i in range(1, n + 1):
            os.symlink("/bin/true", tmp_path / f"{prefix}{i}")

    def execs(prefix: str, n: int) -> None:      # comm is the name the program was run by
        subprocess.run(["sh", "-c", f"i=1; while [ $i -le {n} ]; do ./{prefix}$i; i=$((i+1)); done"],
                       cwd=tmp_path, check=True, timeout=300)
    flood_then_new_keys(r, "procexec", "@execs", execs, lambda prefix, i: f"{prefix}{i}")


def test_tcpretrans_counts_new_addresses_after_5000_distinct_ones(runner):
    r = runner(max_keys=2 * FLOOD)
    start_curated(r, "tcpretrans")
    with socket.socket() as listener:             # a free port nobody listens on
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]

    def address(prefix: str, i: int) -> str:      # 127.0.0.0/8 is all local
        return f"127.{10 if prefix == 'flood' else 20}.{i // 256}.{i % 256}"

    def resets(prefix: str, n: int) -> None:
        """Connections refused from n source addresses: a reset is sent to each."""
        for i in range(1, n + 1):
            with socket.socket() as s:
                s.bind((address(prefix, i), 0))
                try:
                    s.connect(("127.0.0.1", port))
                except ConnectionRefusedError:
                    pass
    flood_then_new_keys(r, "tcpretrans", "@tcp_resets_sent", resets, address)


def test_biolatency_start_maps_only_hold_recent_requests(live_bpftrace, tmp_path):
    """biolatency keeps start times by (device, sector) in two maps that take new requests in
    turn and are cleared while idle, so entries left behind by requests that never complete at
    their sector cannot pile up.  Run at 1/64 of the time scale (quarters of 2^29 ns instead of
    2^35) with the completion probe removed (every request leaks): a printed map only ever holds
    start times from one active period (two quarters), however long the script runs."""
    with open(os.path.join(CURATED_DIR, "biolatency.bt"), encoding="utf-8") as f:
        text = f.read()
    scaled = text
    for old, new, count in ((">> 35", ">> 29", 2), ("0x7ffffffff", "0x1fffffff", 1),
                            ("< 30000000000", "< 400000000", 1), ("interval:s:5", "interval:ms:50", 1)):
        assert scaled.count(old) == count, old
        scaled = scaled.replace(old, new)
    scaled = re.sub(r"tracepoint:block:block_rq_complete\n\{.*?\n\}\n", "", scaled, flags=re.S)
    prints = "\tprint(@biolatency_us);\n\tprint(@bio_bytes);\n"
    assert prints in scaled
    scaled = scaled.replace(prints, "\tprint(@bio_start0);\n\tprint(@bio_start1);\n")
    path = tmp_path / "biolatency_scaled.bt"
    path.write_text(scaled)
    quarter = 2 ** 29
    output = tmp_path / "output.jsonl"            # a file: a pipe left unread would stall bpftrace
    with open(output, "wb") as sink:
        proc = subprocess.Popen([live_bpftrace, "-f", "json", str(path)], stdout=sink,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: b"attached_probes" in output.read_bytes())
        deadline = time.monotonic() + 4 * 4 * quarter / 1e9        # 4 full cycles of 4 quarters
        block = mmap.mmap(-1, 4096)                              # aligned, as O_DIRECT wants
        block.write(b"x" * 4096)
        fd = os.open(tmp_path / "io", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
        try:       # one block request per write, each at a new sector: every one leaks
            while time.monotonic() < deadline:
                os.write(fd, block)
                time.sleep(0.01)      # ~100 a second: small prints that bpftrace keeps up with
        finally:
            os.close(fd)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    spreads, largest = [], 0
    for raw in output.read_bytes().splitlines():
        event = parse_line(raw)
        if isinstance(event, Variable) and event.name in ("@bio_start0", "@bio_start1") and event.value:
            starts = list(event.value.values())
            spreads.append(max(starts) - min(starts))
            largest = max(largest, len(starts))
    assert len(spreads) > 20, "too few prints with block I/O in them"
    print(f"biolatency (scaled): {len(spreads)} prints, at most {largest} entries, "
          f"widest spread {max(spreads) / quarter:.2f} quarters")
    assert max(spreads) <= 2 * quarter + 0.1e9
