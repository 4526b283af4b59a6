"""Demo node hook: serve the runs of every dtn-transfer started on this machine."""
from __future__ import annotations

import os


def prepare(directory: str) -> dict:
    runs = os.path.join(os.environ.get("DTN_TRANSFER_STATE_DIR", "/var/lib/pcp-hpc/dtn"), "runs")
    os.makedirs(runs, exist_ok=True)
    return {"runs_directory": runs, "interval": 1}
