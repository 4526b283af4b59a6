"""Every dashboard query on each release's pmproxy.

One recording of every agent's metrics with data (tests/fixtures/archives/dashboards-*:
pmlogger on this machine's demo agents, kept by tests/logger/test_pmproxy_live.py with
HPC_PCP_KEEP_ARCHIVES=<dir>, volumes xz-compressed) is loaded with the release's pmseries
into the release's Redis; then every template variable and every panel target runs the way
grafana-pcp runs it, against the release's pmproxy: each query is accepted, and every panel
of our agents returns data.
"""
from __future__ import annotations

import subprocess

import pytest
from pcp import pmapi

from hpc_pcp import dashboards
from pmdas.agents import AGENTS
from tests.logger.panels import label_variables, run_every_panel

from .node import REPO, SeriesClient
from .test_versions import INSTANCE

pytestmark = [pytest.mark.services, pytest.mark.root, pytest.mark.matrix]

ARCHIVE = REPO / "tests" / "fixtures" / "archives" / "dashboards-2026-12-05"
# Panels newer than the recording, whose metrics it holds no values of: no curated bpftrace
# script exports a byte counter or a level (tests/logger/test_pmproxy_live.py adds one live,
# as an admin would, and checks both panels against this machine's pmproxy).
NEWER_THAN_RECORDING = {"hpc-bpftrace.json / Byte counters", "hpc-bpftrace.json / Levels"}


def _archive() -> tuple[str, tuple[int, int], dict[str, set[str]]]:
    """The recording's host, time range and, per metric, its instance names."""
    context = pmapi.pmContext(pmapi.c_api.PM_CONTEXT_ARCHIVE, str(ARCHIVE))
    label = context.pmGetArchiveLabel()
    start = int(label.start)
    finish = int(float(context.pmGetArchiveEnd())) + 1
    instances = {}
    for name in ("hpc.ib.port.rcv.bytes", "hpc.job.job.cgroup.memory.current"):
        out = subprocess.run(["pminfo", "-a", str(ARCHIVE), "-O", "5", "-f", name], capture_output=True,
                             text=True, check=True).stdout
        instances[name] = {m["name"] for m in map(INSTANCE.match, out.splitlines()) if m}
    host = label.hostname.decode() if isinstance(label.hostname, bytes) else label.hostname
    return host, (start - 1, finish), instances


@pytest.fixture(scope="module")
def series(matrix_node):
    matrix_node.node.load_series(ARCHIVE)
    client = SeriesClient(matrix_node.node)
    yield client
    client.close()


def test_instance_names_come_back_as_recorded(matrix_node, series):
    """/series/instances names each instance as the archive does, on every pmproxy."""
    host, _, recorded = _archive()
    for name, instances in recorded.items():
        found = series.get("/series/query", expr=name)
        assert found, f"{name}: no series on pmproxy {matrix_node.versions['pcp']}"
        names = {i["name"] for i in series.get("/series/instances", series=",".join(found))}
        assert names == instances, f"{name} on {matrix_node.node.release}"
    labels = series.get("/series/labels", names="hostname")
    assert host in labels.get("hostname", []), labels


def _instance_labels_loaded(series) -> bool:
    """Whether the release's ``pmseries --load`` kept the archive's instance labels (``job``):
    7.2.2 does; 6.0.3 and 6.3.8 load context and metric labels only (measured).  A pmproxy
    that discovers a pmlogger's archives as they are written keeps them on 6.0.3 too
    (tests/logger/test_pmproxy_live.py), which is how a logger node loads them."""
    return bool(series.get("/series/labels", names="job"))


def _needs_job_label(filename: str, title: str) -> bool:
    board = dashboards.generate()[filename]
    panel = next(p for p in board["panels"] if p.get("title") == title)
    return all('job == "$job"' in t["expr"] for t in panel["targets"])


def test_instance_labels_after_load(matrix_node, series):
    """Records, per release, whether instance labels survive ``pmseries --load``."""
    major = int(matrix_node.versions["pcp"].split(".")[0])
    assert _instance_labels_loaded(series) == (major >= 7), matrix_node.versions["pcp"]


def test_template_variables_resolve(matrix_node, series):
    labels_loaded = _instance_labels_loaded(series)
    for uid, name, label in label_variables():
        reply = series.get("/series/labels", names=label)
        assert isinstance(reply, dict), reply
        if label != "job" or labels_loaded:
            assert reply.get(label), f"{uid} ${name} on pmproxy {matrix_node.versions['pcp']}: {reply}"


def test_every_panel_query(matrix_node, series):
    """Every query is accepted; every panel returns data, except, where the release's loader
    dropped instance labels, the job board's panels that select by the ``job`` label."""
    host, window, recorded = _archive()
    jobs = sorted(recorded["hpc.job.job.cgroup.memory.current"])
    values = {"host": host, "job": jobs[0].split(" ", 1)[0]}
    run = run_every_panel(series.get, values, set(AGENTS), window, linux=False)
    unlabelled = [] if _instance_labels_loaded(series) else \
        [w for w in run.empty if _needs_job_label(*w.split(" / ", 1))]
    print(f"\n[matrix] {matrix_node.node.release} pmproxy {matrix_node.versions['pcp']}: "
          f"{run.panels} panels, {run.with_data} with data, {len(unlabelled)} need instance labels")
    empty = [w for w in run.empty if w not in unlabelled and w not in NEWER_THAN_RECORDING]
    assert not empty, "panels without data: " + "; ".join(empty)
