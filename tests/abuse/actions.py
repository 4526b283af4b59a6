"""pmie's alarm actions fed the instance names an agent really serves through pmcd.

The expansion is test_action_injection's (pmie's %h/%i/%v substitution); here the names are
not made up but fetched from the live agent, so a name the agent let through raw would run
its command in the shell pmie starts."""
from __future__ import annotations

import os
import subprocess

from hpc_pcp.alarm import Settings, _clear_action, _fire_action, load_catalogue
from tests.alarms.test_action_injection import expand


def run_rule_actions(family: str, names: list[str], workdir: str, command: tuple[str, ...] = (),
                     state: str = "", clear: bool = True) -> int:
    """Run every ``family.*`` rule's fire (and clear) action by sh with ``names`` as its
    instances; return how many actions ran.  The alarm command only records its input,
    unless ``command`` names the real one (writing ``state``)."""
    if not command:
        recorder = os.path.join(workdir, "alarm-recorder")
        with open(recorder, "w") as f:
            f.write(f'#!/bin/sh\ncat >> {workdir}/alarm-stdin\n')
        os.chmod(recorder, 0o755)
        command = (recorder,)
    state = state or os.path.join(workdir, "alarm-state")
    os.makedirs(os.path.join(state, "firing"), exist_ok=True)
    settings = Settings(state_dir=state, command=command)
    ran = 0
    for rule in load_catalogue():
        if not rule.name.startswith(family + "."):
            continue
        if clear:
            open(os.path.join(state, "firing", f"{rule.name}@node01"), "a").close()  # so clear runs
        bindings = [("node01", name, "42") for name in names]
        actions = [_fire_action(rule, settings)] + ([_clear_action(rule, settings)] if clear else [])
        for action in actions:
            subprocess.run(["sh", "-c", expand(action, bindings)], timeout=30, cwd=workdir,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            ran += 1
    assert ran, f"no {family}.* rule in the catalogue"
    return ran
