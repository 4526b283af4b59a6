"""Fetch round trip through pmcd: our agent vs pmcd's own metric vs PCP's stock Python agent.

Anchor: pmcd.version (answered inside pmcd, the floor).  Also measured: PCP's own
Python 'trivial' agent (stock PCP Python PMDA baseline), our reference agent
hpcsample idle, and hpcsample while its refresh thread is busy (a source that
takes most of each interval), to show fetches do not wait for refreshes.
Needs root and a running pmcd; installs the agents it needs and removes ours after.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import cpmapi as c_api
import yaml
from pcp import pmapi

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import interleaved, report  # noqa: E402
from hpc_pcp import install as installer  # noqa: E402
from tests.harness.pcp import wait_refreshed  # noqa: E402

ENV = {**os.environ, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin:" + os.environ.get("PATH", "")}


def ensure_trivial_python() -> None:
    if "pmdatrivial.python" in open("/etc/pcp/pmcd/pmcd.conf").read():
        return
    subprocess.run(["./Install"], cwd="/var/lib/pcp/pmdas/trivial", input="python\n", text=True,
                   env=ENV, capture_output=True, check=True, timeout=120)


def fetcher(ctx: pmapi.pmContext, name: str):
    pmids = ctx.pmLookupName([name])

    def fetch():
        result = ctx.pmFetch(pmids)
        ctx.pmFreeResult(result)
    return fetch


def install_sample(name: str, config: dict, tmp: str) -> None:
    path = os.path.join(tmp, f"{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    result = installer.install("hpcsample", extra_args=f"-c {path}")
    if not result.ok:
        raise SystemExit(f"cannot install hpcsample: {result.output}")
    wait_refreshed("hpc.sample", 1)


def main(rounds: int = 400) -> dict:
    ensure_trivial_python()
    tmp = tempfile.mkdtemp(prefix="bench-fetch-")
    os.makedirs(os.path.join(tmp, "values"))
    for k in range(10):
        with open(os.path.join(tmp, "values", f"v{k}"), "w") as f:
            f.write(f"{k}\n")
    ctx = pmapi.pmContext(c_api.PM_CONTEXT_HOST, "local:")
    samples: dict[str, list[float]] = {}
    try:
        install_sample("idle", {"directory": os.path.join(tmp, "values"), "interval": 5}, tmp)
        variants = {
            "pmcd (pmcd.version)": fetcher(ctx, "pmcd.version"),
            "stock python PMDA (trivial.time)": fetcher(ctx, "trivial.time"),
            "hpcsample idle": fetcher(ctx, "hpc.sample.file.value"),
        }
        samples.update(interleaved(variants, rounds))
        # Busy: a source that keeps the refresh thread working ~80% of the time.
        install_sample("busy", {"directory": os.path.join(tmp, "values"), "interval": 1, "timeout": 2,
                                "command": [sys.executable, "-c",
                                            "import time\nt=time.time()\nwhile time.time()-t<0.8: pass\n"
                                            "print('k 1')"]}, tmp)
        busy = interleaved({"pmcd (pmcd.version)": fetcher(ctx, "pmcd.version"),
                            "hpcsample during refresh": fetcher(ctx, "hpc.sample.file.value")}, rounds)
        samples["hpcsample during refresh"] = busy["hpcsample during refresh"]
        samples["pmcd (during busy run)"] = busy["pmcd (pmcd.version)"]
    finally:
        installer.remove("hpcsample")
    return report("fetch_latency", samples, anchor="pmcd (pmcd.version)", unit="ms",
                  notes="ratio = median fetch round trip / pmcd.version's, same run, interleaved")


if __name__ == "__main__":
    main()
