"""Alarm state: pmie's user writes the directory hpcalarm reads (as root on many nodes).
Hostile instance names go in through the real ``hpc-pcp alarm fire`` action as pmie runs it;
hostile files are planted beside them; the real agent in the real pmcd reads them all."""
from __future__ import annotations

import json
import os
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmdas.common.names import renamed
from pmdas.hpcalarm.state import parse_state
from tests.harness.pcp import installed_agent, reader

from .actions import run_rule_actions
from .ledger import LEDGER, Figures, served, wait_served, watch
from .payloads import hostile_names, surrogates

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]

ALARM = {"firing": True, "since": 1.0, "last_change": 1.0, "last_confirmed": 1.0, "cleared": None,
         "value": "1", "message": "m", "firings": 1}


def _doc(rule: str, host: str, **alarm) -> str:
    return json.dumps({"rule": rule, "host": host, "severity": "warning",
                       "alarms": {"i": {**ALARM, **alarm}}}, allow_nan=True)


def _plant(directory: str, canary_dir: str) -> tuple[int, int]:
    """Hostile state files: (how many, how many must be refused as unusable)."""
    refused = {"zero.json": "/dev/zero", "shadow.json": "/etc/shadow",
               "escape.json": f"{canary_dir}/ESCAPED-alarm-symlink"}
    for name, target in refused.items():
        os.symlink(target, os.path.join(directory, name))
    os.mkfifo(os.path.join(directory, "fifo.json"))
    with open(os.path.join(directory, "huge.json"), "wb") as f:
        f.truncate(64 << 20)
    with open(os.path.join(directory, "latin1.json"), "wb") as f:
        f.write(b'{"rule": "caf\xe9"}')
    with open(os.path.join(directory, "deep.json"), "w") as f:
        f.write('{"rule": "r", "host": "h", "alarms": ' + "[" * 100_000 + "]" * 100_000 + "}")
    kept = {  # valid files with odd values: the alarm is dropped or shown, nothing else is lost
        "inf.json": _doc("hpc.inf", "n1", firings=float("inf")),
        "nan.json": _doc("hpc.nan", "n1", since=float("nan")),
        "big.json": _doc("hpc.big", "n1", firings=2**70, since=1e308),
        "rule.json": _doc("evil\nHPCALARM\nrule", "host\x00\u2028$(id)", message="\x1b[2J" * 1000),
    }
    for name, text in kept.items():
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)
    return len(refused) + 4 + len(kept), len(refused) + 4


def test_hostile_alarm_state_through_pmcd(abuse_dir, tmp_path):
    alarms = os.path.join(abuse_dir, "alarms")
    os.makedirs(os.path.join(alarms, "firing"))
    with open(os.path.join(alarms, "hpc.good@n1.json"), "w") as f:
        f.write(_doc("hpc.good", "n1"))
    hpc_pcp = (os.path.join(os.path.dirname(sys.executable), "hpc-pcp"), "alarm")
    with installed_agent("hpcalarm", {"directory": alarms, "interval": 1}), \
            watch("alarm state", ["hpcalarm"], [abuse_dir], may_write=[alarms]) as case:
        raw = hostile_names(case.canary, "inst") + surrogates("inst")
        changes = renamed(raw)
        shown = [changes.get(n, n) for n in raw]          # as pmie receives them from an agent
        planted, refused = _plant(alarms, case.canary.directory)
        case.tried(len(raw) + planted)
        case.tried(run_rule_actions("dtn", shown, str(tmp_path), command=hpc_pcp, state=alarms,
                                    clear=False))

        rules = case.inputs - len(raw) - planted       # actions run: one fire per dtn rule

        def everything():      # a refresh after the last fire action (each is a separate write)
            got = reader().fetch(["hpc.alarm.agent.up", "hpc.alarm.state.unusable"])
            firing = served("hpc.alarm.firing")
            done = sum(n.startswith("dtn.") for n in firing) == rules * len(shown)
            return (got, firing) if got["hpc.alarm.state.unusable"] == refused and done else None
        got, firing = wait_served(everything, "hpc.alarm", "every hostile alarm and planted file read")
        assert got["hpc.alarm.agent.up"] == 1
        assert firing["hpc.good:n1:i"] == "1"
        assert len({n.split(" ")[0] for n in firing}) == len(firing), "PCP's first-word rule broken"
        assert all(n.isprintable() for n in firing)
        assert {"hpc.nan:n1:i", "hpc.big:n1:i"} <= set(firing) and "hpc.inf:n1:i" not in firing


@settings(max_examples=60, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["rule", "host", "alarms", "i", "firing", "since",
                                                       "last_change", "last_confirmed", "firings",
                                                       "cleared", "value"]), inner, max_size=6),
                    max_leaves=25))
def test_any_json_is_a_state_or_a_value_error(doc):
    """A state file of any shape parses or is refused with ValueError (one file's problem),
    never another exception that would fail every alarm."""
    LEDGER.add("alarm state", Figures(inputs=1))
    try:
        parse_state(json.dumps(doc, allow_nan=True))
    except ValueError:
        pass
