"""No instance name can break out of a pmie alarm action, for every rule of every family.

pmie pastes %h, %i and %v verbatim into the shell command of an action; ours carries them on
standard input in a quoted here-document, so only a newline followed by the terminator line
could end it early and make the shell run what follows.  Instance names reach pmie from our
agents only as the shared preparer shows them (pmdas/common/names.py): no control character
survives that.  Here each rule's fire and clear actions are expanded as pmie expands them, with
hostile names as the preparer shows them, and run by sh: only the alarm command runs, and it
receives every name whole.
"""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from hpc_pcp.alarm import HEREDOC, Settings, _clear_action, _fire_action, load_catalogue
from pmdas.common.names import renamed

HOSTILE = [
    f"r1\n{HEREDOC}\ntouch {{marker}}\n",
    f"r2\r\n{HEREDOC}\r\ntouch {{marker}}",
    f"r3\u2028{HEREDOC}\u2028touch {{marker}}",
    "r4 $(touch {marker}) `touch {marker}` ; touch {marker} '\"%i",
    "r5\ud800\x1b[2J\x00",
    f"{HEREDOC}",
]
_PIECE = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _unescape(piece: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), piece)


def expand(action: str, bindings: list[tuple[str, str, str]]) -> str:
    """The command pmie hands to sh: argument strings joined, those holding %h/%i/%v repeated
    for each satisfying instance (pmie's expansion of some_inst bindings)."""
    assert action.startswith("shell ")
    out = []
    for piece in map(_unescape, _PIECE.findall(action)):
        if "%" in piece:
            out += [piece.replace("%h", h).replace("%i", i).replace("%v", v) for h, i, v in bindings]
        else:
            out.append(piece)
    return "".join(out)


@pytest.fixture()
def recorder(tmp_path):
    script = tmp_path / "alarm"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {tmp_path}/argv\ncat >> {tmp_path}/stdin\n')
    script.chmod(0o755)
    return script


def _shown(names: list[str]) -> list[str]:
    changes = renamed(names)
    return [changes.get(n, n) for n in names]


@pytest.mark.parametrize("rule", load_catalogue(), ids=lambda r: r.name)
def test_no_name_breaks_out_of_any_action(rule, tmp_path, recorder):
    marker = tmp_path / "broken-out"
    raw = [name.replace("{marker}", str(marker)) for name in HOSTILE]
    shown = _shown(raw)
    settings = Settings(state_dir=str(tmp_path / "state"), command=(str(recorder),))
    (tmp_path / "state" / "firing").mkdir(parents=True)
    (tmp_path / "state" / "firing" / f"{rule.name}@node01").touch()   # so the clear action runs
    bindings = [("node01", name, "42") for name in shown]
    for action in (_fire_action(rule, settings), _clear_action(rule, settings)):
        command = expand(action, bindings)
        subprocess.run(["sh", "-c", command], check=True, timeout=30, cwd=tmp_path,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert not marker.exists(), "an instance name ran a command"
    argv = (tmp_path / "argv").read_text().splitlines()
    assert [a.split()[0] for a in argv] == ["fire", "clear"], argv
    fed = (tmp_path / "stdin").read_text().splitlines()
    assert [line.split("\t")[1] for line in fed if line.count("\t") == 2] == shown


def test_the_threat_is_real_without_the_shared_names(tmp_path, recorder):
    """The same expansion with a raw name does run the planted command: the protection is
    the framework's, and this test would see it go."""
    marker = tmp_path / "broken-out"
    rule = load_catalogue()[0]
    settings = Settings(state_dir=str(tmp_path / "state"), command=(str(recorder),))
    command = expand(_fire_action(rule, settings), [("node01", HOSTILE[0].format(marker=marker), "1")])
    subprocess.run(["sh", "-c", command], timeout=30, cwd=tmp_path,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert marker.exists()
    os.unlink(marker)
