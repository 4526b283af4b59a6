"""Hostile job names all the way to the dashboards: hpcjob serves them, a real pmlogger
records them, a real pmproxy loads the archive into a real Redis and answers the REST calls
Grafana makes (/series/* and the live /pmapi/*).  Every reply must be JSON and carry the
names as pmcd serves them: a name that broke a reply would blank every panel that reads it."""
from __future__ import annotations

import os
import socket
import tempfile
import time

import pytest

from tests.harness.pcp import installed_agent
from tests.logger.stack import Stack

from .ledger import Canary, served, wait_served, watch
from .payloads import hostile_names
from .test_job_names import _empty_root, _pbs_fixture

pytestmark = [pytest.mark.pcp, pytest.mark.services, pytest.mark.root, pytest.mark.usefixtures("pmcd")]

METRICS = ("hpc.job.job.state", "hpc.job.job.name", "hpc.job.account.pending")


def test_hostile_job_names_reach_pmproxy_series_as_valid_json(abuse_dir):
    pbs = os.path.join(abuse_dir, "pbs")
    os.mkdir(pbs)
    canary = Canary()
    texts = hostile_names(canary, "pbs") + ["pbs\ud800lone", "Not Running: pbs", 'quote"back\\slash',
                                            "tab\tand\u2028line", "{\"json\": [1]}", "%s%n%x",
                                            "r\u00e9sum\u00e9 \u4f5c\u696d", "caf\\xe9"]
    count = _pbs_fixture(pbs, texts)
    config = {"scheduler": "pbs", "cluster_view": True, "interval": 1, "timeout": 5,
              "root": _empty_root(abuse_dir),
              "qstat_command": [os.path.join(pbs, "qstat")],
              "pbsnodes_command": [os.path.join(pbs, "pbsnodes")]}
    stack = Stack(tempfile.mkdtemp(prefix="hpc-abuse-pmproxy-"))
    os.chmod(stack.directory, 0o755)
    try:
        with installed_agent("hpcjob", config), watch("job names through pmproxy", ["hpcjob"],
                                                      [abuse_dir]) as case:
            wait_served(lambda: len(served("hpc.job.job.state")) == count, "hpc.job", "every PBS job served")
            truth = {m: set(served(m)) for m in METRICS}
            case.tried(len(texts) * len(METRICS))
            # live: what a Grafana "pcp-vector" panel asks
            for metric in METRICS:
                indom = stack_get_live(stack, "/pmapi/indom", name=metric)
                assert {i["name"] for i in indom["instances"]} == truth[metric], metric
            # archived: pmlogger → pmproxy → Redis → /series
            stack.start_redis()
            archives = os.path.join(stack.directory, "archives")
            os.makedirs(archives)
            conf = os.path.join(stack.directory, "config")
            with open(conf, "w", encoding="utf-8") as f:
                f.write("log mandatory on 1 sec {\n" + "\n".join(METRICS) + "\n}\n")
            stack.start_pmproxy(archives)
            stack.start_pmlogger(conf, archives, socket.gethostname(), "1sec")
            for metric in METRICS:
                series = wait_served(lambda m=metric: stack.get("/series/query", expr=m), "hpc.job",
                                     f"pmproxy to load {metric}")
                instances = stack.get("/series/instances", series=",".join(series))
                assert {i["name"] for i in instances} == truth[metric], metric
                labels = stack.get("/series/labels", series=",".join(series))
                assert isinstance(labels, list)
                wait_served(lambda s=series: stack.get("/series/values", series=",".join(s), **_window()),
                            "hpc.job", f"values of {metric}")
                values = stack.get("/series/values", series=",".join(series), **_window())
                if metric == "hpc.job.job.name":
                    # string values: pmproxy's own escaping (\u000A, one \uFFFD per byte
                    # above 0x7f), valid JSON; one value for every job
                    assert len({v["instance"] for v in values}) == count
                    assert all(isinstance(v["value"], str) for v in values)
    finally:
        stack.stop()
        assert canary.found() == ([], [])
        canary.remove()


def _window() -> dict[str, int]:
    now = int(time.time())
    return {"start": now - 300, "finish": now + 60}


def stack_get_live(stack: Stack, path: str, **params):
    """A live /pmapi call through a pmproxy of the stack (started on demand, before Redis:
    the live API needs no key server)."""
    if not stack.http_port:
        archives = os.path.join(stack.directory, "live")
        os.makedirs(archives, exist_ok=True)
        stack.start_pmproxy(archives)
    return stack.get(path, **params)
