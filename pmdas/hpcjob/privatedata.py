"""What Slurm's PrivateData hides from the account hpcjob runs as.

hpcjob runs as the pcp user (pmdas/common/privilege.py), so slurmctld answers its squeue as
it answers any user.  With ``PrivateData=jobs`` in slurm.conf, squeue lists only the pcp
user's own jobs, that is none, and exits 0: measured with Slurm 22.05 (Debian 12), a node
running two jobs of other users looked empty.  A job list known to be partial is not served
(the job metrics are unavailable, with the reason in agent.source.error), rather than an
idle cluster that is not idle.  Any user may read the controller's settings with
``scontrol show config``; root and SlurmUser see every job whatever PrivateData says.
(A Slurm operator or administrator, set with sacctmgr, also sees them: run the agent as
that account with the ``user`` setting if PrivateData must stay on and the job metrics
are wanted.)
"""
from __future__ import annotations


def parse_show_config(text: str) -> tuple[frozenset[str], str]:
    """(PrivateData's words, lower case; SlurmUser's name) from ``scontrol show config``,
    whose lines read ``PrivateData             = jobs,usage`` and ``SlurmUser = slurm(64030)``.
    Raises ValueError if the text has no PrivateData line (not the output expected)."""
    private: frozenset[str] | None = None
    slurm_user = ""
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "PrivateData":
            words = {w.strip().lower() for w in value.split(",")}
            private = frozenset(words - {"", "none", "(null)"})
        elif key == "SlurmUser":
            slurm_user = value.split("(", 1)[0].strip()
    if private is None:
        raise ValueError("no PrivateData line")
    return private, slurm_user


def jobs_hidden(private: frozenset[str], slurm_user: str, account: str) -> str:
    """Why squeue run as ``account`` lists only some jobs, or "" if it lists them all."""
    if "jobs" not in private or account in ("root", slurm_user):
        return ""
    return (f"Slurm's PrivateData=jobs hides other users' jobs from {account}, the account "
            f"this agent runs as: job metrics unavailable (see the README: run it as root, "
            f"SlurmUser or a Slurm operator with the 'user' setting to export them)")
