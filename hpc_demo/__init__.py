"""The demo node: moving sources for every agent, a private Slurm, the demo pmie.

Not part of the product: nothing in pmdas/, hpc_pcp/ or dtn_transfer/ imports it.
"""
