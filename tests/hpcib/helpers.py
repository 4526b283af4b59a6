"""Shared helpers for the hpcib tests: fixture roots, agents, reading fixture files."""
from __future__ import annotations

import os
import shutil

from pmdas.common.config import COMMON_OPTIONS, Config, validate
from pmdas.common.refresh import Published, Refresher
from pmdas.hpcib.collector import InfinibandAgent

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "ib")
TREES = ("mlx5", "mlx4", "hfi1", "bnxt_re", "quirks")
ROOT = "hpc.ib"


def tree(name: str) -> str:
    return os.path.join(FIXTURES, name)


def config(root: str, **options) -> Config:
    return Config(validate({"root": root, **options},
                           {**COMMON_OPTIONS, **InfinibandAgent.options}, "test"), None)


def refresher(root: str, **options) -> Refresher:
    return Refresher(InfinibandAgent(config(root, **options)))


def refresh(root: str, **options) -> Published:
    return refresher(root, **options).refresh_once()


def copy_tree(name: str, destination: str) -> str:
    """A writable copy of a fixture tree (symlinks kept as symlinks)."""
    target = os.path.join(destination, name)
    shutil.copytree(tree(name), target, symlinks=True)
    return target


def class_dir(root: str) -> str:
    return os.path.join(root, "sys", "class", "infiniband")


def port_file(root: str, ca: str, port: str | int, relative: str) -> str:
    return os.path.join(class_dir(root), ca, "ports", str(port), relative)


def read_int(root: str, ca: str, port: str | int, relative: str) -> int:
    with open(port_file(root, ca, port, relative), encoding="utf-8") as f:
        return int(f.read())


def write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def metric(published: Published, name: str):
    return published.values[f"{ROOT}.{name}"]
