"""Instances that appear after pmproxy cached their metrics (a job that starts after the logger).

pmproxy before PCP 6.3.4 indexes such an instance for one metric of its instance domain only
(hpc_pcp/seriesindex.py has the mechanism); the series index adds it to every other metric of
that host and domain.  A real Redis and pmproxy discover archives that a LOGIMPORT writer
(this file, run as a script) writes live: three per-job counters on one instance domain, two
jobs from the start and job 777 from the 5th sample on, on host grow01; host grow02 has
the same metrics and never job 777.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import pytest

from bench.logger_scale_parts.stores import free_cluster_port, redis_cli
from hpc_pcp import logger, seriesindex
from tests.harness.pcp import pcp_env, wait_for

METRICS = ("hpc.test.job.read", "hpc.test.job.write", "hpc.test.job.ops")
LATE, FIRST_LATE_SAMPLE, SAMPLES = "scratch/777", 4, 14
DOMAIN = 245   # a domain of no agent: PCP's QA range
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def value(sample: int, metric: int, inst: int) -> int:
    return sample * 1000 + metric * 100 + inst


def write_archive(path: str, host: str, with_late: bool) -> None:
    """One sample a second; the late job joins the instance domain at FIRST_LATE_SAMPLE."""
    import cpmapi as c
    from pcp import pmi

    log = pmi.pmiLogImport(path)
    log.pmiSetHostname(host)
    indom = log.pmiInDom(DOMAIN, 8)
    for item, name in enumerate(METRICS):
        log.pmiAddMetric(name, log.pmiID(DOMAIN, 0, item), c.PM_TYPE_U64, indom, c.PM_SEM_COUNTER,
                         log.pmiUnits(1, 0, 0, c.PM_SPACE_BYTE, 0, 0))
    jobs = {"scratch/100": 100, "scratch/101": 101}
    for name, inst in jobs.items():
        log.pmiAddInstance(indom, name, inst)
    for sample in range(SAMPLES):
        if with_late and sample == FIRST_LATE_SAMPLE:
            log.pmiAddInstance(indom, LATE, 777)
            jobs[LATE] = 777
        for item, metric in enumerate(METRICS):
            for name, inst in jobs.items():
                log.pmiPutValue(metric, name, str(value(sample, item, inst)))
        now = time.time()
        log.pmiWrite(int(now), int(now % 1 * 1e6))
        time.sleep(1)
    del log


@pytest.fixture(scope="module")
def grown():
    """pmproxy over two hosts' archives, written to the end; yields the stack."""
    from tests.logger.stack import Stack

    stack = Stack(tempfile.mkdtemp(prefix="hpc-newinst-"))
    try:
        stack.start_redis()
        archives = os.path.join(stack.directory, "archives")
        for host in ("grow01", "grow02"):
            os.makedirs(os.path.join(archives, host))
        stack.start_pmproxy(archives)
        writers = [subprocess.Popen([sys.executable, "-m", "tests.logger.test_new_instances",
                                     os.path.join(archives, host, "20261205.00.00"), host,
                                     str(host == "grow01")], env=pcp_env(), cwd=REPO)
                   for host in ("grow01", "grow02")]
        stack.processes.extend(writers)
        for writer in writers:
            assert writer.wait(SAMPLES + 30) == 0
        last = str(value(SAMPLES - 1, 0, 100))
        wait_for(lambda: all(any(p["value"] == last for p in points(stack, METRICS[0], host))
                             for host in ("grow01", "grow02")), 60, 0.5,
                 what="pmproxy to load both hosts' last sample")
        yield stack
    finally:
        stack.stop()


def found(stack, instance: str, host: str) -> dict[str, bool]:
    """Per metric: is ``host``'s series found by instance name (the job board's selection)?"""
    return {m: bool(stack.get("/series/query", expr=f'{m}{{instance.name == "{instance}", '
                                                       f'hostname == "{host}"}}')) for m in METRICS}


def points(stack, metric: str, host: str) -> list[dict]:
    series = stack.get("/series/query", expr=f'{metric}{{hostname == "{host}"}}')
    return stack.get("/series/values", series=series[0], samples=100) if series else []


def index_once(stack) -> str:
    done = subprocess.run([sys.executable, "-m", "hpc_pcp.cli", "logger", "series-index", "--once",
                           "--redis", f"127.0.0.1:{stack.redis_port}", "--domains", str(DOMAIN)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_later_instance_is_indexed_for_every_metric_of_its_host_and_domain(grown):
    before = found(grown, LATE, "grow01")
    if seriesindex.needed(os.environ.get("PCP_VERSION") or logger.pcp_config("PCP_VERSION")):
        # PCP 6.0.3's pmproxy: one metric only (if this changes, the index is no longer needed)
        assert sum(before.values()) == 1, before
    out = index_once(grown)
    assert found(grown, LATE, "grow01") == dict.fromkeys(METRICS, True)
    if not all(before.values()):
        assert "indexed" in out
    # grow02 never had job 777: nothing of grow02 is found by its name, before or after
    assert found(grown, LATE, "grow02") == dict.fromkeys(METRICS, False)
    assert found(grown, "scratch/100", "grow02") == dict.fromkeys(METRICS, True)


def test_the_later_instance_values_come_with_it_from_its_first_sample(grown):
    index_once(grown)
    for item, metric in enumerate(METRICS):
        series = grown.get("/series/query",
                           expr=f'{metric}{{instance.name == "{LATE}", hostname == "grow01"}}')
        assert len(series) == 1, (metric, series)
        names = {i["instance"]: i["name"] for i in grown.get("/series/instances", series=series[0])}
        assert LATE in names.values()
        late = sorted(int(p["value"]) for p in grown.get("/series/values", series=series[0], samples=100)
                      if names.get(p["instance"]) == LATE)
        # every sample pmproxy read while the job ran, in this metric's own values
        assert late and late[-1] == value(SAMPLES - 1, item, 777), (metric, late)
        assert all(v % 1000 == item * 100 + 777 % 1000 for v in late)


def test_a_second_pass_adds_nothing(grown):
    index_once(grown)
    indexer = seriesindex.Indexer(seriesindex.Store([f"127.0.0.1:{grown.redis_port}"]), frozenset([DOMAIN]))
    first = indexer.run_once()
    assert first.series == 2 * len(METRICS) and first.added == 0
    second = indexer.run_once()
    assert second.groups_checked == 0 and second.added == 0


def start_cluster(stack, shards: int = 3) -> list[int]:
    """``shards`` redis-server masters in one cluster, every slot served; their ports."""
    ports = []
    for shard in range(shards):
        port = free_cluster_port()
        work = os.path.join(stack.directory, f"redis{shard}")
        os.makedirs(work)
        stack._spawn(f"redis{shard}", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", work,
                                       "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
        wait_for(lambda p=port: redis_cli(p, "ping").strip() == "PONG", 10, what=f"redis on {port}")
        ports.append(port)
    done = subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                           "--cluster-replicas", "0", "--cluster-yes"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for(lambda: all("cluster_state:ok" in (info := redis_cli(p, "cluster", "info"))
                         and f"cluster_known_nodes:{shards}" in info for p in ports),
             20, what="the cluster state ok on every shard")
    return ports


@pytest.fixture(params=["server", "cluster"])
def redis_only(request):
    """An empty Valkey/Redis: one server, or a cluster of 3 masters (keys spread over them)."""
    from tests.logger.stack import Stack

    stack = Stack(tempfile.mkdtemp(prefix="hpc-newinst-redis-"))
    try:
        if request.param == "server":
            stack.start_redis()
            ports = [stack.redis_port]
        else:
            ports = start_cluster(stack)
        store = seriesindex.Store([f"127.0.0.1:{p}" for p in ports])
        assert store.client.__class__.__name__ == ("RedisCluster" if request.param == "cluster" else "Redis")
        yield store
        store.close()
    finally:
        stack.stop()


def test_an_instance_pmproxy_has_not_named_yet_is_indexed_by_a_later_pass(redis_only):
    """pmproxy adds the instance to its first metric's set and writes its name in the same
    batch: a pass between the two must not forget the instance."""
    import hashlib

    def sha(text: str) -> bytes:
        return hashlib.sha1(text.encode()).digest()
    store, source, context = redis_only, sha("source"), sha("context")
    first, second, old, late = sha("m1"), sha("m2"), sha("inst-old"), sha("inst-late")
    store.run([("HSET", "pcp:map:context.name", context, "/archives/n1/a"),
               ("SADD", f"pcp:series:context.name:{context.hex()}", first, second),
               *[("HSET", f"pcp:desc:series:{m.hex()}", "indom", "411.8", "source", source)
                 for m in (first, second)],
               ("HSET", f"pcp:inst:series:{old.hex()}", "name", sha("scratch/1"), "source", source),
               ("SADD", f"pcp:instances:series:{first.hex()}", old, late),
               ("SADD", f"pcp:instances:series:{second.hex()}", old)])
    indexer = seriesindex.Indexer(store, frozenset([411]))
    assert indexer.run_once().added == 0            # no name for the late instance yet
    store.run([("HSET", f"pcp:inst:series:{late.hex()}", "name", sha("scratch/2"), "source", source)])
    assert indexer.run_once().added == 1
    assert store.run([("SMEMBERS", f"pcp:series:inst.name:{sha('scratch/2').hex()}")])[0] == {second}
    assert set(store.run([("SMEMBERS", f"pcp:instances:series:{second.hex()}")])[0]) == {old, late}
    assert indexer.run_once().groups_checked == 0


def test_a_cluster_pipeline_follows_a_slot_that_moved_after_the_store_learned_the_slots():
    """Each command goes to its key's shard; a slot moved to another master (resharding) is
    followed (MOVED) within the same run."""
    from tests.logger.stack import Stack

    stack = Stack(tempfile.mkdtemp(prefix="hpc-newinst-cluster-"))
    try:
        ports = start_cluster(stack)
        store = seriesindex.Store([f"127.0.0.1:{ports[0]}"])     # one seed: the others are learned
        keys = [f"pcp:instances:series:{i:040x}" for i in range(300)]
        assert store.run([("SADD", k, b"\x00\xff", str(i)) for i, k in enumerate(keys)]) == [2] * len(keys)
        counts = [int(redis_cli(p, "dbsize").strip()) for p in ports]
        assert 0 not in counts and sum(counts) == len(keys), counts     # spread over the 3 masters
        moved = keys[0].encode()
        slot = int(redis_cli(ports[0], "cluster", "keyslot", moved.decode()).strip())
        ids = {int(line.split()[1].split(":")[1].split("@")[0]): line.split()[0]
               for line in redis_cli(ports[0], "cluster", "nodes").splitlines()}
        source = next(p for p in ports if redis_cli(p, "exists", moved.decode()).strip() == "1")
        target = next(p for p in ports if p != source)
        redis_cli(source, "del", moved.decode())                 # an empty slot moves without MIGRATE
        for port in ports:
            assert redis_cli(port, "cluster", "setslot", str(slot), "node", ids[target]).strip() == "OK"
        replies = store.run([("SADD", moved, b"late"), *[("SCARD", k) for k in keys[1:]],
                             ("SMEMBERS", moved)])
        assert replies == [1, *[2] * (len(keys) - 1), {b"late"}]
        assert redis_cli(target, "exists", moved.decode()).strip() == "1"
        store.close()
    finally:
        stack.stop()


def test_without_redis_py_the_index_says_which_package_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)          # import redis: ImportError
    problem = seriesindex.missing_client()
    assert problem and "python3-redis" in problem
    with pytest.raises(SystemExit, match="python3-redis"):
        seriesindex.follow(["127.0.0.1:1"], 0, passes=1, echo=lambda line: None)


def test_the_series_index_command_without_redis_py_fails_with_one_line_naming_the_package():
    code = ("import sys; sys.modules['redis'] = None; from hpc_pcp.cli import main; "
            "sys.argv = ['hpc-pcp', 'logger', 'series-index', '--once', '--redis', '127.0.0.1:1']; main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert "apt-get install python3-redis" in lines[0]


def test_an_unreachable_store_is_reported_and_retried_not_raised():
    lines: list[str] = []
    seriesindex.follow(["127.0.0.1:1"], 0, passes=2, echo=lines.append)
    assert len(lines) == 2 and all(line.startswith("Valkey/Redis: ") and "retrying" in line for line in lines)


@pytest.fixture
def detached_unit(tmp_path, monkeypatch):
    """A series-index unit running ``program`` (Python source), started the way setup does
    without systemd, with $PCP_RUN_DIR and $PCP_LOG_DIR under ``tmp_path``."""
    if os.path.isdir("/run/systemd/system"):
        pytest.fail("this machine runs systemd: the detached path is not the one setup takes here")
    monkeypatch.setenv("PCP_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("PCP_LOG_DIR", str(tmp_path / "log"))

    def unit(program: str) -> str:
        script = tmp_path / "index.py"
        script.write_text(program)
        path = tmp_path / "hpc-pcp-series-index.service"
        path.write_text(f"[Service]\nExecStart={sys.executable} {script} series-index --redis x:1\n")
        return str(path)
    return unit


def test_start_series_index_replaces_the_one_it_started_before(tmp_path, detached_unit):
    """Without systemd, --start runs the index detached with its pid in $PCP_RUN_DIR; running
    setup again stops that one (by the pid it recorded, if that process is an index) first."""
    unit = detached_unit("import time\ntime.sleep(60)\n")
    pidfile = tmp_path / "run" / logger.SERIES_INDEX_PID
    pids = []
    try:
        for _ in range(2):
            assert logger.start_series_index(unit, echo=lambda line: None)
            pids.append(int(pidfile.read_text()))
            wait_for(lambda: b"series-index" in open(f"/proc/{pids[-1]}/cmdline", "rb").read(), 10,
                     what="the index to run (exec'd)")
        wait_for(lambda: not os.path.exists(f"/proc/{pids[0]}") or open(f"/proc/{pids[0]}/stat").read()
                 .rsplit(")", 1)[1].split()[0] == "Z", 10, what="the first index to stop")
        assert os.path.exists(f"/proc/{pids[1]}")
        pidfile.write_text(f"{os.getpid()}\n")      # not an index: never signalled
        logger.stop_series_index(str(pidfile))
    finally:
        for pid in pids:
            try:
                os.kill(pid, 15)
            except OSError:
                pass


def test_an_index_that_exits_at_start_is_reported_failed_with_its_log(detached_unit):
    """Without systemd nothing restarts the index: one that cannot start is a failure of
    --start (with the end of its log), never "started"."""
    unit = detached_unit("import sys\nprint('Error: no Valkey/Redis client here')\nsys.exit(3)\n")
    lines: list[str] = []
    assert not logger.start_series_index(unit, echo=lines.append)
    assert len(lines) == 1 and lines[0].startswith("series index: FAILED: exited with status 3"), lines
    assert "Error: no Valkey/Redis client here" in lines[0]


def test_a_pass_that_fails_unexpectedly_is_logged_and_the_next_pass_starts_afresh(monkeypatch):
    """A bug or a reply the index did not expect ends one pass, not the service: the error is
    logged with where it happened and the next pass reconnects and relearns every series."""
    made: list[object] = []

    class Broken:
        def __init__(self, store, wanted) -> None:
            made.append(self)
            self.store = store

        def run_once(self):
            raise KeyError("pcp:desc:series:ab")

    class NoStore:
        def __init__(self, seeds) -> None:
            pass

        def close(self) -> None:
            pass
    monkeypatch.setattr(seriesindex, "Indexer", Broken)
    monkeypatch.setattr(seriesindex, "Store", NoStore)
    lines: list[str] = []
    seriesindex.follow(["127.0.0.1:1"], 0, passes=2, echo=lines.append)
    assert len(made) == 2, made
    assert len(lines) == 2 and all(line.startswith("pass failed (KeyError: 'pcp:desc:series:ab'); "
                                                   "starting afresh") for line in lines), lines
    assert "run_once" in lines[0]   # where it happened


def test_needed_before_6_3_4_only():
    assert seriesindex.needed("6.0.3") and seriesindex.needed("6.3.3") and seriesindex.needed("5.3.7")
    assert not seriesindex.needed("6.3.4") and not seriesindex.needed("7.0.0")


def test_setup_plans_the_series_index_on_pcp_before_6_3_4(monkeypatch):
    unit = logger.SERIES_INDEX_UNIT.format(sysconf=logger.pcp_config("PCP_SYSCONF_DIR"))
    for version, expected in (("6.0.3", True), ("6.3.4", False)):
        monkeypatch.setenv("PCP_VERSION", version)
        files = {f.path: f.text for f in logger.plan(["node01"], "10s", "a:7001,b:7002", groups={})}
        assert (unit in files) is expected
        if expected:
            assert "series-index --redis a:7001,b:7002 --interval 10s" in files[unit]
    files = {f.path for f in logger.plan(["node01"], "10s", groups={}, series_index=False)}
    assert unit not in files


def test_domains():
    assert seriesindex.domains("all") is None
    assert seriesindex.domains("410-412,60") == frozenset({410, 411, 412, 60})
    with pytest.raises(ValueError):
        seriesindex.domains("x")


if __name__ == "__main__":
    write_archive(sys.argv[1], sys.argv[2], sys.argv[3] == "True")
