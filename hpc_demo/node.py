"""The demo node: every agent on bundled, moving sources, installed into the local pmcd.

Each agent may have a module here, ``hpc_demo.<agent>``, with ``prepare(directory) ->
config`` (build its sources under ``directory`` and return the agent's settings) and
``advance(directory)`` (move counters on, so the metrics change), optionally
``teardown(directory)``.  Capabilities join the demo by providing those functions.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import subprocess
import sys
import time

import yaml

from hpc_pcp import install as installer
from hpc_pcp.agents import available
from pmdas.common.config import config_dir

DEMO_ROOT = os.environ.get("HPC_PCP_DEMO_ROOT", "/var/lib/pcp-hpc/demo")
MARK = "# written by 'hpc-demo up'; removed by 'hpc-demo down'\n"
OLD_MARKS = ("# written by 'hpc-pcp demo up'; removed by 'hpc-pcp demo down'\n",)  # before hpc-demo


def demo_modules() -> dict[str, object]:
    """The demo module of every agent of this installation that has one (a broken demo
    module is an error, not an agent left out)."""
    out = {}
    for name in available():
        if importlib.util.find_spec(f"hpc_demo.{name}") is None:
            continue
        module = importlib.import_module(f"hpc_demo.{name}")
        if hasattr(module, "prepare"):
            out[name] = module
    return out


def _config_path(agent: str) -> str:
    return os.path.join(config_dir(), f"{agent}.yaml")


def _ours(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline() in (MARK, *OLD_MARKS)
    except OSError:
        return False


def up(echo=print) -> int:
    failures = 0
    os.makedirs(DEMO_ROOT, exist_ok=True)
    for name, module in demo_modules().items():
        directory = os.path.join(DEMO_ROOT, name)
        os.makedirs(directory, exist_ok=True)
        config = module.prepare(directory)
        path = _config_path(name)
        if os.path.exists(path) and not _ours(path):
            echo(f"{name}: keeping the admin's {path} (not a demo file)")
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(MARK)
                yaml.safe_dump(config, f, sort_keys=True)
        result = installer.install(name)
        echo(f"{name}: {'installed' if result.ok else 'FAILED'} (sources under {directory})")
        if not result.ok:
            failures += 1
            echo(result.output)
    start_ticker(echo)
    return failures


def start_ticker(echo=print, every: float = 5.0) -> None:
    pidfile = os.path.join(DEMO_ROOT, "ticker.pid")
    if _alive(pidfile):
        return
    log = open(os.path.join(DEMO_ROOT, "ticker.log"), "a")
    proc = subprocess.Popen([sys.executable, "-m", "hpc_demo.cli", "tick", "--every", str(every)],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    with open(pidfile, "w") as f:
        f.write(str(proc.pid))
    echo(f"demo sources advance every {every:g}s (pid {proc.pid})")


def _alive(pidfile: str) -> bool:
    try:
        pid = int(open(pidfile).read())
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def tick(every: float, count: int | None = None) -> None:
    modules = {n: m for n, m in demo_modules().items() if hasattr(m, "advance")}
    done = 0
    while count is None or done < count:
        for name, module in modules.items():
            try:
                module.advance(os.path.join(DEMO_ROOT, name))
            except Exception as exc:  # one agent's demo must not stop the others
                print(f"{name}: advance failed: {exc}", file=sys.stderr, flush=True)
        done += 1
        if count is None or done < count:
            time.sleep(every)


def down(echo=print) -> None:
    pidfile = os.path.join(DEMO_ROOT, "ticker.pid")
    if _alive(pidfile):
        os.kill(int(open(pidfile).read()), signal.SIGTERM)
    for name, module in demo_modules().items():
        installer.remove(name)
        path = _config_path(name)
        if _ours(path):
            os.unlink(path)
        if hasattr(module, "teardown"):
            module.teardown(os.path.join(DEMO_ROOT, name))
        echo(f"{name}: removed")
