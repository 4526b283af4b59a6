"""Tier 2: hpcjob under the real pmcd, against a real private Slurm, read with PCP's tools.

What an admin types (pminfo -f, -T, -l) must show what scontrol says: every job
as an instance named by its id, its state, partition, CPUs and name, labels for
Grafana, help text; and partition and node tallies that match sinfo.
"""
from __future__ import annotations

import json
import re

import pytest

from tests.harness.pcp import installed_agent, reader, run_pcp, wait_for
from tests.services.slurm import hpcjob_config

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]


def _pminfo_values(metric: str) -> dict[str, str]:
    """{instance name: value text} as `pminfo -f` prints them."""
    out = run_pcp("pminfo", "-f", metric)
    assert out.returncode == 0, out.stderr
    return dict(re.findall(r'inst \[\d+ or "([^"]*)"\] value (.*)', out.stdout))


def test_pminfo_shows_what_scontrol_says(slurm_cluster):
    c = slurm_cluster
    running = c.sbatch("-J", "pcp-run-ü", "--wrap", "sleep 60")
    held = c.sbatch("-J", "pcp-held", "--hold", "--wrap", "true")
    later = c.sbatch("-J", "pcp-later", "-p", "long", "--begin=now+1hour", "--wrap", "true")
    ours = (running, held, later)
    try:
        c.wait_for(lambda: c.job(running)["JobState"] == "RUNNING", 40, "the job did not start")
        with installed_agent("hpcjob", hpcjob_config(c)):
            wait_for(lambda: set(ours) <= set(_pminfo_values("hpc.job.job.state")), 30,
                     what="the jobs to appear in pminfo")
            states = _pminfo_values("hpc.job.job.state")
            scheduler = _pminfo_values("hpc.job.job.scheduler_state")
            partitions = _pminfo_values("hpc.job.job.partition")
            cpus = _pminfo_values("hpc.job.job.cpus")
            names = _pminfo_values("hpc.job.job.name")
            assert (states[running], states[held], states[later]) == \
                ('"running"', '"held"', '"pending"')
            for job_id in ours:
                truth = c.job(job_id)
                assert scheduler[job_id] == f'"{truth["JobState"]}"'
                assert partitions[job_id] == f'"{truth["Partition"]}"'
                assert int(cpus[job_id]) == int(truth["NumCPUs"])
            assert names[running] == '"pcp-run-ü"'

            # Partition tallies against sinfo (cluster view): CPUs in total and allocated.
            total = _pminfo_values("hpc.job.partition.cpus.total")
            sinfo = c.run("sinfo", "-h", "-o", "%R %C").split()
            for part, counts in zip(sinfo[0::2], sinfo[1::2], strict=True):
                _allocated, _idle, _other, all_cpus = (int(n) for n in counts.split("/"))
                assert int(total[part]) == all_cpus

            # Help for every job metric, and labels Grafana can filter on.
            help_text = run_pcp("pminfo", "-T", "hpc.job.job").stdout
            assert help_text.count("Help:") == help_text.count("hpc.job.job."), help_text[:2000]
            assert "Help:\nError" not in help_text
            labels = run_pcp("pminfo", "-l", "hpc.job.job.state").stdout
            line = next(ln for ln in labels.splitlines() if f'"{running}"' in ln and "labels" in ln)
            got = json.loads(line.split("labels ", 1)[1])
            assert got["job"] == running and got["user"] == "root"

            # A job that ends leaves the running state within a few refreshes.
            c.run("scancel", running)
            wait_for(lambda: reader().fetch(["hpc.job.job.state"])["hpc.job.job.state"]
                     .get(running) in ("cancelled", None), 20, what="the cancelled job's state")
    finally:
        for job_id in ours:
            c.run("scancel", job_id, check=False)
