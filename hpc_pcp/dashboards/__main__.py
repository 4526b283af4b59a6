"""python -m hpc_pcp.dashboards [--check] [--out DIR]: write or verify the committed dashboards."""
from __future__ import annotations

import argparse
import sys

from . import DEFAULT_DIR, differences, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpc_pcp.dashboards", description=__doc__)
    parser.add_argument("--out", default=str(DEFAULT_DIR), help="directory of the JSON files")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the files differ from what the code generates")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences(args.out)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("regenerate with: python -m hpc_pcp.dashboards", file=sys.stderr)
        return 1 if problems else 0
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
