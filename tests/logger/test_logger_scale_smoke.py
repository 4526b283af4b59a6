"""bench/logger_scale.py in its quick mode (3 hosts, 5 simulated minutes): the figures are there
and sane, so that the full run (1,000 hosts modelled) is not the first time the code runs.

Needs redis-server, pmseries and pmproxy (PCP 6): what the logger tests need.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_quick_run_writes_sane_figures(tmp_path):
    out = tmp_path / "logger_scale.json"
    started = time.monotonic()
    done = subprocess.run([sys.executable, os.path.join(REPO, "bench", "logger_scale.py"), "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=REPO)
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert wall < 60, f"quick mode took {wall:.0f} s"
    result = json.loads(out.read_text())

    # the model: 3 hosts, one per role that a cluster this small has, 5 minutes at 10 s
    assert result["modelled"]["hosts"] == 3
    assert result["loaded"] == {"head": 1, "dtn": 0, "server": 1, "compute": 1}
    per_tick = result["samples_per_tick_per_host"]
    assert per_tick["compute"] > 100 and per_tick["server"] > 10 and per_tick["head"] > 100
    assert result["needed_samples_per_s"] == sum(per_tick.values()) / 10
    for role, mb in result["archive_mb_per_host_day"].items():
        assert 0.1 < mb < 10_000, (role, mb)

    assert set(result["stores"]) == {"redis", "cluster"}
    for name, store in result["stores"].items():
        # the cluster really spread its keys over three shards
        keys = store["keys_per_shard"]
        assert len(keys) == store["shards"] and all(k > 0 for k in keys), (name, keys)
        assert store["ingest_samples_per_s"] > result["needed_samples_per_s"], name
        # values took memory on the busiest host (metadata of so small a run can be within the
        # allocator's noise: a 3-shard cluster once reported -16 kB for it)
        split = store["memory_split_bytes"]["compute"]
        assert split["values"] > 0 and split["metadata"] + split["values"] > 0, (name, split)
        assert 1 < store["key_server_mb_per_host_day_cluster_mean_extrapolated"] < 100_000, name
        boards = {q["board"] for q in store["queries"]}
        assert boards == {"summary", "job"}, boards
        for q in store["queries"]:
            assert q["n"] == 3 and 0 < q["median_s"] <= q["p99_s"] < 10, q
        # every agent's summary panels found this cluster's series (no DTN host at 3 hosts)
        found = {q["expr"] for q in store["queries"] if q["board"] == "summary" and q["series"]}
        assert "hpc.lustre.client.read.bytes" in found and "hpc.job.nodes.allocated" in found
        # the job board selects a job by instance name: it finds the job in every store
        # (pmseries --load before PCP 7 drops the instance labels the board used to select by)
        assert all(q["series"] for q in store["queries"] if q["board"] == "job"), name
    assert {row["figure"].split("]")[0] for row in result["table"]} >= {"[redis", "[cluster"}


def test_model_logs_what_the_groups_say_at_their_interval(tmp_path):
    """The bench writes a metric only if a pmlogconf group names it, at the group's delta; a
    server's per-job instances are named as hpclustre folds them (<filesystem>/<job>)."""
    sys.path.insert(0, REPO)
    from bench.logger_scale_parts import archives

    (tmp_path / "hpclustre").mkdir()
    (tmp_path / "hpclustre" / "hpclustre").write_text(
        "#pmlogconf-setup 2.0\nident\tx\nprobe\thpc.lustre.agent.up exists ? include : exclude\n"
        "\thpc.lustre.server\n\thpc.lustre.agent\n")
    (tmp_path / "hpclustre" / "hpclustre-jobs").write_text(
        "#pmlogconf-setup 2.0\nident\tx\nprobe\thpc.lustre.agent.up exists ? include : exclude\n"
        "delta\t1 minute\n\thpc.lustre.job\n")
    groups = archives.logged_groups(str(tmp_path))
    assert archives.interval_of("hpc.lustre.job.read.bytes", groups) == 60
    assert archives.interval_of("hpc.lustre.server.target.read.bytes", groups) == "farm"
    assert archives.interval_of("hpc.lustre.client.read.bytes", groups) == "never"
    assert archives.interval_of("kernel.all.cpu.user", groups) == "farm"
    assert archives.delta_seconds("once") is None and archives.delta_seconds("5 minutes") == 300
    metrics = {m.name: m for m in archives.for_role(archives.fixture_shape(), "server", groups)}
    assert metrics["hpc.lustre.job.read.bytes"].interval == 60
    assert metrics["hpc.lustre.server.target.read.bytes"].interval == archives.INTERVAL
    assert not any(n.startswith("hpc.lustre.client.") for n in metrics)
    cluster = archives.Cluster(50, 600)
    names = list(archives.instance_names(metrics["hpc.lustre.job.read.bytes"], "oss01", 0, cluster, []))
    assert names == [f"scratch/{j.id}" for j in cluster.running(0, archives.LINGER)]


def test_bench_reads_each_panel_over_the_window_grafana_asks_for():
    """The top-N panels read the last few minutes (a relative time override), the others the
    board's range; the bench asks pmproxy for what grafana-pcp would ask for each."""
    sys.path.insert(0, REPO)
    from bench import logger_scale

    spans = {(board, title): span for board, title, _, span, _ in logger_scale.queries("42")}
    steps = {(board, title): step for board, title, _, _, step in logger_scale.queries("42")}
    assert steps[("summary", "Agents up")] == 60 and steps[("job", "CPUs")] == 60
    assert steps[("job", "CPU by node")] == 0
    assert logger_scale.grafana_window(10_000, 3 * 3600, 60)[1] == 60
    assert spans[("summary", "Top jobs by Lustre reads")] == 300
    assert spans[("summary", "Busiest nodes: Lustre client I/O")] == 300
    assert spans[("summary", "Running jobs by partition")] == 3 * 3600
    assert spans[("summary", "Agents up")] == 900
    assert spans[("job", "Lustre bytes read")] == 3 * 3600
    (start, finish), interval = logger_scale.grafana_window(10_000, 300)
    assert (start, finish, interval) == (10_000 - 300 - 120, 10_060, 10)
