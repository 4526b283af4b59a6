"""DTN run names and run files: whoever runs dtn-transfer writes the runs directory hpcdtn
reads (as root on many nodes).  Hostile run names, hostile directory names and hostile
state files go through the real agent in the real pmcd."""
from __future__ import annotations

import json
import os
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pmdas.hpcdtn.parsers import parse_run_state
from tests.dtn.test_agent import _state, agent
from tests.harness.pcp import installed_agent, reader, run_pcp, wait_for

from .actions import run_rule_actions
from .ledger import served, wait_served, watch
from .payloads import hostile_names, surrogates

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]

ALIVE = {"pid": os.getpid(), "host": socket.gethostname()}   # a running run stays exported


def _run(directory: str, dirname: str | bytes, doc: dict | str) -> None:
    path = os.path.join(os.fsencode(directory), os.fsencode(dirname))
    os.mkdir(path)
    text = doc if isinstance(doc, str) else json.dumps(doc)     # ensure_ascii: surrogates escaped
    with open(os.path.join(path, b"state.json"), "w", encoding="utf-8") as f:
        f.write(text)


def _running(run: str) -> dict:
    return {**_state(run, "running", ALIVE["pid"], ALIVE["host"])}


# state files a user can plant; each is skipped and said, the other runs still served
def _plant_bad_files(runs: str, canary_dir: str) -> int:
    bad = {"zero": ("symlink", "/dev/zero"), "passwd": ("symlink", "/etc/shadow"),
           "fifo": ("fifo", None), "huge": ("sparse", 64 << 20), "latin1": ("bytes", b'{"run": "caf\xe9"}'),
           "dir": ("dir", None), "escape": ("symlink", f"{canary_dir}/ESCAPED-dtn-symlink")}
    for name, (kind, what) in bad.items():
        os.mkdir(os.path.join(runs, name))
        path = os.path.join(runs, name, "state.json")
        if kind == "symlink":
            os.symlink(what, path)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "sparse":
            with open(path, "wb") as f:
                f.truncate(what)
        elif kind == "bytes":
            with open(path, "wb") as f:
                f.write(what)
        else:
            os.mkdir(path)
    return len(bad)


# documents that are valid JSON with values no run can have: each must cost only its own run
NUMERIC = {
    "inf-bytes": '{"version": 1, "run": "inf-bytes", "state": "completed", "bytes": {"total": Infinity}}',
    "nan-files": '{"version": 1, "run": "nan-files", "state": "completed", "files": {"done": NaN}}',
    "huge-pid": json.dumps({"version": 1, "run": "huge-pid", "state": "running", "pid": 2**70,
                            "host": socket.gethostname()}),
    "deep": '{"version": 1, "run": "deep", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "minus": json.dumps({**_running("minus"), "bytes": {"total": -5, "done": 2**80, "moved": 1e308}}),
}


def test_hostile_runs_through_pmcd(abuse_dir, tmp_path):
    runs = os.path.join(abuse_dir, "runs")
    os.mkdir(runs)
    _run(runs, "good", _running("good"))
    with installed_agent("hpcdtn", {"runs_directory": runs, "interval": 1, "recent_runs": 50}), \
            watch("dtn runs and files", ["hpcdtn"], [abuse_dir]) as case:
        names = hostile_names(case.canary, "run") + surrogates("run")
        for k, name in enumerate(names):
            _run(runs, f"r{k}", _running(name))
        dirnames = [d for d in hostile_names(case.canary, "dir") if "/" not in d and "\0" not in d
                    and len(os.fsencode(d)) < 255] + [b"bad\xff\xfeutf8", "...", ".. ", "-rf"]
        for d in dirnames:
            _run(runs, d, _running(f"named-by-dir-{len(os.fsencode(d))}-{dirnames.index(d)}"))
        planted = _plant_bad_files(runs, case.canary.directory)
        for name, text in NUMERIC.items():
            _run(runs, name, text)
        case.written()
        case.tried(len(names) + len(dirnames) + planted + len(NUMERIC))
        # numeric oddities cost only the value: those runs are served, 'deep' is no run state
        expected = len(names) + len(dirnames) + 1 + len(NUMERIC) - 1

        def everything():
            got = reader().fetch(["hpc.dtn.run.state", "hpc.dtn.agent.up", "hpc.dtn.runs.unreadable"])
            return got if len(got["hpc.dtn.run.state"] or {}) >= expected else None
        got = wait_served(everything, "hpc.dtn", "the hostile runs to be served")
        states = served("hpc.dtn.run.state")
        assert got["hpc.dtn.agent.up"] == 1 and len(states) == expected
        assert states["good"] == '"running"' and states["huge-pid"] == '"interrupted"'
        assert {"inf-bytes", "nan-files", "minus"} <= set(states)
        for name in states:
            assert name.isprintable() and name.encode("utf-8"), repr(name)
        assert len({n.split(" ")[0] for n in states}) == len(states), "PCP's first-word rule broken"
        assert got["hpc.dtn.runs.unreadable"] == planted + 1
        case.tried(run_rule_actions("dtn", list(states), str(tmp_path)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                        lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.sampled_from(["version", "run", "state", "pid", "host",
                                                           "files", "bytes", "pairs", "total", "done",
                                                           "throughput", "instant", "started"]),
                                          inner, max_size=6), max_leaves=30))
def test_any_json_costs_only_its_own_run(doc, tmp_path_factory):
    """A run state of any shape (wrong types, NaN, infinities, huge numbers) is that run's
    problem: the agent stays up and the good run is still served."""
    from .ledger import LEDGER, Figures
    directory = tmp_path_factory.mktemp("runs")
    _run(str(directory), "good", _state("good", "completed", 1, "elsewhere"))
    _run(str(directory), "fuzz", json.dumps(doc, allow_nan=True) if not isinstance(doc, str) else doc)
    parse_run_state(json.dumps(doc))       # pure parser: never raises
    values = agent(directory).refresh_once().values
    LEDGER.add("dtn runs and files", Figures(inputs=1))
    assert values["hpc.dtn.agent.up"] == 1, values["hpc.dtn.agent.last_error"]
    assert values["hpc.dtn.run.state"].get("good") == "completed"


def test_the_reader_keeps_non_ascii_instances_apart(abuse_dir):
    """Debian 12's PCP Python binding decodes instance names with ('ascii', 'ignore'): 'runé'
    and 'run' came back as one key and one value was silently lost (hpc-pcp status, every
    reader).  Names are served in printable ASCII with Python escapes (pmdas/common/names.py),
    so every client keeps them apart; the label raw_name keeps the text."""
    runs = os.path.join(abuse_dir, "runs")
    os.mkdir(runs)
    for k, run in enumerate(["run", "runé", "run😀"]):
        _run(runs, f"r{k}", _running(run))
    with installed_agent("hpcdtn", {"runs_directory": runs, "interval": 1}), \
            watch("dtn runs and files", ["hpcdtn"], [abuse_dir]) as case:
        case.tried(3)
        wait_for(lambda: len(served("hpc.dtn.run.state")) == 3, 30, what="three runs in pminfo")
        expected = {"run", "run\\xe9", "run\\U0001f600"}
        assert set(reader().fetch(["hpc.dtn.run.state"])["hpc.dtn.run.state"]) == expected
        assert set(served("hpc.dtn.run.state")) == expected
        labels = run_pcp("pminfo", "-l", "hpc.dtn.run.state").stdout
        assert '"raw_name":"run\\u00e9"' in labels or '"raw_name":"runé"' in labels, labels
