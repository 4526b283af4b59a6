"""Tier 1: the logger setup plan, the files it writes, the pmlogconf groups and the CLI."""
from __future__ import annotations

import configparser
import os
import re
import socket
import subprocess

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from hpc_pcp import logger
from hpc_pcp.agents import AGENTS, available
from hpc_pcp.cli_logger import logger_group
from hpc_pcp.dashboards import catalog


def _by_path(files):
    return {f.path: f.text for f in files}


def test_plan_has_farm_lines_groups_pmproxy_access():
    files = _by_path(logger.plan(["node1", "node2", "node1", "localhost"], "15s", viz=["grafana1"]))
    control = [p for p in files if "/pmlogger/control.d/" in p]
    assert sorted(os.path.basename(p) for p in control) == ["hpc-node1", "hpc-node2"]
    line = [ln for ln in files[control[0]].splitlines() if ln.startswith("node1")][0].split()
    # host, primary?, socks?, directory, args: PCP's control file columns
    assert line[:4] == ["node1", "n", "n", "PCP_ARCHIVE_DIR/node1"] and "-t" in line
    assert line[line.index("-t") + 1] == "15sec" and "config.hpc-node1" in line
    assert "$version=1.1" in files[control[0]]
    assert any(p.endswith("/config/pmlogconf/hpc/hpcib") for p in files)
    conf = configparser.ConfigParser()
    conf.read_string(files[next(p for p in files if p.endswith("pmproxy.conf"))])
    assert conf["redis"]["servers"] == "localhost:6379"
    assert conf["pmproxy"]["redis.enabled"] == "false" and conf["discover"]["enabled"] == "true"
    assert int(conf["pmseries"]["stream.maxlen"]) == 14 * 86400 // 15
    nft = files[next(p for p in files if p.endswith("pmproxy-access.nft"))]
    assert "grafana1" in nft and "44322" in nft
    access = files[next(p for p in files if p.endswith("pmcd.conf.access"))]
    assert 'allow hosts "local:" : all;' in access and "disallow hosts * : all;" in access
    # The shipped alarm rules are pmie's farm entry (by default), written beside the other files
    # with their actions calling this installation's hpc-pcp by path.
    pmie = files[next(p for p in files if p.endswith("/pmie/control.d/hpc"))]
    rules = pmie.split("-c ", 1)[1].split()[0]
    assert os.path.basename(rules) == "hpc-alarms.pmie" and rules in files
    shipped = open(logger.default_pmie_rules(), encoding="utf-8").read()
    assert files[rules].count(" -> shell ") == shipped.count(" -> shell ") > 0


PMIE_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"     # what pmie's actions run with, whatever pmie's own PATH


def test_default_rules_reach_this_hpc_pcp_with_pmies_path(tmp_path):
    """pmie runs actions with a fixed PATH: a venv's hpc-pcp is not on it, and alarms were
    silently lost (found on the cluster).  The rules logger setup writes call it by path."""
    text = logger.installed_pmie_rules()
    commands = set(re.findall(r'-> shell "(?:[^"]*&& )?(\S+) alarm (?:fire|clear) ', text))
    assert len(commands) == 1, commands
    (command,) = commands
    assert os.path.isabs(command)
    done = subprocess.run(["sh", "-c", f"{command} alarm fire --help"], env={"PATH": PMIE_PATH},
                          capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 0 and "fire" in done.stdout, done.stderr


def test_nobody_but_the_loggers_fetches():
    """The generated access file never serves every host: with no logger, only the node."""
    access = logger.pmcd_access([])
    assert '"local:" : all' in access and "disallow hosts * : all;" in access
    assert "\nallow hosts * " not in access
    files = {f.path: f.text for f in logger.plan(["n1"], fetch_from=["admin01"])}
    access = files[next(p for p in files if p.endswith("pmcd.conf.access"))]
    assert f"allow hosts {socket.getfqdn()}, admin01 : fetch;" in access
    assert access.index("admin01") < access.index("disallow hosts * : all;")
    with pytest.raises(logger.LoggerSetupError):
        logger.plan(["n1"], fetch_from=["bad host"])


@pytest.mark.parametrize("bad", ["", "bad host", "../etc", "-rf"])
def test_bad_nodes_refused(bad):
    with pytest.raises(logger.LoggerSetupError):
        logger.plan([bad])


@pytest.mark.parametrize("bad", ["fast", "0s", "-5s", "10 parsecs"])
def test_bad_interval_refused(bad):
    with pytest.raises(logger.LoggerSetupError, match="interval"):
        logger.interval_seconds(bad)


@given(st.integers(min_value=1, max_value=86400), st.sampled_from(["", "s", "sec", "m", "min", "h"]))
def test_interval_round_trip(n, unit):
    seconds = logger.interval_seconds(f"{n}{unit}")
    assert seconds == n * {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[unit]
    assert logger.pmlogger_interval(seconds) == f"{seconds:g}sec"


@given(st.text(max_size=30))
def test_interval_never_crashes(text):
    try:
        assert logger.interval_seconds(text) > 0
    except logger.LoggerSetupError:
        pass


def test_apply_backs_up_foreign_files_once(tmp_path):
    files = logger.plan(["node1"])
    conf = next(f for f in files if f.path.endswith("pmproxy.conf"))
    target = tmp_path / conf.path.lstrip("/")
    target.parent.mkdir(parents=True)
    target.write_text("[pmproxy]\n# the admin's own\n")
    logger.apply(files, str(tmp_path), echo=lambda _: None)
    backup = target.with_name("pmproxy.conf.orig-hpc")
    assert backup.read_text() == "[pmproxy]\n# the admin's own\n"
    assert target.read_text() == conf.text
    logger.apply(files, str(tmp_path), echo=lambda _: None)   # again: our file, no new backup
    assert backup.read_text() == "[pmproxy]\n# the admin's own\n"


def test_pmlogconf_groups_are_valid_and_name_real_metrics():
    groups = logger.pmlogconf_groups()
    assert set(groups) >= {n for n in available() if n != "hpcsample"}
    roots = catalog.agent_roots()
    for group, text in groups.items():
        agent = logger.group_agent(group)
        assert agent in AGENTS, f"group {group} for unknown agent {agent}"
        lines = text.splitlines()
        assert lines[0] == "#pmlogconf-setup 2.0"
        keywords = [ln.split(None, 1)[0] for ln in lines[1:] if ln and not ln[0].isspace()]
        assert "ident" in keywords and ("probe" in keywords or "force" in keywords)
        probe = next(ln.split() for ln in lines if ln.startswith("probe"))
        metrics = [ln.strip() for ln in lines if ln[:1].isspace() and ln.strip()]
        assert metrics and all(m == roots[agent] or m.startswith(roots[agent] + ".") for m in metrics)
        if agent in available():   # names checked against the table when the agent exists
            assert probe[1] in catalog.catalog(), probe


def test_cli_dry_run_and_write(tmp_path):
    runner = CliRunner()
    result = runner.invoke(logger_group, ["setup", "--nodes", "n1,n2", "--interval", "1m", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "control.d/hpc-n1" in result.output and "-t 60sec" in result.output
    result = runner.invoke(logger_group, ["setup", "--nodes", "n1", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert list(tmp_path.rglob("hpc-n1")) and list(tmp_path.rglob("pmproxy.options"))
    # pmie's actions run as pcp and record alarms in a directory below root's config/hpc.
    import pwd
    (alarms,) = [p for p in tmp_path.rglob("alarms") if p.is_dir()]
    for path in (alarms, alarms / "firing"):
        assert path.stat().st_uid == pwd.getpwnam("pcp").pw_uid and oct(path.stat().st_mode)[-3:] == "755"
    bad = runner.invoke(logger_group, ["setup", "--nodes", "n1", "--interval", "soon"])
    assert bad.exit_code == 2 and "interval 'soon'" in bad.output


@pytest.mark.parametrize("text, expected", [
    ("node[01-03]", ["node01", "node02", "node03"]),
    ("cn[8-10],login1", ["cn8", "cn9", "cn10", "login1"]),
    ("n1,n2, n3,n1", ["n1", "n2", "n3"]),
    ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
])
def test_node_sets_expand(text, expected):
    assert sorted(logger.expand_nodes(text)) == sorted(expected)


@pytest.mark.parametrize("bad", ["node[1-", "a[3-1]", "bad host", "", "@compute", "-rf"])
def test_bad_node_sets_refused(bad):
    with pytest.raises(logger.LoggerSetupError):
        logger.expand_nodes(bad)


def test_redis_cluster_seeds_and_who_starts_the_store():
    seeds = "10.77.0.9:7001,10.77.0.9:7002,10.77.0.9:7003,10.77.0.9:7001"
    files = _by_path(logger.plan(["n1"], redis=seeds))
    conf = configparser.ConfigParser()
    conf.read_string(files[next(p for p in files if p.endswith("pmproxy.conf"))])
    assert conf["redis"]["servers"] == "10.77.0.9:7001,10.77.0.9:7002,10.77.0.9:7003"
    assert logger.local_store("localhost:6379") and not logger.local_store(seeds)
    assert not logger.local_store("redis1:6379")
    for bad in ("10.77.0.9", "h:0", "h:70000", "h:1,,h:2", "h 1:2"):
        with pytest.raises(logger.LoggerSetupError, match="redis"):
            logger.plan(["n1"], redis=bad)


def test_pmie_runs_the_rules_on_every_node():
    files = _by_path(logger.plan(["node01", "node02", "localhost"], pmie_rules="/r/hpc.pmie"))
    pmie = files[next(p for p in files if p.endswith("/pmie/control.d/hpc"))]
    lines = [ln.split("\t") for ln in pmie.splitlines() if ln and ln[0] not in "#$"]
    assert [ln[0] for ln in lines] == ["LOCALHOSTNAME", "node01", "node02"]
    assert all(ln[3] == "-c /r/hpc.pmie" and ln[2].endswith(f"/{ln[0]}-hpc") for ln in lines)


def test_cli_takes_a_node_set(tmp_path):
    result = CliRunner().invoke(logger_group, ["setup", "--nodes", "node[01-03]", "--dry-run",
                                               "--redis", "a:7001,a:7002,a:7003"])
    assert result.exit_code == 0, result.output
    assert all(f"control.d/hpc-node0{i}" in result.output for i in (1, 2, 3))
    assert "servers = a:7001,a:7002,a:7003" in result.output
    bad = CliRunner().invoke(logger_group, ["setup", "--nodes", "node[01-", "--dry-run"])
    assert bad.exit_code == 2 and "node set" in bad.output


def test_an_agent_may_have_several_pmlogconf_groups_named_after_it(tmp_path):
    """hpclustre and hpclustre-jobs (its job_stats at another interval) are both written, as
    hpc/<group>; a file not named after its agent is refused with the rule."""
    head = "#pmlogconf-setup 2.0\nident\tx\nprobe\thpc.lustre.agent.up exists ? include : exclude\n"
    (tmp_path / "hpclustre").mkdir()
    (tmp_path / "hpclustre" / "hpclustre").write_text(head + "\thpc.lustre.client\n")
    (tmp_path / "hpclustre" / "hpclustre-jobs").write_text(head + "delta\t1 minute\n\thpc.lustre.job\n")
    groups = logger.pmlogconf_groups(tmp_path)
    assert sorted(groups) == ["hpclustre", "hpclustre-jobs"]
    assert {logger.group_agent(g) for g in groups} == {"hpclustre"}
    files = logger.plan(["node01"], "10s", groups=groups, series_index=False)
    written = {f.path.rsplit("/pmlogconf/", 1)[1]: f.text for f in files if "/pmlogconf/" in f.path}
    assert written == {"hpc/hpclustre": groups["hpclustre"], "hpc/hpclustre-jobs": groups["hpclustre-jobs"]}
    (tmp_path / "hpclustre" / "lustre-extra").write_text(head)
    with pytest.raises(logger.LoggerSetupError, match="named hpclustre or hpclustre-<what>"):
        logger.pmlogconf_groups(tmp_path)


def test_setup_says_the_series_index_needs_python3_redis(monkeypatch):
    """Where setup plans the series index (PCP before 6.3.4) and redis-py is missing, it says
    which package to install; where none is planned, or redis-py is there, it says nothing."""
    import sys
    monkeypatch.setitem(sys.modules, "redis", None)
    for version, planned in (("6.0.3", True), ("6.3.4", False)):
        monkeypatch.setenv("PCP_VERSION", version)
        done = CliRunner().invoke(logger_group, ["setup", "--nodes", "n1", "--dry-run"])
        assert done.exit_code == 0, done.output
        assert ("apt-get install python3-redis" in done.output) is planned, done.output
    monkeypatch.delitem(sys.modules, "redis")
    monkeypatch.setenv("PCP_VERSION", "6.0.3")
    done = CliRunner().invoke(logger_group, ["setup", "--nodes", "n1", "--dry-run"])
    assert done.exit_code == 0 and "python3-redis" not in done.output, done.output
