"""hpcjob: job-scheduler agent (Slurm or PBS) exporting hpc.job.*: jobs on this node with
their cgroup use, and, on one node per cluster, the cluster view (partitions, users,
accounts, nodes, scheduler health)."""
