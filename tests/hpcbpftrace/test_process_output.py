"""A script's output as its reader thread takes it: map prints kept undecoded until asked for."""
from __future__ import annotations

import json

from pmdas.hpcbpftrace.output import Text, Variable, printed_variable
from pmdas.hpcbpftrace.process import Limits, ScriptProcess

from .conftest import fixture_text


def line(kind: str, data) -> bytes:
    return (json.dumps({"type": kind, "data": data}) + "\n").encode()


def process() -> ScriptProcess:
    return ScriptProcess("t", "/nonexistent/t.bt", Limits())    # never started: lines fed by hand


def test_printed_variable_reads_only_map_prints():
    assert printed_variable(line("map", {"@opens": {"a": 1}})) == "@opens"
    assert printed_variable(line("hist", {"@h_us": []})) == "@h_us"
    assert printed_variable(line("stats", {"@a": 1})) == "@a"
    assert printed_variable(line("printf", '{"type": "map", "data": {"@x": 1}}')) is None
    assert printed_variable(b'{"type":"map","data":{"@x":1}}\n') is None     # not bpftrace's layout
    assert printed_variable(b"") is None


def test_only_the_latest_print_of_each_variable_counts():
    p = process()
    for n in range(3):
        p._take_line(None, line("map", {"@m": {"a": n, "b": 2 * n}}))
    p._take_line(None, line("map", {"@x": 7}))
    values = p.values()
    assert values["@m"].value == {"a": 2, "b": 4} and values["@x"].value == 7
    assert p.values()["@m"] is values["@m"]                   # decoded once, kept
    assert p.status().lines == 4 and p.status().unparsed_lines == 0


def test_a_bad_latest_print_keeps_the_earlier_value_and_is_counted():
    p = process()
    p._take_line(None, line("map", {"@m": {"a": 1}}))
    assert p.values()["@m"].value == {"a": 1}
    p._take_line(None, b'{"type": "map", "data": {"@m": {"a": \n')
    assert p.values()["@m"].value == {"a": 1}
    assert p.status().unparsed_lines == 1


def test_text_and_status_lines_are_handled_at_once():
    p = process()
    p._take_line(None, line("attached_probes", {"probes": 3}))
    p._take_line(None, line("printf", "hello\n"))
    p._take_line(None, line("lost_events", {"events": 5}))
    p._take_line(None, b"not json\n")
    p._take_line(None, line("map", {"@m": 1})[:-8], complete=False)   # the head of an over-long line
    status = p.status()
    assert status.probes == 3 and status.lost_events == 5 and status.unparsed_lines == 2
    assert list(p.texts) == [Text("printf", "hello\n")]
    assert p.values() == {}


def test_fixture_scripts_give_the_same_values_as_parsing_every_line():
    from pmdas.hpcbpftrace.output import parse_line
    for name in ("maps_and_hists.jsonl", "script_biolatency.jsonl", "script_runqlat.jsonl",
                 "edge_buckets.jsonl", "text_events.jsonl"):
        p, eager = process(), {}
        for raw in fixture_text(name).encode().splitlines(keepends=True):
            p._take_line(None, raw)
            event = parse_line(raw)
            if isinstance(event, Variable):
                eager[event.name] = event
        assert p.values() == eager, name


def test_every_print_of_a_delta_variable_is_added_up():
    """procexec prints @execs and clears it: each print holds the counts since the last one.
    The reader adds them all up, the exit dump included, whatever the refreshes read."""
    p = process()
    p.declare(frozenset({"@execs"}))
    p._take_line(None, line("map", {"@execs": {"bash": 2, "cat": 1}}))
    p._take_line(None, line("map", {"@execs": {"cat": 3}}))
    p._take_line(None, line("map", {"@other": {"cat": 3}}))           # not a delta: latest print
    p._take_line(None, line("map", {"@other": {"cat": 4}}))
    assert p.values()["@execs"].value == {"bash": 2, "cat": 4}
    assert p.values()["@other"].value == {"cat": 4}
    p._take_line(None, b"\n")
    p._take_line(None, b"\n")
    p._take_line(None, line("map", {"@execs": {"ls": 1}}))            # the exit dump
    assert p.values()["@execs"].value == {"bash": 2, "cat": 4, "ls": 1}
    p._take_line(None, line("map", {"@execs": {"ls": "x"}}))          # not a count: not added
    assert p.values()["@execs"].value == {"bash": 2, "cat": 4, "ls": 1}
    assert p.status().unparsed_lines == 1
    p.declare(frozenset({"@execs"}))                                  # a restart: totals carry on
    p._take_line(None, line("map", {"@execs": {"ls": 1}}))
    assert p.values()["@execs"].value["ls"] == 2
    p.declare(frozenset())                                            # no longer a delta
    assert "@execs" not in p.values()


def test_prints_of_full_maps_are_counted(monkeypatch):
    monkeypatch.setenv("BPFTRACE_MAP_KEYS_MAX", "3")
    p = process()
    p.declare(frozenset({"@execs"}))
    for _ in range(2):          # a delta: every print is checked
        p._take_line(None, line("map", {"@execs": {"a": 1, "b": 1, "c": 1}}))
    p._take_line(None, line("map", {"@execs": {"a": 1, "b": 1}}))
    assert p.status().full_map_prints == 2
    for _ in range(2):          # not a delta: checked when read, the latest print only
        p._take_line(None, line("map", {"@m": {"a": 1, "b": 1, "c": 1}}))
    p.values()
    assert p.status().full_map_prints == 3
