"""Tier 1: the job and summary boards' transformations, on the fields grafana-pcp would make
of pmproxy's answers (tests/logger/panels.py models Grafana's part): a job is selected by its
instance name among every instance of the series its query names, and summed over its hosts."""
from __future__ import annotations

import pytest

from hpc_pcp import dashboards
from hpc_pcp.dashboards.model import Query

from .panels import Field, transform


def _panel(board: str, title: str) -> dict:
    return next(p for p in dashboards.generate()[board]["panels"] if p.get("title") == title)


def _field(name: str, host: str, last: float, ref: str = "A") -> Field:
    return Field(name, ref, {"hostname": host}, [(1.0, last / 2), (2.0, last)])


def _pmproxy_fields(names: dict[str, float], host: str) -> list[Field]:
    """One series (a metric on ``host``): pmproxy returns all its instances, whatever selected it."""
    return [_field(name, host, value) for name, value in names.items()]


def test_qualifiers_by_instance_name():
    assert Query("m", {"instance.name": "$job"}).expr() == 'm{instance.name == "$job"}'
    assert Query("m", like={"instance.name": ("*/$job",)}).expr() == 'm{instance.name ~~ "*/$job"}'
    assert Query("m", like={"i": ("a", "b")}).expr() == 'm{i ~~ "a" || i ~~ "b"}'
    with pytest.raises(ValueError):   # an OR of globs cannot be ANDed with more: no grouping
        Query("m", {"hostname": "h"}, like={"i": ("a", "b")}).expr()


@pytest.mark.parametrize("title,metric", [("CPU time", "hpc.job.job.cgroup.cpu_time"),
                                          ("Memory", "hpc.job.job.cgroup.memory.current")])
def test_job_board_sums_the_job_over_its_nodes_and_nothing_else(title, metric):
    panel = _panel("hpc-job.json", title)
    assert panel["targets"][0]["expr"] == f'{metric}{{instance.name == "$job"}}'
    fields = _pmproxy_fields({"4242": 10.0, "77": 99.0, "42": 1000.0}, "node01") + \
        _pmproxy_fields({"4242": 5.0, "424": 7.0}, "node02")
    assert transform(fields, panel["transformations"], {"job": "4242"}) == [
        {"Field": "4242", "Last * (sum)": 15.0}]


@pytest.mark.parametrize("title", ["Lustre bytes read", "Lustre bytes written", "Metadata operations"])
def test_job_board_sums_the_jobs_lustre_io_over_servers_and_filesystems(title):
    panel = _panel("hpc-job.json", title)
    assert panel["targets"][0]["expr"].endswith(
        '{instance.name ~~ "*/$job" || instance.name ~~ "*/*$job[:._]*"}')
    fields = _pmproxy_fields({"scratch/4242": 100.0, "scratch/77": 500.0, "scratch/[other]": 9.0,
                              "scratch/dd.4242": 3000.0}, "oss1") + \
        _pmproxy_fields({"scratch/4242": 30.0, "home/4242": 2.0, "home/14242": 800.0}, "mds1") + \
        _pmproxy_fields({"scratch/4242:1000:cn017": 4.0, "scratch/SLURM_JOB4242:0:cn018": 8.0,
                         "scratch/42420:0:cn01": 9000.0}, "oss-old")   # job_by_host, old archives
    assert transform(fields, panel["transformations"], {"job": "4242"}) == [
        {"Field": "4242", "Last * (sum)": 144.0}]


def test_job_board_allocation_is_one_value_for_the_job():
    panel = _panel("hpc-job.json", "CPUs")
    fields = _pmproxy_fields({"4242": 64.0, "77": 8.0}, "node01") + \
        _pmproxy_fields({"4242": 64.0}, "node02")
    assert transform(fields, panel["transformations"], {"job": "4242"}) == [
        {"Field": "4242", "Last * (max)": 64.0}]


def test_job_board_per_node_panels_keep_only_the_job():
    panel = _panel("hpc-job.json", "Bytes")
    fields = [_field("scratch/4242", "oss1", 1.0, "A"), _field("scratch/77", "oss1", 1.0, "A"),
              _field("scratch/4242", "oss2", 1.0, "B")]
    kept = transform(fields, panel["transformations"], {"job": "4242"})
    assert [(f.ref, f.labels["hostname"]) for f in kept] == [("A", "oss1"), ("B", "oss2")]


@pytest.mark.parametrize("title", ["Top jobs by Lustre writes", "Top jobs by Lustre reads"])
def test_top_jobs_rank_each_job_by_its_sum_over_servers(title):
    """Job 4242 moves 100 + 30 on two servers, job 77 120 on one: 4242 ranks first although
    each of its servers alone shows less than 77."""
    panel = _panel("hpc-cluster.json", title)
    fields = _pmproxy_fields({"scratch/4242": 100.0, "scratch/77": 120.0}, "oss1") + \
        _pmproxy_fields({"scratch/4242": 30.0, "scratch/5": 1.0}, "oss2")
    rows = transform(fields, panel["transformations"], {})
    assert rows == [{"Field": "4242", "Last * (sum)": 130.0}, {"Field": "77", "Last * (sum)": 120.0},
                    {"Field": "5", "Last * (sum)": 1.0}]
    assert "${__data.fields.Field}" in panel["fieldConfig"]["defaults"]["links"][0]["url"]


@pytest.mark.parametrize("title,metrics", [
    ("Busiest nodes: Lustre client I/O", ("hpc.lustre.client.read.bytes", "hpc.lustre.client.write.bytes")),
    ("Busiest nodes: InfiniBand traffic", ("hpc.ib.total.xmit.bytes", "hpc.ib.total.rcv.bytes"))])
def test_busiest_nodes_rank_each_host_by_its_sum_now(title, metrics):
    """node02 reads 50 and writes 60 (110) on two filesystems, node01 moves 100: node02 first;
    the panel reads the last minutes only, named by host, linked to that host's node board."""
    panel = _panel("hpc-cluster.json", title)
    assert [t["expr"] for t in panel["targets"]] == list(metrics)
    assert panel["timeFrom"] == "5m" and all(t["legendFormat"] == "$hostname" for t in panel["targets"])
    fields = [_field("node01", "node01", 100.0, "A"), _field("node02", "node02", 20.0, "A"),
              _field("node02", "node02", 30.0, "A"), _field("node02", "node02", 60.0, "B"),
              _field("node03", "node03", 1.0, "B")]
    assert transform(fields, panel["transformations"], {}) == [
        {"Field": "node02", "Last * (sum)": 110.0}, {"Field": "node01", "Last * (sum)": 100.0},
        {"Field": "node03", "Last * (sum)": 1.0}]
    assert "var-host=${__data.fields.Field}" in panel["fieldConfig"]["defaults"]["links"][0]["url"]
