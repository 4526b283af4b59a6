"""End to end against real globus-gridftp-server nodes on loopback: bytes, faults, names."""
import json

from .conftest import GRIDFTP, dtn, identical, journal, make_files, run_dirs

pytestmark = GRIDFTP


def nodes(servers, *which):
    return ",".join(servers[i].node for i in which)


def test_small_data_set_arrives_byte_identical(world, servers):
    spec = {f"d{i % 3}/f{i}.bin": 1000 * i + 1 for i in range(30)}
    spec["big/large.bin"] = 3_000_000
    make_files(world / "src", spec)
    out = dtn(world, "run", f"{nodes(servers, 0, 1)}{world}/src", f"{nodes(servers, 2, 3)}{world}/dst",
              "--bdp", "64K", "--verify", "--json", check=0)
    report = json.loads(out.stdout)
    assert report["state"] == "completed" and report["not_transferred"] == []
    for rel in spec:
        assert identical(world / "src" / rel, world / "dst" / rel), rel
    (run_dir,) = run_dirs(world)
    results = {e["file"]: e for e in journal(run_dir)}
    assert set(results) == set(spec) and all(e["result"] == "done" for e in results.values())
    pairs = {e["pair"] for e in results.values()}
    assert len(pairs) == 2, "both node pairs carry data"
    state = json.loads((run_dir / "state.json").read_text())
    assert state["files"]["done"] == len(spec) and state["bytes"]["done"] == sum(spec.values())


def test_odd_names_pass_untouched_and_unnameable_ones_are_reported(world, anonymous_servers):
    """Anonymous (clear-text) sessions drop non-ASCII bytes; GSI passes them (test_gsi)."""
    servers = anonymous_servers
    odd = ["with space.txt", "quote'single", 'quote"double', "dollar $(touch pwned) `x`", "100%.dat",
           "semi;colon&amp", "-leading-dash", "dir with space/inner file"]
    make_files(world / "src", {name: 5000 + i for i, name in enumerate(odd)} | {"caf\u00e9.txt": 10})
    out = dtn(world, "run", f"{nodes(servers, 0)}{world}/src", f"{nodes(servers, 2)}{world}/dst",
              "--json", "--anonymous", check=1)
    for name in odd:
        assert identical(world / "src" / name, world / "dst" / name), name
    report = json.loads(out.stdout)
    assert [item["file"] for item in report["not_transferred"]] == ["caf\u00e9.txt"]
    assert "printable ASCII" in report["not_transferred"][0]["reason"]
    assert sorted(p.name for p in (world / "dst").iterdir()) == sorted(
        {n.split("/")[0] for n in odd}), "nothing landed under a mangled name"
    assert not (world / "src" / "pwned").exists() and not (world / "dst" / "pwned").exists()


def test_local_endpoints_keep_non_ascii_names(world, tmp_path):
    make_files(world / "src", {"caf\u00e9 \u00fcber.txt": 1234, "plain": 10})
    dtn(world, "run", str(world / "src"), str(world / "dst"), "-q", check=0)
    assert identical(world / "src" / "caf\u00e9 \u00fcber.txt", world / "dst" / "caf\u00e9 \u00fcber.txt")


def test_unreachable_node_and_permission_denied(world, servers):
    spec = {f"f{i}": 20_000 + i for i in range(12)}
    make_files(world / "src", spec | {"secret": 100})
    (world / "src" / "secret").chmod(0o000)
    dead = "127.0.0.1:20999"   # nothing listens here
    out = dtn(world, "run", f"{nodes(servers, 0)}{world}/src", f"{dead},{nodes(servers, 2)}{world}/dst",
              "--json", "--bdp", "1M", check=1)
    report = json.loads(out.stdout)
    assert [i["file"] for i in report["not_transferred"]] == ["secret"]
    assert "Permission denied" in report["not_transferred"][0]["reason"]
    for rel in spec:
        assert identical(world / "src" / rel, world / "dst" / rel), rel
    (run_dir,) = run_dirs(world)
    entries = journal(run_dir)
    retried = [e for e in entries if e["file"] == "f0"]
    assert [e["result"] for e in retried][-1] == "done"
    assert any(e["result"] == "failed" and dead in e["pair"] for e in entries), "dead node was tried"
    state = json.loads((run_dir / "state.json").read_text())
    assert state["retries"] > 0 and state["pairs"][f"{servers[0].node}>{dead}"]["state"] == "down"
