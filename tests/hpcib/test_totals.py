"""Node totals (hpc.ib.total.*) add only increases seen between two reads of one port.

Issue #17, finding 2: a port first read after the agent's first refresh (its device
failing once, hot-added, back after being forgotten) used to add its whole lifetime
counter to the totals at once: ~293 GB of phantom traffic on the mlx5 tree.
"""
from __future__ import annotations

import os
import shutil

from pmdas.common.sources import SourceError
from pmdas.hpcib import collector
from pmdas.hpcib.sysfs import read_ca

from .helpers import class_dir, copy_tree, metric, port_file, read_int, refresher, write

TOTALS = ("total.xmit.bytes", "total.rcv.bytes", "total.xmit.packets", "total.rcv.packets",
          "total.errors")


def totals(published) -> dict[str, int]:
    return {name: metric(published, name) for name in TOTALS}


def test_a_device_failing_at_the_first_refresh_adds_only_later_increases(tmp_path, monkeypatch):
    root = copy_tree("mlx5", str(tmp_path))
    failing = {"mlx5_1": 1}

    def flaky(class_dir_, name, hw=True):
        if failing.get(name):
            failing[name] -= 1
            raise SourceError(f"device {name} disappeared while being read")
        return read_ca(class_dir_, name, hw)

    monkeypatch.setattr(collector, "read_ca", flaky)
    r = refresher(root)
    first = r.refresh_once()
    assert set(first.instances["port"]) == {"mlx5_0:1"}
    second = r.refresh_once()                       # mlx5_1 answers: its lifetime counts
    assert "mlx5_1:1" in metric(second, "port.xmit.bytes")
    assert metric(second, "port.xmit.bytes")["mlx5_1:1"] > 10**9   # are large, and
    assert totals(second) == totals(first)                          # add nothing
    words = read_int(root, "mlx5_1", 1, "counters/port_xmit_data")
    write(port_file(root, "mlx5_1", 1, "counters/port_xmit_data"), f"{words + 1000}\n")
    third = r.refresh_once()
    assert metric(third, "total.xmit.bytes") == metric(first, "total.xmit.bytes") + 4000


def test_a_hot_added_port_and_a_forgotten_one_add_nothing_at_first_sight(tmp_path, monkeypatch):
    root = copy_tree("mlx5", str(tmp_path))
    monkeypatch.setattr(collector, "FORGET_AFTER_REFRESHES", 2)
    r = refresher(root)
    start = totals(r.refresh_once())
    new_port = os.path.join(class_dir(root), "mlx5_0", "ports", "2")
    shutil.copytree(os.path.join(class_dir(root), "mlx5_0", "ports", "1"), new_port)
    added = r.refresh_once()
    assert metric(added, "port.rcv.bytes")["mlx5_0:2"] > 0
    assert totals(added) == start
    link = os.path.join(class_dir(root), "mlx5_1")
    target = os.readlink(link)
    os.unlink(link)
    for _ in range(4):                               # away long enough to be forgotten
        away = r.refresh_once()
    assert "mlx5_1:1" not in metric(away, "port.xmit.bytes")
    os.symlink(target, link)
    back = r.refresh_once()
    assert "mlx5_1:1" in metric(back, "port.xmit.bytes")
    assert totals(back) == start


def test_the_first_refresh_is_the_starting_point(tmp_path):
    root = copy_tree("mlx5", str(tmp_path))
    first = refresher(root).refresh_once()
    assert metric(first, "total.xmit.bytes") == sum(metric(first, "port.xmit.bytes").values())
    assert metric(first, "total.rcv.packets") == sum(metric(first, "port.rcv.packets").values())
