"""The pinned namespace: every metric an agent exports, with its PMID, as one text listing.

PMIDs are the agents' interface to history: PCP archives, pmlogger configurations and pmie
rules record them.  Each agent commits the listing of its table next to its code
(``pmdas/<agent>/metrics.golden``), and a test compares the table against it, so a change
of PMID, type, semantics, units or instance domain shows up in review as a diff of that
file.  Pure Python: no PCP import, so the check runs anywhere.

    python -m pmdas.common.listing            # differences against the committed listings
    python -m pmdas.common.listing --write    # write them again (after adding a metric)
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterable, Sequence

from ..agents import AGENTS
from .agent import Agent
from .namespace import AgentTable
from .table import Units

HEADER = ("# The pinned namespace of {root}.* (agent {name}, domain {domain}): generated from the\n"
          "# metric table by 'python -m pmdas.common.listing --write'; a test fails on any difference.\n"
          "# A PMID, once listed, never changes; a removed metric leaves its number unused.\n"
          "# name  pmid  type  semantics  units  indom\n")

_SPACE = ("byte", "Kbyte", "Mbyte", "Gbyte", "Tbyte", "Pbyte", "Ebyte")
_TIME = ("nsec", "usec", "msec", "sec", "min", "hour")


def units_text(units: Units) -> str:
    """Units as pminfo -d prints them in spirit ("byte / sec", "count", "none")."""
    def dimension(power: int, word: str) -> list[str]:
        return [word] if power == 1 else [f"{word}^{power}"] if power else []

    up: list[str] = []
    down: list[str] = []
    count = "count" if units.scale_count == 0 else f"count x 10^{units.scale_count}"
    for power, word in ((units.space, _SPACE[units.scale_space] if units.space else ""),
                        (units.time, _TIME[units.scale_time] if units.time else ""),
                        (units.count, count)):
        if power > 0:
            up += dimension(power, word)
        elif power < 0:
            down += dimension(-power, word)
    if not up and not down:
        return "none"
    text = " ".join(up) if up else "1"
    return f"{text} / {' '.join(down)}" if down else text


def lines(table: AgentTable) -> list[str]:
    """One line per metric, sorted by name: what review and the test compare."""
    serials = {i.name: i.serial for i in table.indoms}
    out = []
    for metric in sorted(table.metrics, key=lambda m: m.name):
        indom = (f"{table.domain}.{serials[metric.indom]}({metric.indom})" if metric.indom
                 else "PM_INDOM_NULL")
        out.append(f"{table.root}.{metric.name}  {table.domain}.{metric.cluster}.{metric.item}  "
                   f"{metric.type}  {metric.semantics}  {units_text(metric.units)}  {indom}")
    return out


RETIRED = "# retired: "


def render(table: AgentTable, retired: Sequence[str] = ()) -> str:
    """The listing; ``retired`` lines (metrics no longer exported) are kept at its end, so
    their PMIDs are never given to another metric."""
    head = HEADER.format(root=table.root, name=table.name, domain=table.domain)
    tail = "".join(f"{RETIRED}{line}\n" for line in retired)
    return head + "\n".join(lines(table)) + "\n" + tail


def read_listing(path: str) -> tuple[list[str], list[str]]:
    """(metric lines, retired metric lines) of a committed listing; none if there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().splitlines()
    except FileNotFoundError:
        return [], []
    current = [line for line in text if line and not line.startswith("#")]
    retired = [line[len(RETIRED):] for line in text if line.startswith(RETIRED)]
    return current, retired


def _pmid_of(line: str) -> str:
    return line.split()[1]


def rewrite(agent_class: type[Agent], path: str | None = None) -> str:
    """The listing as it should be written now: metrics that left the table since the last
    listing become retired lines."""
    table = AgentTable.of(agent_class)
    listed, retired = read_listing(path or golden_path(agent_class))
    names = {table.full_name(m) for m in table.metrics}
    retired = [*retired, *(line for line in listed if line.split()[0] not in names)]
    return render(table, retired)


def golden_path(agent_class: type[Agent]) -> str:
    module = importlib.import_module(agent_class.__module__)
    return os.path.join(os.path.dirname(os.path.abspath(module.__file__ or "")), "metrics.golden")


def agent_classes() -> list[type[Agent]]:
    """Every agent of the product, from the registry of agents."""
    return [entry.load() for entry in AGENTS.values()]


def differences(agent_class: type[Agent], path: str | None = None) -> list[str]:
    """How the agent's table differs from its committed listing: '-' listed, '+' now, '!' a
    retired metric's PMID given to another metric."""
    now = lines(AgentTable.of(agent_class))
    listed, retired = read_listing(path or golden_path(agent_class))
    listed_set, now_set = set(listed), set(now)
    out = [f"- {line}" for line in listed if line not in now_set]
    out += [f"+ {line}" for line in now if line not in listed_set]
    used = {_pmid_of(line): line.split()[0] for line in now}
    out += [f"! {line}  (PMID now used by {used[_pmid_of(line)]})" for line in retired
            if _pmid_of(line) in used]
    return out


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pmdas.common.listing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write every agent's listing again")
    args = parser.parse_args(list(argv) if argv is not None else None)
    status = 0
    for agent_class in agent_classes():
        if args.write:
            text = rewrite(agent_class)
            with open(golden_path(agent_class), "w", encoding="utf-8") as f:
                f.write(text)
            continue
        diff = differences(agent_class)
        if diff:
            status = 1
            print(f"{agent_class.name}: {golden_path(agent_class)} differs from the table:")
            print("\n".join(f"  {line}" for line in diff))
    return status


if __name__ == "__main__":
    sys.exit(main())
