"""The demo tree generator and the benchmark script (smoke: they run and agree with the agent)."""
from __future__ import annotations

import importlib.util
import json
import os

import pytest

from hpc_demo import hpcib as demo

from .helpers import class_dir, metric, read_int, refresher


def test_build_matches_the_agent(tmp_path):
    root = str(tmp_path)
    names = demo.build(root, hcas=3, ports=2)
    published = refresher(root).refresh_once()
    assert sorted(published.instances["ca"]) == names
    assert len(published.instances["port"]) == 6
    hw_per_port = len(demo.MLX5_HW_COUNTERS) - 1          # lifespan is a setting
    assert len(published.instances["hw_counter"]) == 6 * hw_per_port
    assert metric(published, "port.xmit.bytes")["mlx5_2:2"] == 4 * read_int(
        root, "mlx5_2", 2, "counters/port_xmit_data")
    assert metric(published, "agent.up") == 1 and metric(published, "total.unavailable") == 0
    with open(os.path.join(class_dir(root), "mlx5_0", "ports", "1", "state"), "rb") as f:
        assert f.read() == b"4: ACTIVE\n"


def test_advance_moves_counters_forward(tmp_path):
    root = str(tmp_path)
    demo.build(root, hcas=1, ports=1)
    r = refresher(root)
    first = r.refresh_once()
    assert demo.advance(root, seed=7) > 0
    second = r.refresh_once()
    for name in ("total.xmit.bytes", "total.rcv.bytes", "total.xmit.packets"):
        assert metric(second, name) > metric(first, name)
    assert metric(second, "port.counter_resets") == {"mlx5_0:1": 0}
    assert metric(second, "port.hw_counter")["mlx5_0:1:out_of_buffer"] >= \
        metric(first, "port.hw_counter")["mlx5_0:1:out_of_buffer"]


def test_cli(tmp_path, capsys):
    root = str(tmp_path / "node")
    assert demo.main(["--root", root, "--hcas", "2", "--ports", "1"]) == 0
    assert demo.main(["--root", root, "--advance"]) == 0
    assert "advanced" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        demo.main(["--root", str(tmp_path / "empty"), "--advance"])


def test_benchmark_script_runs(tmp_path, capsys):
    path = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "ib_refresh.py")
    spec = importlib.util.spec_from_file_location("ib_refresh", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    output = str(tmp_path / "ib.json")
    assert bench.main(["--runs", "2", "--hcas", "1", "--ports", "1", "--output", output]) == 0
    with open(output, encoding="utf-8") as f:
        result = json.load(f)
    assert {r["case"] for r in result["results"]} >= {"cat (one process)", "agent refresh"}
    assert all(r["median_ms"] > 0 for r in result["results"])


def test_demo_node_hooks(tmp_path):
    """hpc-demo calls prepare(directory) -> settings, then advance(directory) periodically."""
    directory = str(tmp_path)
    settings = demo.prepare(directory)
    assert settings == {"root": directory}
    marker = os.path.join(class_dir(directory), "mlx5_0", "ports", "1", "counters", "port_xmit_data")
    before = read_int(directory, "mlx5_0", 1, "counters/port_xmit_data")
    assert demo.prepare(directory) == settings                     # idempotent: keeps the tree
    assert read_int(directory, "mlx5_0", 1, "counters/port_xmit_data") == before
    demo.advance(directory)
    assert read_int(directory, "mlx5_0", 1, "counters/port_xmit_data") > before
    assert os.path.exists(marker)
    assert demo.advance(str(tmp_path / "nothing")) == 0
