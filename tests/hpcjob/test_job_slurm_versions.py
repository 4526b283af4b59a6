"""What squeue prints differs between the Slurm versions sites run (22.05 → 26.05).

Real captures of 22.05 (Debian 12), 24.11.5 (Debian 13 root) and 26.05.5 (Debian sid
root), each a job that exited 3, one killed by signal 9 and one that completed; see
tests/fixtures/slurm/README.md.  scontrol's ExitCode (always 'exit:signal') is the truth.
"""
from __future__ import annotations

import pytest
from hpcjob_helpers import FIXTURES, refresh

from pmdas.hpcjob import slurm
from pmdas.hpcjob.model import count_jobs

SLURM = FIXTURES / "slurm"
FINISHED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}


def scontrol_exit_codes(version: str) -> dict[str, tuple[int, int]]:
    truth = {}
    for line in (SLURM / f"scontrol-show-job-{version}.txt").read_text().splitlines():
        pairs = dict(p.split("=", 1) for p in line.split(" ") if "=" in p)
        if pairs["JobState"] in FINISHED:
            code, signal = pairs["ExitCode"].split(":")
            truth[pairs["JobId"]] = (int(code), int(signal))
    return truth


@pytest.mark.parametrize("version", ["22.05", "24.11", "26.05"])
def test_exit_code_and_signal_match_scontrol(version):
    jobs = {j.id: j for j in slurm.parse_squeue((SLURM / f"squeue-{version}.txt").read_text())}
    truth = scontrol_exit_codes(version)
    assert truth, "the capture has finished jobs"
    for job_id, pair in truth.items():
        assert (jobs[job_id].exit_code, jobs[job_id].exit_signal) == pair, job_id


@pytest.mark.parametrize("version", ["24.11", "26.05"])
def test_exit_3_and_signal_9_through_the_agent(cat_command, version):
    """The capture's job mix: 2 exited 3, 3 was killed by signal 9, 4 completed, 5 pending."""
    p = refresh(scheduler="slurm", cluster_view=True, node_name="vm",
                squeue_command=[cat_command(SLURM / f"squeue-{version}.txt")],
                sinfo_command=[cat_command(SLURM / "sinfo-22.05.txt")],
                sdiag_command=[cat_command(SLURM / f"sdiag-{version}.txt")])
    code, signal = p.values["hpc.job.job.exit_code"], p.values["hpc.job.job.exit_signal"]
    assert (code["2"], signal["2"]) == (3, 0)
    assert (code["3"], signal["3"]) == (0, 9)
    assert (code["4"], signal["4"]) == (0, 0)
    assert "5" not in code and "1" not in code      # pending, running: no exit yet


@pytest.mark.parametrize("text, pair", [
    ("768", (3, 0)), ("9", (0, 9)), ("0", (0, 0)), ("36608", (143, 0)),   # 22.05: wait status
    ("3:0", (3, 0)), ("0:9", (0, 9)), ("0:0", (0, 0)), ("0:125", (0, 125)),  # 23.02+: exit:signal
    ("3", (0, 3)),          # a bare number is a wait status (signal 3), never exit code 3
    ("", None), ("x:1", None), ("N/A", None),
])
def test_exit_format_decides_not_the_value(text, pair):
    assert slurm.parse_exit(text) == pair


def test_typed_gpu_tres_counts_each_gpu_once():
    """AccountingStorageTRES=gres/gpu,gres/gpu:a100 lists the same GPUs twice."""
    jobs = {j.id: j for j in slurm.parse_squeue((SLURM / "squeue-typed-gpu-26.05.txt").read_text())}
    assert jobs["11"].gpus == 2 and jobs["12"].gpus == 8 and jobs["13"].gpus == 1
    counts = count_jobs(jobs.values())
    assert counts.users["alice"].gpus == 10 and counts.accounts["phys"].gpus == 10
    assert counts.users["bob"].gpus == 1                # the failed job holds none


@pytest.mark.parametrize("text, gpus", [
    ("cpu=1,gres/gpu=2,gres/gpu:a100=2", 2),
    ("cpu=1,gres/gpu=3,gres/gpu:a100=2,gres/gpu:v100=1", 3),
    ("cpu=1,gres/gpu:a100=2,gres/gpu:v100=1", 3),   # typed only: their sum
    ("cpu=1,gres/gpumem=40G,gres/gpu=1", 1),         # gpumem is not a GPU count
    ("gres/gpu:a100:2", 2), ("gpu:a100:2(S:0-1),gpu:v100:1", 3), ("gres:gpu:1", 1),
    ("cpu=1,mem=100M", None),
])
def test_gpu_count_forms(text, gpus):
    assert slurm.gpu_count(text) == gpus
