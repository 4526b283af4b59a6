"""hpcdtn: PCP agent for dtn-transfer runs (per run and per DTN node pair) and,
optionally, GridFTP server transfer logs (per remote host).  Metrics under hpc.dtn.*."""
