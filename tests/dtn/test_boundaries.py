"""The product apart from the lab: dtn_transfer runs without matplotlib and has no testbed
commands (what it may import: tests/common/test_imports.py); and nothing outside state.py
reaches into a RunState's lock or private counters."""
import ast
import os
import pathlib
import subprocess
import sys

from .conftest import ROOT
from .testbed_support import cli

PRODUCT = pathlib.Path(ROOT) / "dtn_transfer"
PRIVATE = {"_lock", "_bytes_at_start", "_published", "_last"}


def modules():
    return sorted(PRODUCT.rglob("*.py"))


def test_product_runs_without_matplotlib():
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "import dtn_transfer.cli, dtn_transfer.session\n"
            "lab = ('dtn_lab', 'matplotlib')\n"
            "loaded = [m for m, mod in sys.modules.items() if mod and m.startswith(lab)]\n"
            "assert not loaded, loaded\n")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": ROOT},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_product_command_has_no_lab_commands():
    listed = cli("--help")
    assert listed.returncode == 0 and "testbed" not in listed.stdout and "sweep" not in listed.stdout
    assert cli("testbed", "status").returncode == 2


def test_only_state_touches_run_state_internals():
    for path in modules():
        if path.name == "state.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
                owner = node.value
                assert isinstance(owner, ast.Name) and owner.id == "self", \
                    f"{path.relative_to(ROOT)}:{node.lineno} reaches into another object's {node.attr}"
