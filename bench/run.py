"""Run named benchmarks: python bench/run.py NAME [NAME ...] [[--] OPTIONS ...] (no name: list them).

Arguments after the names (from the first one starting with ``-``, or after ``--``) go to
every named benchmark as its own command line, so ``bench/run.py dtn_throughput --repeat 5``
means what ``bench/dtn_throughput.py --repeat 5`` means.
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = {"__init__", "harness", "run"}


def names() -> list[str]:
    return sorted(f[:-3] for f in os.listdir(HERE) if f.endswith(".py") and f[:-3] not in SKIP)


def split_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """``[names..., options...]`` → (names, options); ``--`` also ends the names."""
    for i, arg in enumerate(argv):
        if arg == "--":
            return argv[:i], argv[i + 1:]
        if arg.startswith("-"):
            return argv[:i], argv[i:]
    return argv, []


def run_one(name: str, options: list[str]) -> None:
    """Run one benchmark's ``main`` as if it were the script: its own argv, not ours."""
    entry = importlib.import_module(f"bench.{name}").main
    saved = sys.argv
    sys.argv = [os.path.join(HERE, f"{name}.py"), *options]
    try:
        params = list(inspect.signature(entry).parameters)
        if params and params[0] == "argv":
            entry(options)
        else:
            entry()
    finally:
        sys.argv = saved


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print(__doc__)
        print("benchmarks:", " ".join(names()))
        return 0
    chosen, options = split_args(argv)
    unknown = [n for n in chosen if n not in names()]
    if unknown or not chosen:
        print(f"unknown benchmark(s): {' '.join(unknown) or '(none named)'}; known: {' '.join(names())}",
              file=sys.stderr)
        return 2
    for name in chosen:
        run_one(name, options)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
