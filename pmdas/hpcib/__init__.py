"""hpcib: InfiniBand, RoCE and Omni-Path port metrics from sysfs (hpc.ib.*).

Unlike PCP's stock infiniband agent it needs neither libibmad/libibumad nor
/sys/class/infiniband_mad, so it also works on RoCE-only hosts."""
