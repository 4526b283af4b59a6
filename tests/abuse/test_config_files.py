"""Configuration files (/etc/pcp/hpc/<agent>.yaml or the -c path): YAML bombs, nesting past
Python's stack, wrong types, infinities, text that is not UTF-8, huge numbers, tags that would
construct Python objects.  Every agent must start on defaults and say why, never die at
start (pmcd would drop it) nor run a command."""
from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpc_pcp import install as installer
from pmdas.agents import AGENTS
from pmdas.common.start import build_agent
from tests.harness.pcp import reader, wait_refreshed

from .ledger import LEDGER, Figures, watch


def _bomb(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for k in range(1, levels):
        lines.append(f"l{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * 9) + "]")
    return "\n".join(lines) + f"\ninterval: *l{levels - 1}\n"


def hostile_files(canary) -> dict[str, bytes]:
    touch = canary.command("config")
    return {
        "bomb": _bomb().encode(),
        "bomb_value": ("root: &r [" + ", ".join(["*x"] * 9) + "]\n").replace("*x", '"x"').encode()
        + _bomb().replace("interval", "timeout").encode(),
        "deep_list": ("interval: " + "[" * 50_000 + "]" * 50_000 + "\n").encode(),
        "deep_map": ("interval: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n").encode(),
        "latin1": b"interval: 1\nroot: caf\xe9\n",
        "python_tag": f"interval: !!python/object/apply:os.system ['{touch}']\n".encode(),
        "shell_text": f"root: $({touch})\ninterval: 1\n".encode(),
        "wrong_types": b"interval: [1]\ntimeout: {a: 1}\nroot: 5\n",
        "nan": b"interval: .nan\n",
        "inf": b"interval: .inf\ntimeout: .inf\n",
        "negative": b"interval: -1\ntimeout: 0\n",
        "long_int": b"interval: " + b"9" * 5000 + b"\n",
        "nul": b"interval: 1\x00\n",
        "not_mapping": b"- interval\n- 1\n",
        "unknown_key": b"intervall: 1\n",
        "empty": b"",
        "bool_interval": b"interval: yes\n",
    }


def _write(directory: str, files: dict[str, bytes]) -> dict[str, str]:
    paths = {}
    for name, text in files.items():
        paths[name] = os.path.join(directory, f"{name}.yaml")
        with open(paths[name], "wb") as f:
            f.write(text)
    return paths


def test_every_agent_starts_on_defaults_from_any_hostile_file(abuse_dir):
    with watch("configuration files", [], [abuse_dir]) as case:
        paths = _write(abuse_dir, hostile_files(case.canary))
        case.written()
        for entry in AGENTS.values():
            agent_class = entry.load()
            for name, path in paths.items():
                agent, error = build_agent(agent_class, path, agent_class.domain)
                case.tried()
                assert bool(error) == (name not in ("empty", "shell_text")), (entry.name, name, error)
                assert "\n" not in error
                assert 0 < float(agent.config.interval) < float("inf")


@contextlib.contextmanager
def installed_with_file(name: str, path: str):
    """The agent installed in pmcd with ``-c path`` (a file the test wrote as it is)."""
    result = installer.install(name, extra_args=f"-c {path}")
    try:
        assert result.ok, result.output
        wait_refreshed(AGENTS[name].load().root, 1)
        yield
    finally:
        installer.remove(name)


@pytest.mark.pcp
@pytest.mark.usefixtures("pmcd")
@pytest.mark.parametrize("name", ["deep_list"])
def test_a_hostile_file_leaves_the_agent_running_in_pmcd(abuse_dir, name):
    """Before the fix, this file (like latin1 and long_int) stopped the agent at start: pmcd
    never served it.  One through pmcd; every file and agent in-process above."""
    from .ledger import Canary
    canary = Canary()
    path = _write(abuse_dir, {name: hostile_files(canary)[name]})[name]
    canary.remove()
    with installed_with_file("hpcsample", path), \
            watch("configuration files", ["hpcsample"], [abuse_dir]) as case:
        case.tried()
        got = reader().fetch(["hpc.sample.agent.up", "hpc.sample.agent.config_error"])
        # it runs and answers on defaults (up is 0 only for want of the default sample directory)
        assert got["hpc.sample.agent.up"] is not None
        assert got["hpc.sample.agent.config_error"].startswith(path), got


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_text_is_a_configuration_or_one_sentence(tmp_path_factory, text):
    LEDGER.add("configuration files", Figures(inputs=1))
    path = tmp_path_factory.mktemp("cfg") / "hpcsample.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    agent, error = build_agent(AGENTS["hpcsample"].load(), str(path), 415)
    assert "\n" not in error and 0 < float(agent.config.interval) < float("inf")
