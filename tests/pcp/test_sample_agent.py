"""Tier 2: the reference agent under the real pmcd (install, fetch, help, health, faults)."""
from __future__ import annotations

import os
import statistics
import time

import pytest

from hpc_pcp import install as installer
from tests.harness.pcp import installed_agent, reader, run_pcp, wait_for, wait_refreshed

pytestmark = pytest.mark.usefixtures("pmcd")


def sample_dir(tmp_path, **values):
    directory = tmp_path / "values"
    directory.mkdir()
    for name, value in values.items():
        (directory / name).write_text(f"{value}\n")
    return str(directory)


def test_metrics_values_and_help_through_pmcd(tmp_path):
    directory = sample_dir(tmp_path, alpha=1.5, beta=7)
    with installed_agent("hpcsample", {"directory": directory, "interval": 1}):
        wait_refreshed("hpc.sample")
        out = run_pcp("pminfo", "-f", "hpc.sample")
        assert out.returncode == 0, out.stderr
        assert 'inst [' in out.stdout and '"alpha"] value 1.5' in out.stdout
        names = run_pcp("pminfo", "hpc.sample").stdout.split()
        assert "hpc.sample.agent.up" in names and len(names) >= 15
        for name in names:
            help_text = run_pcp("pminfo", "-T", name).stdout
            body = help_text.split("Help:", 1)[1].strip() if "Help:" in help_text else ""
            assert body and "Error" not in body, f"{name} has no help text"
        got = reader().fetch(["hpc.sample.files", "hpc.sample.agent.up", "hpc.sample.file.value"])
        assert got["hpc.sample.files"] == 2 and got["hpc.sample.agent.up"] == 1
        assert got["hpc.sample.file.value"] == {"alpha": 1.5, "beta": 7.0}
        # values follow the source
        (tmp_path / "values" / "gamma").write_text("3\n")
        wait_for(lambda: reader().fetch(["hpc.sample.files"])["hpc.sample.files"] == 3, 10,
                 what="the new file to be counted")
        labels = run_pcp("pminfo", "-l", "hpc.sample.file.value").stdout
        assert '"agent":"hpcsample"' in labels and '"file":"gamma"' in labels


def test_status_command_reports_health(tmp_path):
    from click.testing import CliRunner

    from hpc_pcp.cli import main
    directory = sample_dir(tmp_path, a=1)
    with installed_agent("hpcsample", {"directory": directory, "interval": 1}):
        wait_refreshed("hpc.sample")
        result = CliRunner().invoke(main, ["status", "hpcsample"])
        assert "hpcsample" in result.output and "healthy" in result.output, result.output
        assert result.exit_code == 0
    with installed_agent("hpcsample", {"directory": str(tmp_path / "absent"), "interval": 1}):
        wait_refreshed("hpc.sample")
        result = CliRunner().invoke(main, ["status", "hpcsample"])
        assert "DEGRADED" in result.output and "does not exist" in result.output
        assert result.exit_code == 1


def _fetch_latencies(name: str, n: int = 60) -> list[float]:
    r = reader()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r.fetch([name])
        out.append(time.perf_counter() - t)
    return out


def test_hanging_source_does_not_delay_fetches(tmp_path):
    directory = sample_dir(tmp_path, a=1)
    with installed_agent("hpcsample", {"directory": directory, "interval": 1,
                                       "command": ["echo", "k 1"]}):
        wait_refreshed("hpc.sample", 2)
        normal = statistics.median(_fetch_latencies("hpc.sample.files"))
    with installed_agent("hpcsample", {"directory": directory, "interval": 1, "timeout": 1,
                                       "command": ["sleep", "3600"]}):
        wait_refreshed("hpc.sample")
        hung = statistics.median(_fetch_latencies("hpc.sample.files"))
        got = reader().fetch(["hpc.sample.agent.source.up", "hpc.sample.agent.source.error",
                              "hpc.sample.files"])
        assert got["hpc.sample.agent.source.up"]["command"] == 0
        assert "timed out" in got["hpc.sample.agent.source.error"]["command"]
        assert got["hpc.sample.files"] == 1          # the other source still serves
    # a hung source costs nothing on the fetch path: same order as a healthy agent
    assert hung < normal * 3 + 0.002, f"fetch median {hung*1e3:.2f} ms vs normal {normal*1e3:.2f} ms"


def test_broken_config_is_reported_by_the_running_agent(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("interval: soon\n")
    result = installer.install("hpcsample", extra_args=f"-c {bad}")
    try:
        assert result.ok, result.output
        wait_refreshed("hpc.sample")
        error = reader().fetch(["hpc.sample.agent.config_error"])["hpc.sample.agent.config_error"]
        assert str(bad) in error and "'interval'" in error and "'soon'" in error
    finally:
        installer.remove("hpcsample")


def test_need_install_marker_loads_agent_at_pmcd_start_and_remove_is_selective():
    conf = "/etc/pcp/pmcd/pmcd.conf"
    before = [line.split()[0] for line in open(conf) if line.strip() and not line.startswith("#")
              and not line.startswith("[")]
    directory = installer.mark_need_install("hpcsample")
    try:
        restart = run_pcp("/etc/init.d/pmcd", "restart", timeout=120)
        assert restart.returncode == 0, restart.stdout + restart.stderr
        wait_for(lambda: "hpcsample" in open(conf).read(), 60, what="pmcd to run .NeedInstall")
        wait_refreshed("hpc.sample", timeout=60)
        assert not os.path.exists(os.path.join(directory, ".NeedInstall"))
    finally:
        removed = installer.remove("hpcsample")
    assert removed.ok, removed.output
    after = open(conf).read()
    assert "hpcsample" not in after
    for label in before:
        if label != "hpcsample":
            assert label in after, f"removing hpcsample also removed {label}"
    assert run_pcp("pminfo", "hpc.sample").returncode != 0
    assert run_pcp("pminfo", "-f", "pmcd.version").returncode == 0


def test_store_to_read_only_metric_is_refused_and_logged(tmp_path):
    directory = sample_dir(tmp_path, a=1)
    with installed_agent("hpcsample", {"directory": directory, "interval": 1}):
        wait_refreshed("hpc.sample")
        out = run_pcp("pmstore", "hpc.sample.files", "3")
        assert "No permission" in out.stdout + out.stderr
        log = open("/var/log/pcp/pmcd/hpcsample.log").read()
        assert "store to hpc.sample.files by root refused" in log
