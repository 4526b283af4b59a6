"""Job cgroups as Slurm 26.05 names them: by SLUID, or by job id with CgroupJobIdPaths=yes.

Fixture trees in the layout of src/plugins/cgroup/v2/cgroup_v2.c (26.05): the job cgroup
``slurmstepd.scope/<SLUID or job_<id>>`` holds ``step_<x>/slurm`` (the step's slurmstepd)
and ``step_<x>/user/task_<n>``; the scope also holds ``system``.  The slurmstepd titles
are what real 26.05.5 showed here (``slurmstepd: [1.batch]``); the SLUIDs are the ones
its slurmd logged for jobs 1-3 (tests/fixtures/slurm/README.md).  cgroup v2 cannot run
Slurm 26.05 on this machine (hybrid cgroups: "Hybrid mode is not supported").
"""
from __future__ import annotations

import pytest
from hpcjob_helpers import FIXTURES, refresh

from pmdas.hpcjob import cgroups
from pmdas.hpcjob.metrics import METRICS

CGROUP, SLURM = FIXTURES / "cgroup", FIXTURES / "slurm"


def usage(tree: str) -> dict[str, tuple]:
    return {k: (u.cpu_time, u.memory, u.memory_peak, u.read_bytes, u.write_bytes, u.version)
            for k, u in cgroups.read_job_usage(str(CGROUP / tree)).items()}


def test_sluid_cgroups_are_named_by_their_job_id():
    found = usage("v2-slurm-26.05-sluid")
    assert found == {
        "1": (1_250_000_000, 52428800, 104857600, None, None, 2),   # no io controller: unknown
        "3": (500_000_000, 4096, 8192, 4096, 8192, 2),             # EnableExtraControllers=io
    }   # the third SLUID has no step daemon left: it cannot be named, so it is left out


def test_job_id_paths_give_the_same_usage():
    sluid, job_ids = usage("v2-slurm-26.05-sluid"), usage("v2-slurm-26.05-jobid")
    assert set(job_ids) == {"1", "2", "3"}
    assert {k: job_ids[k] for k in sluid} == sluid


@pytest.mark.parametrize("tree", ["v2-slurm-26.05-sluid", "v2-slurm-26.05-jobid"])
def test_real_26_05_job_gets_its_cgroup_use_through_the_agent(cat_command, tree):
    """squeue-26.05.txt is real: job 1 ran on node 'vm'."""
    p = refresh(scheduler="slurm", node_name="vm", root=str(CGROUP / tree),
                squeue_command=[cat_command(SLURM / "squeue-26.05.txt")])
    v = p.values
    assert v["hpc.job.job.state"]["1"] == "running"
    assert v["hpc.job.job.cgroup.cpu_time"]["1"] == 1_250_000_000
    assert v["hpc.job.job.cgroup.memory.current"]["1"] == 52428800
    assert "1" not in v["hpc.job.job.cgroup.io.read_bytes"]     # absent io.stat: no value
    assert v["hpc.job.job.cgroup.io.read_bytes"]["3"] == 4096


@pytest.mark.parametrize("cmdline, job_id", [
    (b"slurmstepd: [1.batch]\0", "1"), (b"slurmstepd: [3.0]\0", "3"),
    (b"slurmstepd: [1.extern]\0", "1"), (b"slurmstepd: [7 stepmgr]\0", None),
    (b"slurmstepd: [7.batch stepmgr]\0", "7"), (b"/usr/sbin/slurmstepd\0infinity\0", None),
    (b"/bin/sh\0/var/spool/slurmd/job_script\0", None), (b"", None),
])
def test_stepd_titles(cmdline, job_id):
    assert cgroups.stepd_job_id(cmdline) == job_id


def test_sluid_form():
    assert cgroups.SLUID.fullmatch("sAHSM91ZS1QB00") and cgroups.SLUID.fullmatch("sEKNKTV3WPV500")
    assert not cgroups.SLUID.fullmatch("system") and not cgroups.SLUID.fullmatch("job_12")


def test_io_help_names_what_each_version_creates():
    helps = {m.name: m.long_help for m in METRICS}
    for name in ("job.cgroup.io.read_bytes", "job.cgroup.io.write_bytes"):
        assert "EnableExtraControllers=io" in helps[name] and "25.05" in helps[name]
        assert "never creates blkio" in helps[name]
