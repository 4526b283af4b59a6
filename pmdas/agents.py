"""The registry of pcp-hpc agents: pmcd.conf label → where its Agent class lives.

Product code below the admin command (the namespace listing, the refresh process) needs
it too, so it lives here rather than in ``hpc_pcp``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from pmdas.common.agent import Agent


@dataclass(frozen=True)
class AgentEntry:
    name: str           # pmcd.conf label
    module: str         # python -m target
    cls: str            # Agent subclass in <module>.collector
    summary: str

    def load(self) -> type[Agent]:
        return getattr(importlib.import_module(f"{self.module}.collector"), self.cls)


AGENTS: dict[str, AgentEntry] = {e.name: e for e in [
    AgentEntry("hpcjob", "pmdas.hpcjob", "JobAgent", "Slurm and PBS jobs, nodes, scheduler (hpc.job.*)"),
    AgentEntry("hpclustre", "pmdas.hpclustre", "LustreAgent",
               "Lustre clients, servers, per-job I/O (hpc.lustre.*)"),
    AgentEntry("hpcib", "pmdas.hpcib", "InfinibandAgent", "InfiniBand, RoCE, Omni-Path ports (hpc.ib.*)"),
    AgentEntry("hpcbpftrace", "pmdas.hpcbpftrace", "BpftraceAgent",
               "curated and admin-added bpftrace scripts (hpc.bpftrace.*)"),
    AgentEntry("hpcdtn", "pmdas.hpcdtn", "DtnAgent", "dtn-transfer runs and GridFTP servers (hpc.dtn.*)"),
    AgentEntry("hpcalarm", "pmdas.hpcalarm", "AlarmAgent",
               "state of the pcp-hpc pmie alarm rules (hpc.alarm.*)"),
    AgentEntry("hpcsample", "pmdas.hpcsample", "SampleAgent",
               "reference agent used by the tests (hpc.sample.*)"),
]}
