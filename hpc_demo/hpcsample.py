"""Demo sources for the sample agent: a few value files that drift."""
from __future__ import annotations

import os
import random


def prepare(directory: str) -> dict:
    values = os.path.join(directory, "values")
    os.makedirs(values, exist_ok=True)
    for name in ("temperature", "load", "queue_depth"):
        path = os.path.join(values, name)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(f"{random.uniform(1, 50):.2f}\n")
    return {"directory": values, "interval": 5}


def advance(directory: str) -> None:
    values = os.path.join(directory, "values")
    for name in os.listdir(values):
        path = os.path.join(values, name)
        try:
            current = float(open(path).read())
        except (OSError, ValueError):
            current = 10.0
        with open(path + ".tmp", "w") as f:
            f.write(f"{max(0.0, current + random.uniform(-1, 1)):.2f}\n")
        os.replace(path + ".tmp", path)
