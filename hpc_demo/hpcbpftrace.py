"""Demo node hook: the curated default scripts on the real kernel (no fixture needed)."""
from __future__ import annotations

import os


def prepare(directory: str) -> dict:
    return {"script_dir": os.path.join(directory, "scripts"), "interval": 5}
