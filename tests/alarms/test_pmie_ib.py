"""Tier 2: InfiniBand faults in a fixture tree → hpcib under pmcd → real pmie → hpc.alarm.*.

Every ib.* rule is induced at once on different ports, shown firing through the
hpcalarm agent, then the faults are removed and every alarm is shown cleared.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading

import pytest

from hpc_demo import hpcib as demo
from tests.harness.pcp import installed_agent, wait_refreshed

from .live import alarm_values, rules_text, running_pmie, wait_alarms

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]


def _port(root: str, ca: str, port: int, name: str) -> str:
    return os.path.join(root, "sys/class/infiniband", ca, "ports", str(port), name)


def _bump(root: str, ca: str, port: int, counter: str, step: int) -> None:
    path = _port(root, ca, port, f"counters/{counter}")
    with open(path, encoding="utf-8") as f:
        value = int(f.read())
    demo.write_value(path, value + step)


class Faults:
    """Counters that keep rising while the faults last (pmie sees rates > 0)."""

    def __init__(self, root: str):
        self.root = root
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.3):
            _bump(self.root, "mlx5_0", 1, "symbol_error", 3)
            _bump(self.root, "mlx5_0", 1, "link_downed", 1)
            _bump(self.root, "mlx5_0", 1, "port_rcv_errors", 2)
            _bump(self.root, "mlx5_1", 2, "port_xmit_wait", 10**7)

    def __enter__(self) -> Faults:
        demo.write_value(_port(self.root, "mlx5_0", 2, "state"), "1: DOWN")
        demo.write_value(_port(self.root, "mlx5_1", 1, "rate"), "50 Gb/sec (1X HDR)")
        demo.write_value(_port(self.root, "mlx5_1", 2, "counters/VL15_dropped"), 65535)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        demo.write_value(_port(self.root, "mlx5_0", 2, "state"), "4: ACTIVE")
        demo.write_value(_port(self.root, "mlx5_1", 1, "rate"), "200 Gb/sec (4X HDR)")
        demo.write_value(_port(self.root, "mlx5_1", 2, "counters/VL15_dropped"), 0)


EXPECTED = {
    "ib.symbol_errors|mlx5_0:1": 1, "ib.link_downed|mlx5_0:1": 1, "ib.rcv_errors|mlx5_0:1": 1,
    "ib.port_not_active|mlx5_0:2": 1, "ib.port_slow|mlx5_1:1": 1, "ib.port_width|mlx5_1:1": 1,
    "ib.xmit_wait_high|mlx5_1:2": 1, "ib.counter_saturated|mlx5_1:2": 1,
}


def test_ib_rules_fire_and_clear():
    work = tempfile.mkdtemp(prefix="alarm-ib-")
    os.chmod(work, 0o755)
    root, state = os.path.join(work, "tree"), os.path.join(work, "state")
    demo.build(root, hcas=2, ports=2)
    try:
        with installed_agent("hpcib", {"root": root, "interval": 1}), \
                installed_agent("hpcalarm", {"directory": state, "interval": 1}):
            wait_refreshed("hpc.ib", 2)
            with running_pmie(rules_text(["ib"], state)) as log:
                with Faults(root):
                    firing = wait_alarms(EXPECTED)
                    assert alarm_values("total.firing") >= len(EXPECTED)
                    severities = alarm_values("total.firing_by_severity")
                    assert severities["critical"] >= 2 and severities["info"] >= 1
                    messages = alarm_values("message")
                    key = next(k for k in firing if k.startswith("ib.port_not_active:"))
                    assert "mlx5_0:2" in messages[key] and "state 1" in messages[key]
                    # Healthy ports never fire.
                    assert not [k for k, v in firing.items() if v and k.startswith("ib.symbol_errors:")
                                and not k.endswith("mlx5_0:1")]
                cleared = wait_alarms({k: 0 for k in EXPECTED})
                assert not any(cleared.values())
                assert all(v > 0 for k, v in alarm_values("cleared").items() if k.startswith("ib."))
                assert alarm_values("total.firing") == 0
                firings = alarm_values("firings")
                assert all(firings[k] == 1 for k in cleared), firings
                with open(log, encoding="utf-8") as f:
                    assert "syntax error" not in f.read()
    finally:
        shutil.rmtree(work, ignore_errors=True)
