"""Where this installation keeps the data pcp-hpc ships beside its code.

The curated bpftrace scripts, the pmie rule catalogue, the Grafana dashboards and the
pmlogconf groups are plain files, not Python modules.  They sit at the top of the source
tree in a checkout, and under ``share/pcp-hpc`` once installed: ``<sys.prefix>/share/pcp-hpc``
for a wheel (a virtual env's prefix, or /usr for the Debian package, which puts them in
/usr/share/pcp-hpc).  Every reader asks here, so a package that forgets a directory fails
in one place with the places it looked, instead of each reader guessing its own path.
"""
from __future__ import annotations

import sys
from pathlib import Path

# The directories of shipped data, relative to the top of the source tree or to share/pcp-hpc.
BPFTRACE_SCRIPTS = "bpftrace_scripts"
PMIE_RULES = "pmie_rules"
GRAFANA_DASHBOARDS = "grafana_dashboards"
PMLOGCONF_GROUPS = "logger/pmlogconf"
SHIPPED = (BPFTRACE_SCRIPTS, PMIE_RULES, GRAFANA_DASHBOARDS, PMLOGCONF_GROUPS)

_SOURCE_TREE = Path(__file__).resolve().parents[2]
DEBIAN_SHARE = Path("/usr/share/pcp-hpc")      # the Debian package's, seen from any virtual env


def source_tree() -> Path | None:
    """The checkout this code runs from (editable install or plain PYTHONPATH), if it is one.

    An installed copy of the code lies in site-packages, whose parent holds no setup.py."""
    if (_SOURCE_TREE / "setup.py").is_file() and (_SOURCE_TREE / "pmdas" / "common").is_dir():
        return _SOURCE_TREE
    return None


def bases() -> list[Path]:
    """The places searched, first match wins: the checkout, then the interpreter's prefix,
    then the Debian package's /usr/share (a virtual env made over the system Python)."""
    tree = source_tree()
    places = [tree] if tree else []
    places += [Path(sys.prefix) / "share" / "pcp-hpc", DEBIAN_SHARE]
    return list(dict.fromkeys(places))


def data_dir(name: str) -> Path:
    """The directory of shipped data ``name`` (one of SHIPPED) in this installation.

    When no installation has it, the path it would have in the first place searched, so
    that the reader's error names a real candidate; ``missing()`` lists every place."""
    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not shipped data (known: {', '.join(SHIPPED)})")
    candidates = [base / name for base in bases()]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def missing() -> list[str]:
    """One line per shipped directory that no searched place has (empty when complete)."""
    return [f"{name}: not in {', '.join(str(base) for base in bases())}"
            for name in SHIPPED if not data_dir(name).is_dir()]
