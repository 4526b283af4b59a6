"""The hpcalarm agent without PCP: state directory → Published values."""
from __future__ import annotations

import time

from pmdas.common.config import COMMON_OPTIONS, Config, validate
from pmdas.common.refresh import Refresher
from pmdas.hpcalarm.collector import AlarmAgent
from pmdas.hpcalarm.state import AlarmStore


def agent(directory: str, **options) -> Refresher:
    raw = {"directory": directory, **options}
    return Refresher(AlarmAgent(Config(validate(raw, {**COMMON_OPTIONS, **AlarmAgent.options}, "test"),
                                       None)))


def test_alarms_and_totals(tmp_path):
    store = AlarmStore(str(tmp_path))
    now = time.time()
    store.fire("ib.link_downed", "critical", {"n1": {"mlx5_0:1": ("1", "link down")}}, now - 5)
    store.fire("lustre.unhealthy", "critical", {"oss1": {"": ("0", "oss1 unhealthy")}}, now - 5)
    store.fire("ib.symbol_errors", "warning", {"n1": {"mlx5_0:1": ("2", "sym"), "mlx5_0:2": ("1", "")}},
               now - 3)
    store.clear("ib.symbol_errors", ["n1"], now - 1)
    published = agent(str(tmp_path)).refresh_once()
    v = published.values
    assert v["hpc.alarm.agent.up"] == 1
    assert v["hpc.alarm.firing"] == {"ib.link_downed:n1:mlx5_0:1": 1, "lustre.unhealthy:oss1": 1,
                                     "ib.symbol_errors:n1:mlx5_0:1": 0, "ib.symbol_errors:n1:mlx5_0:2": 0}
    assert v["hpc.alarm.total.firing"] == 2
    assert v["hpc.alarm.total.firing_by_severity"] == {"info": 0, "warning": 0, "critical": 2}
    assert v["hpc.alarm.total.hosts_firing"] == 2
    assert v["hpc.alarm.total.rule_firing"]["ib.symbol_errors"] == 0
    assert "lustre.unhealthy:oss1" not in v["hpc.alarm.cleared"]
    assert abs(v["hpc.alarm.cleared"]["ib.symbol_errors:n1:mlx5_0:2"] - (now - 1)) < 1e-3
    assert v["hpc.alarm.message"]["ib.link_downed:n1:mlx5_0:1"] == "link down"
    assert v["hpc.alarm.severity_level"]["lustre.unhealthy:oss1"] == 3
    labels = published.instances["alarm"]["ib.link_downed:n1:mlx5_0:1"][1]
    assert labels == {"rule": "ib.link_downed", "host": "n1", "instance": "mlx5_0:1",
                      "severity": "critical"}


def test_stale_alarms_are_flagged(tmp_path):
    AlarmStore(str(tmp_path)).fire("r.x", "info", {"h": {"i": ("1", "")}}, time.time() - 100)
    v = agent(str(tmp_path), stale_after=50).refresh_once().values
    assert v["hpc.alarm.stale"] == {"r.x:h:i": 1} and v["hpc.alarm.total.stale"] == 1
    v = agent(str(tmp_path), stale_after=500).refresh_once().values
    assert v["hpc.alarm.stale"] == {"r.x:h:i": 0}


def test_missing_directory_is_a_source_error_not_a_crash(tmp_path):
    published = agent(str(tmp_path / "nowhere")).refresh_once()
    assert published.values["hpc.alarm.agent.up"] == 0
    assert "does not exist" in published.values["hpc.alarm.agent.last_error"]
    assert published.values["hpc.alarm.total.firing"] == 0


def test_unusable_files_are_counted(tmp_path):
    (tmp_path / "r.x@h.json").write_text("[]")
    v = agent(str(tmp_path)).refresh_once().values
    assert v["hpc.alarm.state.unusable"] == 1 and "r.x@h.json" in v["hpc.alarm.state.problems"]
