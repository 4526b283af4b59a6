"""slurmctld resets sdiag's counts every midnight UTC (src/slurmctld/controller.c: the next
reset is ``now - now % 86400 + 86400``; statistics.c reset_stats), at its start and on
``sdiag -r``; sdiag's header says when: 'Data since <date> (<epoch>)' (src/sdiag/sdiag.c).

The shipped COUNTER metrics wrap in PCP every night and stay as they are (deprecated); the
counts are exported again as instants since the reset, with the reset time beside them.
"""
from __future__ import annotations

import re

import pytest
from hpcjob_helpers import FIXTURES, make_agent

from pmdas.common.refresh import Refresher
from pmdas.common.table import COUNTER, INSTANT
from pmdas.hpcjob import slurm
from pmdas.hpcjob.metrics import METRICS

SLURM = FIXTURES / "slurm"
MIDNIGHT = 1796428800          # 2026-12-05T00:00:00Z
BEFORE, AFTER = MIDNIGHT - 60, MIDNIGHT + 60


def sdiag_at(text: str, taken: int, since: int, submitted: int, cycles: int) -> str:
    """The real 26.05.5 capture with its header epochs and two counts replaced."""
    text = re.sub(r"(sdiag output at .*\()\d+\)", rf"\g<1>{taken})", text)
    text = re.sub(r"(Data since .*\()\d+\)", rf"\g<1>{since})", text)
    text = re.sub(r"Jobs submitted: \d+", f"Jobs submitted: {submitted}", text)
    return re.sub(r"(Main schedule statistics[^\n]*\n(?:\t[^\n]*\n)*?\tTotal cycles: *)\d+",
                  rf"\g<1>{cycles}", text)


@pytest.mark.parametrize("version, since", [("22.05", 1795221675), ("24.11", 1796436977),
                                            ("26.05", 1796436951)])
def test_reset_time_comes_from_data_since(version, since):
    stats = slurm.parse_sdiag((SLURM / f"sdiag-{version}.txt").read_text())
    assert stats["stats_reset_time"] == since
    assert stats["stats_time"] > since
    assert not any(k.startswith(("data_since", "sdiag_output_at")) for k in stats)


def test_midnight_reset_is_a_drop_of_instants_not_a_counter_wrap(fake_command, tmp_path):
    real = (SLURM / "sdiag-26.05.txt").read_text()
    current = tmp_path / "sdiag.txt"
    sdiag = fake_command(f"cat '{current}'")
    squeue = fake_command("true")
    refresher = Refresher(make_agent(scheduler="slurm", cluster_view=True,
                                     squeue_command=[squeue], sinfo_command=[squeue],
                                     sdiag_command=[sdiag]))
    current.write_text(sdiag_at(real, BEFORE, MIDNIGHT - 86400, 500, 7000))
    evening = refresher.refresh_once().values
    current.write_text(sdiag_at(real, AFTER, MIDNIGHT, 3, 30))
    morning = refresher.refresh_once().values
    assert evening["hpc.job.scheduler.since_reset.jobs.submitted"] == 500
    assert morning["hpc.job.scheduler.since_reset.jobs.submitted"] == 3
    assert evening["hpc.job.scheduler.since_reset.main.cycles"] == 7000
    assert morning["hpc.job.scheduler.since_reset.main.cycles"] == 30
    assert evening["hpc.job.scheduler.stats_reset_time"] == MIDNIGHT - 86400
    assert morning["hpc.job.scheduler.stats_reset_time"] == MIDNIGHT    # the reset, flagged
    by_name = {m.name: m for m in METRICS}
    for name, metric in by_name.items():
        if name.startswith("scheduler.since_reset."):
            assert metric.semantics == INSTANT
            old = by_name[name.replace("since_reset.", "")]
            assert old.semantics == COUNTER and "Deprecated" in old.long_help


def test_real_26_05_reset_moves_data_since_and_drops_the_counts(fake_command, tmp_path):
    """Real 26.05.5 sdiag before and after 'sdiag -r', the reset midnight also makes."""
    current = tmp_path / "sdiag.txt"
    squeue = fake_command("true")
    refresher = Refresher(make_agent(scheduler="slurm", cluster_view=True,
                                     squeue_command=[squeue], sinfo_command=[squeue],
                                     sdiag_command=[fake_command(f"cat '{current}'")]))
    seen = []
    for name in ("sdiag-26.05-before-reset.txt", "sdiag-26.05-after-reset.txt"):
        current.write_text((SLURM / name).read_text())
        v = refresher.refresh_once().values
        seen.append((v["hpc.job.scheduler.stats_reset_time"],
                     v["hpc.job.scheduler.since_reset.jobs.submitted"],
                     v["hpc.job.scheduler.since_reset.main.cycles"]))
    assert seen == [(1796437683.0, 5, 4), (1796437694.0, 0, 0)]
