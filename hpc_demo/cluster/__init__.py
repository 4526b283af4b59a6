"""A cluster on one machine (demo infrastructure, not part of the product): a head node, N
compute nodes and a logger node, each in its own namespaces (hpc_demo.namespace) on a bridge.

``hpc-demo cluster up|down|status|fault``.  It lives in hpc-demo, not hpc-pcp: it fakes
the hardware (Lustre, InfiniBand trees that move) and runs a throw-away Slurm, which a
production site never wants from its monitoring package.
"""
