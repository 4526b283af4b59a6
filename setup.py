"""pcp-hpc: PCP agents, alarm rules and dashboards for HPC clusters, and dtn-transfer."""
import glob

from setuptools import find_packages, setup


def data(directory: str, pattern: str = "*") -> tuple[str, list[str]]:
    return (f"share/pcp-hpc/{directory}", sorted(glob.glob(f"{directory}/{pattern}")))


setup(
    name="pcp-hpc",
    version="0.1.0",
    description="Performance Co-Pilot agents, pmie rules and Grafana dashboards for HPC clusters, "
                "and a GridFTP transfer tool for DTN clusters",
    python_requires=">=3.11",
    packages=find_packages(include=["pmdas", "pmdas.*", "hpc_pcp", "hpc_pcp.*",
                                    "dtn_transfer", "dtn_transfer.*", "hpc_demo", "hpc_demo.*",
                                    "dtn_lab", "dtn_lab.*"]),
    # The PCP bindings (pcp, cpmapi, cpmda) come from the distribution's python3-pcp.
    install_requires=["pyyaml>=5.4", "click>=8.0", "ClusterShell>=1.9"],
    extras_require={"test": ["pytest>=7", "hypothesis>=6", "ruff>=0.4"],
                    "lab": ["matplotlib>=3.6"]},   # the DTN lab's plots (dtn_lab/plots.py)
    data_files=[data("bpftrace_scripts", "*.bt"), data("pmie_rules"), data("grafana_dashboards", "*.json"),
                *[data(d) for d in sorted(glob.glob("logger/pmlogconf/*"))]],
    entry_points={"console_scripts": [
        "hpc-pcp = hpc_pcp.cli:main",
        "hpc-demo = hpc_demo.cli:main",
        "dtn-transfer = dtn_transfer.cli:main",
        "dtn-lab = dtn_lab.cli:main",
    ]},
)
