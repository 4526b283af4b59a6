"""Tier 1: the refresh process (pmdas/common/worker.py): its pipe protocol, and a real child
refreshing the sample agent, killed and restarted, while the parent keeps serving."""
from __future__ import annotations

import os
import signal
import threading
import time

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pmdas.common.namespace import AgentTable
from pmdas.common.prepare import Plain
from pmdas.common.worker import PIECE, Assembler, RefreshProcess, Sender, read_message


def _ship(plains: list[Plain]) -> list[Plain]:
    read_fd, write_fd = os.pipe()
    out: list[Plain] = []

    def receive() -> None:
        assembler = Assembler()
        while (message := read_message(read_fd)) is not None:
            assert sum(len(p) if isinstance(p, dict) else 1 for _, _, p, _ in message) <= PIECE + 1
            done = assembler.feed(message)
            if done is not None:
                out.append(done)
    reader = threading.Thread(target=receive)
    reader.start()
    sender = Sender(write_fd)
    for plain in plains:
        sender.send(plain)
    os.close(write_fd)
    reader.join(30)
    os.close(read_fd)
    return out


values = st.dictionaries(st.integers(0, 2**31), st.one_of(
    st.integers(-2**63, 2**64 - 1), st.floats(allow_nan=False), st.text(max_size=20),
    st.dictionaries(st.integers(0, 2**31), st.integers(), max_size=3 * PIECE // 2)), max_size=6)


@settings(max_examples=40, deadline=None)
@given(values, st.integers(0, 2 * PIECE), st.data())
def test_pieces_reassemble_exactly(vals, jobs, data):
    ids = {f"job{i}": i for i in range(jobs)}
    labels = {i: f'{{"job":"{i}"}}' for i in range(jobs)}
    # The next refresh: some values change, some instances go, some come (sent as patches).
    moved = {}
    for pmid, value in vals.items():
        if isinstance(value, dict):
            keys = sorted(value)
            gone = set(data.draw(st.lists(st.sampled_from(keys), max_size=50))) if keys else set()
            value = {k: v for k, v in value.items() if k not in gone}
            value.update(data.draw(st.dictionaries(st.integers(0, 2**31), st.integers(), max_size=50)))
        moved[pmid] = value
    plains = [Plain(vals, {5: ids}, {5: labels}),
              Plain(moved, {5: ids}, {5: {}}),        # names unchanged, labels changed
              Plain(moved, {5: ids}, {5: {}})]        # nothing changed
    got = _ship(plains)
    assert [p.values for p in got] == [vals, moved, moved]
    assert got[0].ids == {5: ids} and got[0].labels == {5: labels}
    # unchanged names travel as "same as last time" and come out as the same object
    assert got[1].ids[5] is got[0].ids[5] and got[1].labels == {5: {}}
    assert all(got[2].values[k] is got[1].values[k]                  # big ones are patched
               for k in moved if isinstance(moved[k], dict) and len(moved[k]) > 16)
    # a Plain handed out is never changed by a later one
    assert got[0].values == vals


def test_big_patches_across_pieces():
    before = {i: i * 3 for i in range(3 * PIECE)}
    after = {i: (i * 3 if i % 3 else -i) for i in range(300, 3 * PIECE + 200)}  # changed, gone, new
    got = _ship([Plain({7: before, 8: "x"}), Plain({7: after, 8: "y"}), Plain({7: before, 8: "y"})])
    assert [p.values for p in got] == [{7: before, 8: "x"}, {7: after, 8: "y"}, {7: before, 8: "y"}]


def _sample(tmp_path, interval: float = 0.2) -> tuple[object, str]:
    from pmdas.common.config import load
    from pmdas.hpcsample.collector import SampleAgent
    values = tmp_path / "values"
    values.mkdir()
    (values / "temperature").write_text("21.5\n")
    config = tmp_path / "hpcsample.yaml"
    config.write_text(yaml.safe_dump({"directory": str(values), "interval": interval}))
    agent = SampleAgent(load("hpcsample", SampleAgent.options, str(config)))
    agent.domain = SampleAgent.domain
    return agent, str(config)


def test_child_refreshes_and_is_restarted_after_a_kill(tmp_path):
    agent, config = _sample(tmp_path)
    pmids = AgentTable.of(agent).pmids
    got: list[Plain] = []
    arrived = threading.Condition()

    def install(plain: Plain) -> None:
        with arrived:
            got.append(plain)
            arrived.notify_all()

    def wait(predicate, what: str, since: int = 0, timeout: float = 30) -> Plain:
        deadline = time.monotonic() + timeout
        with arrived:
            while True:
                hit = next((p for p in reversed(got[since:]) if predicate(p)), None)
                if hit is not None:
                    return hit
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {what}; got {[p.values for p in got[-2:]]}"
                arrived.wait(left)

    def up(plain: Plain) -> int | None:
        return plain.values.get(pmids["agent.up"])

    def temperature(plain: Plain) -> float | None:
        return next(iter(plain.values.get(pmids["file.value"], {}).values()), None)

    worker = RefreshProcess(agent, install, config, str(tmp_path / "state"), restart_pause=0.2)
    worker.start()
    try:
        assert worker.first.wait(30), "no refresh from the child"
        assert temperature(wait(lambda p: up(p) == 1, "a healthy refresh")) == 21.5
        # The refresh runs in a separate process, a child of this one.
        child = worker._proc.pid
        assert child != os.getpid() and open(f"/proc/{child}/stat").read().split()[3] == str(os.getpid())
        (tmp_path / "values" / "temperature").write_text("30.25\n")
        wait(lambda p: temperature(p) == 30.25, "the new value from the child")

        os.kill(child, signal.SIGKILL)
        down = wait(lambda p: up(p) == 0, "agent.up 0 after the kill")
        assert "exited" in down.values[pmids["agent.last_error"]]
        assert temperature(down) == 30.25, "the last values are still served"
        wait(lambda p: up(p) == 1, "a healthy refresh from the restarted child", since=got.index(down))
        assert worker.starts == 2 and worker._proc.pid != child
    finally:
        worker.stop()
    assert worker._proc.poll() is not None, "the child outlived stop()"


def test_the_agent_and_its_refresh_child_build_the_agent_alike(tmp_path):
    """Both processes build the agent with build_agent: a broken file gives the defaults and
    one sentence saying why (reported in health), a good one its settings; the domain is the
    one pmcd gave, so both number the table alike."""
    from pmdas.common.start import build_agent, defaults
    from pmdas.hpcsample.collector import SampleAgent
    settings = tmp_path / "hpcsample.yaml"
    settings.write_text("interval: -1\n")
    agent, error = build_agent(SampleAgent, str(settings), 250)
    assert "interval" in error and str(settings) in error
    assert dict(agent.config) == dict(defaults(SampleAgent)) and agent.domain == 250
    assert AgentTable.of(agent).pmids["agent.up"] >> 22 == 250
    settings.write_text("interval: 3\n")
    agent, error = build_agent(SampleAgent, str(settings), SampleAgent.domain)
    assert error == "" and agent.config.interval == 3
