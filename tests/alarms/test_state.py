"""The alarm state store and the fire/clear command's input parsing."""
from __future__ import annotations

import json
import os

from hypothesis import given
from hypothesis import strategies as st

from hpc_pcp.cli_alarm import parse_bindings
from pmdas.hpcalarm.state import (
    AlarmStore,
    RuleHost,
    apply_fire,
    format_state,
    parse_state,
)


def test_fire_then_partial_clear_then_clear(tmp_path):
    store = AlarmStore(str(tmp_path))
    fired = store.fire("ib.symbol_errors", "warning",
                       {"n1": {"mlx5_0:1": ("3", "m1"), "mlx5_0:2": ("5", "m2")}}, now=100)
    assert sorted((c.instance, c.fired) for c in fired) == [("mlx5_0:1", True), ("mlx5_0:2", True)]
    assert os.path.exists(tmp_path / "firing" / "ib.symbol_errors@n1")
    # Next evaluation: only port 1 is still true → port 2 clears, port 1 is confirmed.
    moved = store.fire("ib.symbol_errors", "warning", {"n1": {"mlx5_0:1": ("4", "m1")}}, now=110)
    assert [(c.instance, c.fired) for c in moved] == [("mlx5_0:2", False)]
    state = store.load("ib.symbol_errors", "n1")
    assert state.alarms["mlx5_0:1"].since == 100 and state.alarms["mlx5_0:1"].last_confirmed == 110
    assert state.alarms["mlx5_0:1"].value == "4"
    assert state.alarms["mlx5_0:2"].cleared == 110 and not state.alarms["mlx5_0:2"].firing
    moved = store.clear("ib.symbol_errors", ["n1"], now=120)
    assert [(c.instance, c.fired) for c in moved] == [("mlx5_0:1", False)]
    assert not os.path.exists(tmp_path / "firing" / "ib.symbol_errors@n1")
    # Firing again counts a second episode and starts a new 'since'.
    store.fire("ib.symbol_errors", "warning", {"n1": {"mlx5_0:1": ("9", "m")}}, now=130)
    again = store.load("ib.symbol_errors", "n1").alarms["mlx5_0:1"]
    assert again.firings == 2 and again.since == 130 and again.cleared is None


def test_hosts_are_independent_and_clear_of_unknown_host_is_noop(tmp_path):
    store = AlarmStore(str(tmp_path))
    store.fire("r.x", "critical", {"a": {"": ("1", "")}, "b": {"": ("1", "")}}, now=1)
    assert store.clear("r.x", ["a", "never-fired"], now=2)[0].host == "a"
    assert store.load("r.x", "b").alarms[""].firing
    assert not os.path.exists(tmp_path / "r.x@never-fired.json")
    assert store.load("r.x", "a").severity == "critical"  # clear keeps the rule's severity


def test_damaged_file_is_reported_not_fatal(tmp_path):
    store = AlarmStore(str(tmp_path))
    store.fire("r.ok", "info", {"h": {"i": ("1", "")}}, now=1)
    (tmp_path / "r.bad@h.json").write_text("{not json")
    states, problems = store.read_all()
    assert [s.rule for s in states] == ["r.ok"]
    assert len(problems) == 1 and problems[0].startswith("r.bad@h.json")
    # A writer replaces the damaged file instead of failing.
    store.fire("r.bad", "info", {"h": {"i": ("1", "")}}, now=2)
    assert store.load("r.bad", "h").alarms["i"].firing


def test_one_bad_alarm_entry_hides_nothing_else():
    text = json.dumps({"rule": "r", "host": "h", "severity": "loud", "alarms": {
        "good": {"firing": True, "since": 1, "last_change": 1, "last_confirmed": 2, "cleared": None},
        "bad": {"firing": True, "since": "yesterday"}}})
    state = parse_state(text)
    assert list(state.alarms) == ["good"] and state.severity == "warning"


def test_old_cleared_alarms_are_forgotten():
    state = RuleHost("r", "h", "info")
    state, _ = apply_fire(state, {"i": ("1", "")}, now=0)
    state, _ = apply_fire(state, {}, now=10)
    kept, _ = apply_fire(state, {}, now=10 + 50, keep_cleared=100)
    gone, _ = apply_fire(state, {}, now=10 + 500, keep_cleared=100)
    assert "i" in kept.alarms and "i" not in gone.alarms


def test_parse_bindings_from_pmie_heredoc():
    text = "vm\tmlx5_0:1\t3.5\nvm\t<%i undefined>\t1\n\n\tnohost\t1\nvm2\tjob 42\t7\n"
    assert parse_bindings(text) == {"vm": {"mlx5_0:1": "3.5", "": "1"}, "vm2": {"job 42": "7"}}


names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=20)


@given(st.dictionaries(names, st.tuples(names, names), max_size=6),
       st.dictionaries(names, st.tuples(names, names), max_size=6))
def test_apply_fire_round_trips_and_tracks_exactly_the_true_set(first, second):
    state, _ = apply_fire(RuleHost("r.x", "h", "warning"), first, now=1)
    state, changes = apply_fire(parse_state(format_state(state)), second, now=2)
    firing = {k for k, a in state.alarms.items() if a.firing}
    assert firing == set(second)
    assert {c.instance for c in changes if c.fired} == set(second) - set(first)
    assert {c.instance for c in changes if not c.fired} == set(first) - set(second)
    assert parse_state(format_state(state)) == state


@given(st.text(max_size=300))
def test_parse_state_never_crashes_on_garbage(text):
    try:
        parse_state(text)
    except ValueError:
        pass


def test_hostile_state_files_are_problems_not_hangs(tmp_path):
    """pmie's user writes the directory; the agent reading it may be root."""
    store = AlarmStore(str(tmp_path))
    store.fire("ib.symbol_errors", "warning", {"n1": {"mlx5_0:1": ("3", "m")}}, now=100)
    os.symlink("/dev/zero", tmp_path / "ib.link_down@n1.json")
    os.mkfifo(tmp_path / "ib.port_down@n1.json")
    (tmp_path / "job.stuck@n1.json").write_bytes(b'{"rule": "job.stuck", "host": "\xff"}')
    states, problems = store.read_all()
    assert [s.rule for s in states] == ["ib.symbol_errors"]
    text = "\n".join(problems)
    assert "ib.link_down@n1.json is a symbolic link; not followed" in text
    assert "ib.port_down@n1.json is not a regular file" in text
    assert "job.stuck@n1.json is not UTF-8 text" in text
    # A fire over a symlinked state file does not follow it: the state is rebuilt in its place.
    store.fire("ib.link_down", "warning", {"n1": {"p": ("1", "m")}}, now=100)
    assert not os.path.islink(tmp_path / "ib.link_down@n1.json")
    assert os.path.exists("/dev/zero")


def test_state_is_written_durably(tmp_path, monkeypatch):
    """Each save fsyncs the new file before the rename and the directory after it."""
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", "directory" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"))
        real_fsync(fd)

    def rename(source, target):
        calls.append(("replace", target))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", rename)
    AlarmStore(str(tmp_path)).fire("ib.symbol_errors", "warning", {"n1": {"p": ("3", "m")}}, now=100)
    assert calls == [("fsync", "file"), ("replace", str(tmp_path / "ib.symbol_errors@n1.json")),
                     ("fsync", "directory")]
