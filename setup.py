"""pcp-hpc: PCP agents, alarm rules and dashboards for HPC clusters, and dtn-transfer."""
import glob
import os

from setuptools import find_packages, setup

# Product packages first (what the Debian package ships to nodes: scripts/build-deb.sh),
# then the demo and the DTN lab, which the wheel carries for test and lab machines.
PRODUCT = ("pmdas", "hpc_pcp", "dtn_transfer")
PACKAGES = (*PRODUCT, "hpc_demo", "dtn_lab")


def data(directory: str, pattern: str = "*") -> tuple[str, list[str]]:
    files = sorted(p for p in glob.glob(f"{directory}/{pattern}") if os.path.isfile(p))
    return (f"share/pcp-hpc/{directory}", files)


setup(
    name="pcp-hpc",
    version="0.1.0",
    description="Performance Co-Pilot agents, pmie rules and Grafana dashboards for HPC clusters, "
                "and a GridFTP transfer tool for DTN clusters",
    python_requires=">=3.11",
    packages=find_packages(include=[f"{top}{sub}" for top in PACKAGES for sub in ("", ".*")]),
    # Each agent's committed metric listing (pmdas/<agent>/metrics.golden): `python -m
    # pmdas.common.listing` compares an installed copy's tables against it too.
    package_data={"pmdas": ["*/metrics.golden"]},
    # The PCP bindings (pcp, cpmapi, cpmda) come from the distribution's python3-pcp.
    install_requires=["pyyaml>=5.4", "click>=8.0", "ClusterShell>=1.9"],
    extras_require={"test": ["pytest>=7", "hypothesis>=6", "ruff>=0.4"],
                    "logger": ["redis>=4.3"],   # the series index (hpc_pcp/seriesindex.py): python3-redis
                    "lab": ["matplotlib>=3.6"]},   # the DTN lab's plots (dtn_lab/plots.py)
    # The shipped data lands in <prefix>/share/pcp-hpc, where pmdas/common/shipped.py looks.
    data_files=[data("bpftrace_scripts", "*.bt"), data("pmie_rules"), data("grafana_dashboards", "*.json"),
                *[data(d) for d in sorted(glob.glob("logger/pmlogconf/*"))]],
    entry_points={"console_scripts": [
        "hpc-pcp = hpc_pcp.cli:main",
        "hpc-demo = hpc_demo.cli:main",
        "dtn-transfer = dtn_transfer.cli:main",
        "dtn-lab = dtn_lab.cli:main",
    ]},
)
