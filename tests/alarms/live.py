"""Run the generated rules with a real pmie against the real pmcd, for tier-2 alarm tests."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator

from hpc_pcp.alarm import Settings, configure, load_catalogue, render
from tests.harness.pcp import PCP_PATH, reader, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The lead wires 'alarm' into hpc-pcp; the module form works before and after that.
COMMAND = (sys.executable, "-m", "hpc_pcp.cli_alarm")


def rules_text(groups: list[str], state_dir: str, overrides: dict | None = None,
               hosts: list[str] | None = None) -> str:
    raw = {"groups": groups, "state_dir": state_dir, "command": list(COMMAND), "delta": "1 sec",
           "rules": overrides or {}, "hosts": hosts or []}
    rules, settings = configure(load_catalogue(), raw)
    assert isinstance(settings, Settings)
    return render(rules, settings)


@contextlib.contextmanager
def running_pmie(text: str, host: str | None = None) -> Iterator[str]:
    """Start pmie (foreground, 1 s delta) on ``text``; yield its log path; stop it after."""
    work = tempfile.mkdtemp(prefix="pmie-alarm-")
    rules = os.path.join(work, "rules.pmie")
    log = os.path.join(work, "pmie.log")
    with open(rules, "w", encoding="utf-8") as f:
        f.write(text)
    env = {**os.environ, "PATH": PCP_PATH + ":" + os.environ.get("PATH", ""),
           "PYTHONPATH": REPO, "PMCD_RECONNECT_TIMEOUT": "1"}
    argv = ["pmie", "-f", "-t", "1", "-c", rules, "-l", log]
    if host:
        argv += ["-h", host]
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # pmie and any action it is running
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def alarm_values(metric: str) -> dict:
    value = reader().fetch([f"hpc.alarm.{metric}"])[f"hpc.alarm.{metric}"]
    return {} if value is None else value


def wait_alarms(expected: dict[str, int], timeout: float = 40) -> dict:
    """Wait until hpc.alarm.firing has, for each rule:instance suffix, the given value."""
    seen: dict = {}

    def check():
        firing = alarm_values("firing")
        seen.update(firing=firing)
        found = {}
        for want in expected:
            rule, _, inst = want.partition("|")
            hits = [v for k, v in firing.items()
                    if k.startswith(rule + ":") and (k.endswith(":" + inst) if inst else True)]
            # 1: at least one matching alarm fires; 0: every matching alarm has cleared.
            found[want] = max(hits) if hits else None
        return firing if found == expected else None
    try:
        return wait_for(check, timeout, 0.5, what=f"hpc.alarm.firing to reach {expected}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; hpc.alarm.firing was {seen.get('firing')}") from None
