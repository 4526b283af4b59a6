"""Shared pytest setup: make the repo importable and expose the harness fixtures."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

pytest_plugins = ["tests.harness.pcp", "tests.services.slurm"]
