"""The DTN lab: a testbed of namespaced DTN clusters, trials, sweeps and plots (``dtn-lab``).

Not part of the product: nothing in ``dtn_transfer`` imports it.
"""
