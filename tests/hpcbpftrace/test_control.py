"""Live management through stores: checked and recorded on pmcd's thread, applied on the agent's.

A stand-in bpftrace takes 3 s to exit after SIGINT.  A store must still return at once
(pmcd drops an agent that takes 5 s to answer) and a refresh must not wait for it either;
the change shows in script.state / pid / control.result shortly after.
"""
from __future__ import annotations

import time

import pytest

from pmdas.common.agent import StoreRefused
from pmdas.common.config import COMMON_OPTIONS, Config, validate
from pmdas.common.refresh import Refresher
from pmdas.hpcbpftrace.collector import BpftraceAgent

from .conftest import slow_to_stop_bpftrace

STOP_DELAY = 3.0
QUICK = 0.5           # a store or a refresh takes at most this long

SCRIPT = """// name: {name}
// description: stand-in script ({version})
// exports: @n counter: ticks
interval:s:1 {{ @n = count(); print(@n); }}
"""


@pytest.fixture
def agent(tmp_path):
    curated = tmp_path / "curated"
    curated.mkdir()
    (curated / "slow.bt").write_text(SCRIPT.format(name="slow", version="curated"))
    options = {**COMMON_OPTIONS, **BpftraceAgent.options}
    agent = BpftraceAgent(Config(validate({"script_dir": str(tmp_path / "admin"), "curated_dir": str(curated),
                                           "enabled": ["slow"], "max_scripts": 2,
                                           "bpftrace": slow_to_stop_bpftrace(tmp_path, STOP_DELAY)},
                                          options, "test"), None))
    yield agent
    agent.close()
    assert all(s.pid == 0 for s in agent.runner.statuses().values()), "stand-ins left running"


def published_until(refresher: Refresher, predicate, timeout: float = 30.0):
    """Refresh until ``predicate(values)`` holds; every refresh must itself be quick."""
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        published = refresher.refresh_once()
        took = time.monotonic() - started
        assert took < QUICK, f"a refresh took {took:.2f} s"
        assert published.values["hpc.bpftrace.agent.up"] == 1, published.health.last_error
        if predicate(published.values):
            return published.values
        assert time.monotonic() < deadline, f"not reached in {timeout} s: {published.values}"
        time.sleep(0.1)


def script(values, metric: str, name: str):
    return (values.get(f"hpc.bpftrace.script.{metric}") or {}).get(name)


def timed_store(agent, control: str, value: str, user: str = "root") -> float:
    started = time.monotonic()
    agent.store(f"control.{control}", None, value, user)
    return time.monotonic() - started


def test_stores_return_at_once_while_bpftrace_is_slow_to_stop(agent):
    refresher = Refresher(agent)
    values = published_until(refresher, lambda v: script(v, "state", "slow") == "running")
    first_pid = script(values, "pid", "slow")

    # enabling a running script again restarts it: the stop takes STOP_DELAY, the store does not
    took = timed_store(agent, "enable", "slow")
    assert took < QUICK, f"store took {took:.2f} s"
    values = published_until(refresher, lambda v: True)      # while bpftrace is still stopping
    assert values["hpc.bpftrace.control.result"] == "enable slow: requested by root"
    values = published_until(refresher, lambda v: script(v, "state", "slow") == "running"
                             and script(v, "pid", "slow") not in (0, first_pid))
    assert values["hpc.bpftrace.control.result"] == "enable slow: done by root"

    # an admin script, replaced while it runs: restarted with its new text
    took = timed_store(agent, "add", SCRIPT.format(name="mine", version="v1"))
    assert took < QUICK
    values = published_until(refresher, lambda v: script(v, "state", "mine") == "running")
    mine_pid = script(values, "pid", "mine")
    took = timed_store(agent, "add", SCRIPT.format(name="mine", version="v2"))
    assert took < QUICK, f"store took {took:.2f} s"
    published_until(refresher, lambda v: script(v, "state", "mine") == "running"
                    and script(v, "pid", "mine") not in (0, mine_pid))

    # disabling and removing: quick stores, both stopped shortly after
    assert timed_store(agent, "disable", "slow") < QUICK
    assert timed_store(agent, "remove", "mine") < QUICK
    values = published_until(refresher, lambda v: script(v, "state", "slow") == "stopped"
                             and "mine" not in v["hpc.bpftrace.script.enabled"])
    assert script(values, "enabled", "slow") == 0 and script(values, "pid", "slow") == 0


def test_bad_requests_are_still_refused_on_the_spot(agent):
    with pytest.raises(StoreRefused) as refused:
        agent.store("control.disable", None, "slow", "nobody")
    assert refused.value.permission and "may not change bpftrace scripts" in str(refused.value)
    with pytest.raises(StoreRefused) as refused:
        agent.store("control.enable", None, "missing", "root")
    assert not refused.value.permission and "no bpftrace script named 'missing'" in str(refused.value)
    with pytest.raises(StoreRefused) as refused:
        agent.store("control.add", None, "BEGIN { exit(); }", "root")
    assert not refused.value.permission and "name" in str(refused.value)
    with pytest.raises(StoreRefused) as refused:
        agent.store("control.remove", None, "slow", "root")
    assert not refused.value.permission and "curated" in str(refused.value)


def test_a_start_over_the_script_cap_is_reported_on_the_script(agent, tmp_path):
    refresher = Refresher(agent)
    published_until(refresher, lambda v: script(v, "state", "slow") == "running")
    for name in ("two", "three"):
        agent.store("control.add", None, SCRIPT.format(name=name, version="v1"), "root")

    def one_refused(v):      # running, and stopped with a reason (not merely not started yet)
        states = {n: script(v, "state", n) for n in ("two", "three")}
        return (sorted(states.values()) == ["running", "stopped"]
                and all(script(v, "error", n) for n, state in states.items() if state == "stopped")
                and states)
    values = published_until(refresher, one_refused)
    refused = next(n for n, state in one_refused(values).items() if state == "stopped")
    running = ({"two", "three"} - {refused}).pop()
    assert script(values, "error", refused).endswith("2 scripts are already running (limit 2)")
    assert f"cannot start bpftrace script {refused}" in values["hpc.bpftrace.control.result"]
    agent.store("control.disable", None, running, "root")     # room again: the other starts by itself
    values = published_until(refresher, lambda v: script(v, "state", refused) == "running")
    assert script(values, "error", refused) == ""
