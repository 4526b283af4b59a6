"""node.d_state through real pmie over an archive of proc.runq.blocked: a brief D state does
not fire, one held for 5 evaluations does (naming the host and the current count), and it
clears at the first sample without.  pmie replaying an archive prints each action with its
sample time instead of running it, which is what is read here."""
from __future__ import annotations

import re
import subprocess
from dataclasses import replace

import cpmapi as c_api
from pcp import pmi

from hpc_pcp.alarm import configure, load_catalogue, render
from hpc_pcp.dashboards.base_metrics import BASE_METRICS
from tests.harness.pcp import pcp_env

START = 1796083200      # 2026-12-01 00:00:00 UTC
STEP = 10
#          brief D state    held for 7 samples      gone
BLOCKED = [0, 3, 3, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 0, 0, 0]


def archive(directory: str) -> str:
    base = f"{directory}/dstate"
    log = pmi.pmiLogImport(base)
    log.pmiSetHostname("node07")
    log.pmiSetTimezone("UTC")
    m = BASE_METRICS["proc.runq.blocked"]
    log.pmiAddMetric("proc.runq.blocked", log.pmiID(*m.pmid), c_api.PM_TYPE_32, c_api.PM_INDOM_NULL,
                     c_api.PM_SEM_INSTANT, log.pmiUnits(*m.units.as_tuple()))
    for i, value in enumerate(BLOCKED):
        log.pmiPutValue("proc.runq.blocked", "", str(value))
        log.pmiWrite(START + STEP * i, 0)
    del log
    return base


def actions(tmp_path) -> list[tuple[int, str, str]]:
    """(sample index, fire|clear, here-document line) of every action pmie takes."""
    rules, settings = configure(load_catalogue(), {"groups": ["nodes"], "delta": f"{STEP} sec"})
    rules = [r for r in rules if r.name == "node.d_state"]
    text = render(rules, replace(settings, command=("echo", "ALARM")))
    path = tmp_path / "d.pmie"
    path.write_text(text)
    done = subprocess.run(["pmie", "-z", "-a", archive(str(tmp_path)), "-c", str(path)],
                          capture_output=True, text=True, env=pcp_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    found = []
    for clock, kind, body in re.findall(r"shell \w+ \w+ +\d+ (\d\d:\d\d:\d\d) \d+: .*?ALARM (fire|clear)"
                                        r" .*?<<'HPCALARM'\n(.*?)\n", done.stdout, re.S):
        h, m, s = (int(x) for x in clock.split(":"))
        found.append(((h * 3600 + m * 60 + s) // STEP, kind, body))
    assert found, done.stdout + done.stderr
    return found


def test_d_state_fires_only_when_held_and_clears(tmp_path):
    found = actions(tmp_path)
    fired = [(i, body) for i, kind, body in found if kind == "fire"]
    cleared = [i for i, kind, _ in found if kind == "clear"]
    # samples 1-2 (a brief D state) never fire; 7-13 do from the 5th in a row (index 11)
    assert [i for i, _ in fired] == [11, 12, 13]
    assert all(body.split("\t")[0] == "node07" for _, body in fired)
    assert [body.split("\t")[2] for _, body in fired] == ["2", "2", "2"]   # the count now
    assert 14 in cleared and not set(cleared) & {11, 12, 13}
