"""hpcdtn across --resume: a run's counters go on under the same instance, never back to 0
(issue #17, finding 9)."""
import json

from .conftest import dtn, make_files, needs_gridftp, run_dirs
from .test_agent import agent

COUNTERS = ("hpc.dtn.run.retries", "hpc.dtn.run.files.failed", "hpc.dtn.run.files.done",
            "hpc.dtn.run.bytes.done", "hpc.dtn.node.files.done", "hpc.dtn.node.bytes.done",
            "hpc.dtn.node.failures", "hpc.dtn.node.retries")


@needs_gridftp
def test_counters_go_on_across_a_resume(world, servers):
    spec = {f"f{i}": 20_000 + i for i in range(8)}
    make_files(world / "src", spec | {"secret": 100})
    (world / "src" / "secret").chmod(0o000)          # fails in every session
    dead = "127.0.0.1:20999"                           # nothing listens: its pair's files are retried
    src, dst = f"{servers[0].node}{world}/src", f"{dead},{servers[2].node}{world}/dst"
    dtn(world, "run", src, dst, "-q", "--bdp", "1M", check=1)
    (run_dir,) = run_dirs(world)
    run = run_dir.name
    refresher = agent(world / "state" / "runs")
    first = refresher.refresh_once().values
    assert first["hpc.dtn.run.retries"][run] > 2 and first["hpc.dtn.run.sessions"][run] == 1
    assert sum(first["hpc.dtn.node.files.done"].values()) == len(spec)
    dtn(world, "run", "--resume", run, "-q", check=1)
    second = refresher.refresh_once().values
    assert second["hpc.dtn.run.sessions"][run] == 2
    assert set(second["hpc.dtn.node.files.done"]) == set(first["hpc.dtn.node.files.done"]), "same names"
    for name in COUNTERS:
        for instance, value in first[name].items():
            assert second[name][instance] >= value, (name, instance, value, second[name][instance])
    assert second["hpc.dtn.run.retries"][run] > first["hpc.dtn.run.retries"][run], "secret retried again"
    assert second["hpc.dtn.run.files.failed"][run] == 2, "given up on once per session"
    state = json.loads((run_dir / "state.json").read_text())
    assert state["sessions"] == 2
