"""The abuse suite's figures: what each case tried and what harm it saw.

Every case runs inside ``watch(path, agents)``: before the hostile inputs it notes each named
agent's process and pmcd's status for it, and lists the directories around the inputs; after,
it counts

  crashes    an agent's process that died or changed (pmcd restarted it, or it is gone)
  dropped    an agent pmcd no longer serves (pmcd.agent.status not 0, or no instance)
  commands   files the payloads' commands would create (``touch <canary>/PWNED-*``)
  outside    files that appeared where nothing may write: in the canary directory that
             path-traversal payloads aim at (``ESCAPED-*``), or in a watched directory

then adds them to the session's ledger and fails the case if any is not 0.  The ledger is
written as JSON and summed up at the end of the run (conftest.py).
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

HARMS = ("crashes", "commands", "dropped", "outside")


class Inconclusive(Exception):
    """Another test spoiled the case (not an AssertionError: an xfail never absorbs it)."""


@dataclass
class Figures:
    inputs: int = 0
    crashes: int = 0
    commands: int = 0
    dropped: int = 0
    outside: int = 0
    cases: int = 0
    interfered: int = 0         # cases another test spoiled (it re-installed the agent)
    findings: list[str] = field(default_factory=list)

    def add(self, other: Figures) -> None:
        for name in ("inputs", "cases", "interfered", *HARMS):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.findings += other.findings


class Ledger:
    """Figures per path a node user or a remote client controls, for the whole session."""

    def __init__(self) -> None:
        self.paths: dict[str, Figures] = {}
        self.started = time.monotonic()

    def add(self, path: str, figures: Figures) -> None:
        self.paths.setdefault(path, Figures()).add(figures)

    def total(self) -> Figures:
        out = Figures()
        for figures in self.paths.values():
            out.add(figures)
        return out

    def summary_line(self) -> str:
        t = self.total()
        return (f"abuse: {t.inputs} inputs, {t.crashes} crashes, {t.commands} commands run, "
                f"{t.dropped} agents dropped, {t.outside} files outside")

    def report(self) -> dict:
        return {"summary": self.summary_line(), "wall_seconds": round(time.monotonic() - self.started, 1),
                "total": asdict(self.total()),
                "paths": {path: asdict(f) for path, f in sorted(self.paths.items())}}

    def write(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.report(), f, indent=1)
            f.write("\n")


LEDGER = Ledger()


# -- what is watched -------------------------------------------------------------------
def agent_pid(name: str) -> int | None:
    """The pid of the agent process this machine's pmcd runs for ``name`` (not its refresh
    child, nor an agent of another pmcd: a container's or a matrix node's)."""
    from tests.harness.pcp import pmcd_agents
    agents = pmcd_agents(name)
    return agents[0] if agents else None


def cmdline(pid: int | None) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except (OSError, TypeError):
        return b""


def _pmcd_pid() -> int | None:
    from tests.harness.pcp import reader
    try:
        return reader().fetch(["pmcd.pid"])["pmcd.pid"]
    except Exception:  # pmcd not answering at all
        return None


def pmcd_conf_line(name: str) -> str:
    """The agent's line in pmcd.conf: whose configuration (-c) pmcd runs it with."""
    path = os.environ.get("PCP_PMCDCONF_PATH", "/etc/pcp/pmcd/pmcd.conf")
    with open(path, encoding="utf-8", errors="replace") as f:
        return next((line.strip() for line in f if line.split()[:1] == [name]), "")


def pmcd_agents() -> dict[str, int]:
    """pmcd's status per agent it runs (0: running)."""
    from tests.harness.pcp import reader
    return dict(reader().fetch(["pmcd.agent.status"])["pmcd.agent.status"] or {})


def listing(directories: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Every path below ``directories`` (not following links) → (mtime ns, size)."""
    out = {}
    for top in directories:
        for here, dirs, files in os.walk(top):
            for name in dirs + files:
                path = os.path.join(here, name)
                with contextlib.suppress(OSError):
                    st = os.lstat(path)
                    out[path] = (st.st_mtime_ns, st.st_size)
    return out


class Canary:
    """A world-writable directory the payloads' commands and escapes aim at; nothing ever
    belongs in it.  World-writable so that an agent running as the pcp user could still be
    caught writing there."""

    def __init__(self) -> None:
        self.directory = f"/tmp/hpc-abuse-canary-{secrets.token_hex(6)}"
        os.mkdir(self.directory)
        os.chmod(self.directory, 0o1777)

    def command(self, tag: str) -> str:
        """A shell command that leaves evidence if it ever runs."""
        return f"touch {self.directory}/PWNED-{tag}"

    def escape(self, tag: str, depth: int = 12) -> str:
        """A relative path that climbs out of any directory into the canary."""
        return "../" * depth + self.directory.lstrip("/") + f"/ESCAPED-{tag}"

    def found(self) -> tuple[list[str], list[str]]:
        names = sorted(os.listdir(self.directory))
        escaped = [n for n in names if n.startswith("ESCAPED-")]
        return [n for n in names if n not in escaped], escaped

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class Case:
    """What one case tried; ``tried`` is called for each hostile input."""

    path: str
    canary: Canary
    directories: list[str]
    inputs: int = 0
    before: dict[str, tuple[int, int]] = field(default_factory=dict)

    def tried(self, count: int = 1) -> None:
        self.inputs += count

    def written(self) -> None:
        """The test has written its inputs: from now on nothing in the watched directories
        may change (what the test itself wrote is not counted against the agent)."""
        self.before = listing(self.directories)


@contextlib.contextmanager
def watch(path: str, agents: Iterable[str] = (), directories: Iterable[str] = (),
          may_write: Iterable[str] = ()) -> Iterator[Case]:
    """Run a case; count and assert its harms (see the module docstring).  ``directories``
    must see no new or changed entry except below ``may_write``."""
    agents, directories, may_write = list(agents), list(directories), tuple(may_write)
    canary = Canary()
    case = Case(path, canary, directories)
    pids = {name: agent_pid(name) for name in agents}
    argvs = {name: (cmdline(pids[name]), pmcd_conf_line(name)) for name in agents}
    pmcd = _pmcd_pid() if agents else None
    status = pmcd_agents() if agents else {}
    for name in agents:
        assert pids[name] and status.get(name) == 0, f"{name} is not running before the case: {status}"
    case.written()
    failed = True
    try:
        yield case
        failed = False
    finally:
        figures = Figures(inputs=case.inputs, cases=1)
        if agents and _pmcd_pid() != pmcd:
            # pmcd was restarted (other developers' installs do that): every agent with it.
            # The case proves nothing; it fails as inconclusive, never passes.
            figures.interfered += 1
            figures.findings.append(f"pmcd restarted during the case (pid {pmcd} -> {_pmcd_pid()})")
        elif agents:
            status = pmcd_agents()
            for name in agents:
                now = agent_pid(name)
                argv, line = argvs[name]
                if not pmcd_conf_line(name) or (now and cmdline(now) != argv) or \
                        (now is None and pmcd_conf_line(name) != line):
                    # Tests of other developers share this pmcd: one installed its own
                    # configuration of the agent meanwhile.  Not a crash; the case proves nothing.
                    figures.interfered += 1
                    figures.findings.append(f"{name}: removed or replaced by another test "
                                            f"({cmdline(now)!r}, {pmcd_conf_line(name)!r})")
                    continue
                if now != pids[name]:
                    figures.crashes += 1
                    figures.findings.append(f"{name}: agent process {pids[name]} is now {now}")
                if status.get(name) != 0:
                    figures.dropped += 1
                    figures.findings.append(f"{name}: pmcd.agent.status {status.get(name)}")
        commands, escaped = canary.found()
        figures.commands, figures.outside = len(commands), len(escaped)
        figures.findings += [f"command ran: {n}" for n in commands] + [f"escaped: {n}" for n in escaped]
        for p, stamp in listing(directories).items():
            if case.before.get(p) != stamp and not p.startswith(may_write or ("\0",)):
                figures.outside += 1
                figures.findings.append(f"written outside: {p}")
        canary.remove()
        LEDGER.add(path, figures)
        if figures.interfered:
            raise Inconclusive(f"{path}: {figures.findings}")
        if not failed:
            assert all(getattr(figures, h) == 0 for h in HARMS), \
                f"{path}: {figures.findings} after {case.inputs} inputs"


def served(metric: str) -> dict[str, str]:
    """{instance name: value text} as pminfo (PCP's C library) shows them.  Not PcpReader:
    Debian 12's PCP Python binding drops every non-ASCII character of an instance name
    (decode('ascii', 'ignore')), so 'runé' and 'run' would look like one instance."""
    import re

    from tests.harness.pcp import run_pcp
    out = run_pcp("pminfo", "-f", metric)
    assert out.returncode == 0, out.stderr
    return dict(re.findall(r'^\s*inst \[\d+ or "(.*)"\] value (.*)$', out.stdout, re.M))


def wait_served(predicate, root: str, what: str, timeout: float = 60):
    """wait_for with what the agent and pmcd said when it times out (a loaded shared machine
    makes refreshes slow; the diagnostics tell that from a hostile input's harm)."""
    from tests.harness.pcp import agent_diagnostics, wait_for
    try:
        return wait_for(predicate, timeout, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{agent_diagnostics(root)}") from None
