"""hpc-pcp: the admin command of pcp-hpc (install agents, status, checks)."""
