"""pcp-hpc performance metrics domain agents (PMDAs) for HPC clusters."""
