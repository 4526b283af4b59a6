"""Run named benchmarks: python bench/run.py [NAME ...] (no name: list them)."""
from __future__ import annotations

import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = {"__init__", "harness", "run"}


def names() -> list[str]:
    return sorted(f[:-3] for f in os.listdir(HERE) if f.endswith(".py") and f[:-3] not in SKIP)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print(__doc__)
        print("benchmarks:", " ".join(names()))
        return 0
    unknown = [n for n in argv if n not in names()]
    if unknown:
        print(f"unknown benchmark(s): {' '.join(unknown)}; known: {' '.join(names())}", file=sys.stderr)
        return 2
    for name in argv:
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
