"""hpclustre: Lustre client, server, LNet and per-job I/O metrics under hpc.lustre.*.

Reads the files Lustre 2.10 (/proc) through 2.15 (/sys and debugfs) expose,
below a configurable root prefix, and goes beyond PCP's stock lustre agent:
OSC/MDC RPC statistics, OST/MDT counters, capacity, recovery and health, and
job_stats summed per job and filesystem with a cap on the number of jobs.
"""
