"""scripts/build-deb.sh from this tree: a complete sdist and wheel, and a Debian package for
nodes that carries only the product, depends only on Debian packages and lays the agents out
the PCP way.  (The wheel once left out pmdas.common, a directory without __init__.py, and an
installed agent failed with ModuleNotFoundError.)"""
from __future__ import annotations

import os
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from hpc_pcp.agents import AGENTS
from pmdas.common import shipped
from pmdas.common.config import COMMON_OPTIONS, load

TREE = shipped.source_tree()
PRODUCT = ("pmdas", "hpc_pcp", "dtn_transfer")
EVERY_PACKAGE = (*PRODUCT, "hpc_demo", "dtn_lab")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    assert TREE is not None, "these tests build from a checkout"
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(["bash", str(TREE / "scripts" / "build-deb.sh"), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    found = {kind: sorted(out.glob(pattern)) for kind, pattern in
             (("sdist", "pcp-hpc-*.tar.gz"), ("wheel", "pcp_hpc-*.whl"), ("deb", "pcp-hpc_*_all.deb"))}
    assert all(len(paths) == 1 for paths in found.values()), found
    unpacked = out / "deb"
    subprocess.run(["dpkg-deb", "-R", str(found["deb"][0]), str(unpacked)], check=True)
    return {**{kind: paths[0] for kind, paths in found.items()}, "unpacked": unpacked}


def _modules(top: str) -> set[str]:
    """Every .py file of a package in the tree, relative to the tree."""
    return {str(p.relative_to(TREE)) for p in (TREE / top).rglob("*.py") if "__pycache__" not in p.parts}


def _shipped_files() -> set[str]:
    out = set()
    for name in shipped.SHIPPED:
        for path in (TREE / name).rglob("*"):
            if path.is_file() and (name != shipped.GRAFANA_DASHBOARDS or path.suffix == ".json") \
                    and (name != shipped.BPFTRACE_SCRIPTS or path.suffix == ".bt"):
                out.add(str(path.relative_to(TREE)))
    return out


def test_the_wheel_has_every_module_and_every_shipped_file(built):
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    for top in EVERY_PACKAGE:
        assert _modules(top) - names == set(), f"modules of {top} missing from the wheel"
    assert "pmdas/common/__init__.py" in names
    data = {n.split("/share/pcp-hpc/", 1)[1] for n in names if "/share/pcp-hpc/" in n}
    assert data == _shipped_files()
    assert {f"pmdas/{a}/metrics.golden" for a in AGENTS} <= names


def test_the_sdist_builds_that_wheel(built):
    names = {n.split("/", 1)[1] for n in tarfile.open(built["sdist"]).getnames() if "/" in n}
    assert {"setup.py", "MANIFEST.in", "scripts/build-deb.sh", "packaging/stage.py"} <= names
    assert _shipped_files() <= names and _modules("pmdas") <= names


def test_the_debian_package_carries_the_product_only(built):
    root = built["unpacked"]
    packages = root / "usr/lib/python3/dist-packages"
    tops = {p.name for p in packages.iterdir() if not p.name.endswith(".dist-info")}
    assert tops == set(PRODUCT)
    for top in PRODUCT:
        packaged = {str(p.relative_to(packages)) for p in (packages / top).rglob("*.py")}
        assert packaged == _modules(top)
    assert not list(root.rglob("__pycache__")), "byte code belongs to py3compile at install time"
    assert {str(p.relative_to(root / "usr/share/pcp-hpc")) for p in
            (root / "usr/share/pcp-hpc").rglob("*") if p.is_file()} == _shipped_files()
    assert sorted(os.listdir(root / "usr/bin")) == ["dtn-transfer", "hpc-pcp"]
    for command in ("hpc-pcp", "dtn-transfer"):
        assert (root / "usr/bin" / command).read_text().startswith("#!/usr/bin/python3 -I\n")


def test_the_debian_package_depends_on_debian_packages_only(built):
    control = dict(line.split(": ", 1) for line in
                   (built["unpacked"] / "DEBIAN/control").read_text().splitlines() if ": " in line)
    depends = {d.strip().split()[0] for d in control["Depends"].split(",")}
    assert depends == {"python3", "pcp", "python3-pcp", "python3-yaml", "python3-click",
                       "python3-clustershell"}
    assert control["Recommends"] == "bpftrace, python3-redis"
    assert control["Version"] in built["deb"].name


def test_every_agent_lands_the_pcp_way(built):
    root = built["unpacked"]
    for name, entry in AGENTS.items():
        directory = root / "var/lib/pcp/pmdas" / name
        assert {p.name for p in directory.iterdir()} == \
            {"Install", "Remove", "pmns", "domain.h", "root", f"pmda{name}"}
        wrapper = (directory / f"pmda{name}").read_text()
        assert f'exec /usr/bin/python3 -I -m {entry.module} "$@"' in wrapper
        for script in ("Install", "Remove", f"pmda{name}"):
            assert os.stat(directory / script).st_mode & 0o777 == 0o755
    for script in ("prerm", "postrm", "postinst"):
        text = (root / "DEBIAN" / script).read_text()
        assert f'AGENTS="{" ".join(AGENTS)}"' in text


def test_the_example_configurations_are_conffiles_that_mean_the_defaults(built):
    root = built["unpacked"]
    conffiles = (root / "DEBIAN/conffiles").read_text().split()
    # Examples only: /etc/pcp/hpc/<agent>.yaml is the site's (see packaging/stage.py).
    assert conffiles == sorted(f"/etc/pcp/hpc/{name}.yaml.example" for name in AGENTS)
    for name, entry in AGENTS.items():
        agent = entry.load()
        example = load(name, agent.options, str(root / f"etc/pcp/hpc/{name}.yaml.example"))
        assert dict(example) == dict(load(name, agent.options, os.devnull)), name
        text = (root / f"etc/pcp/hpc/{name}.yaml.example").read_text()
        for key in {**COMMON_OPTIONS, **agent.options}:
            assert f"# {key}:" in text, f"{name}.yaml does not show {key}"
