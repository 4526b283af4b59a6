"""--split: a very large file as byte ranges (globus-url-copy -off/-len) over every node pair."""
import json
import time

import pytest

from dtn_transfer.progress import parse_transfer_log
from dtn_transfer.split import ranges

from .conftest import dtn, identical, journal, make_files, needs_gridftp, run_dirs

MIB = 2 ** 20


@pytest.mark.parametrize("size,piece", [(1, 1), (10, 3), (5 * MIB, MIB), (64 * MIB + 7, 8 * MIB),
                                        (100, 1000), (3 * MIB + 1, MIB)])
def test_ranges_cover_the_file_exactly_once(size, piece):
    pieces = ranges(size, piece)
    assert pieces[0][0] == 0 and all(length > 0 for _, length in pieces)
    assert all(a + n == b for (a, n), (b, _) in zip(pieces, pieces[1:], strict=False)), "contiguous"
    assert pieces[-1][0] + pieces[-1][1] == size
    assert len(pieces) >= min(2, size), "a split file uses at least two ranges"
    assert max(n for _, n in pieces) <= max(piece, -(-size // 2)) + MIB


def stored(world, index: int, name: str):
    """Writes the destination server logged: ESTO for a range, STOR for a whole file."""
    with open(world / "srv" / f"transfer-{index}.log", encoding="utf-8") as f:
        records = parse_transfer_log(f.read())
    return [r for r in records if r.file.endswith("/" + name) and r.type in ("STOR", "ESTO")]


@needs_gridftp
def test_a_big_file_goes_as_ranges_over_both_pairs_and_lands_byte_identical(world, servers):
    size = 24 * MIB + 12345
    make_files(world / "src", {"big.bin": size, "small.txt": 1000})
    stale = world / "dst" / "big.bin"          # longer than the new file: ranges alone would keep its tail
    stale.write_bytes(b"\0" * (30 * MIB))
    stale.chmod(0o666)
    nodes = lambda *i: ",".join(servers[k].node for k in i)  # noqa: E731
    out = dtn(world, "run", f"{nodes(0, 1)}{world}/src", f"{nodes(2, 3)}{world}/dst", "--split", "4M",
              "--verify", "--json", check=0)
    assert json.loads(out.stdout)["state"] == "completed"
    for name in ("big.bin", "small.txt"):
        assert identical(world / "src" / name, world / "dst" / name), name
    deadline = time.monotonic() + 15      # the servers flush their transfer logs every 5 s
    per_node = {i: stored(world, i, "big.bin") for i in (2, 3)}
    while not all(per_node.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
        per_node = {i: stored(world, i, "big.bin") for i in (2, 3)}
    assert all(per_node.values()), f"both destination nodes wrote ranges: {per_node}"
    assert len(per_node[2]) + len(per_node[3]) >= 6, "about 4 MiB per range"
    assert sum(r.nbytes for records in per_node.values() for r in records) >= size
    results = {e["file"]: e for e in journal(run_dirs(world)[0])}
    assert results["big.bin"]["result"] == "done" and results["small.txt"]["result"] == "done"


@needs_gridftp
def test_split_needs_gridftp_on_both_sides(world, servers):
    make_files(world / "src", {"a": 10})
    out = dtn(world, "run", str(world / "src"), f"{servers[2].node}{world}/dst", "--split", "1M")
    assert out.returncode == 2 and "--split" in out.stderr


@needs_gridftp
def test_ranges_of_a_dead_pair_go_to_the_live_one(world, servers):
    size = 10 * MIB + 1
    make_files(world / "src", {"big.bin": size})
    dead = "127.0.0.1:20999"   # nothing listens here
    src, dst = f"{servers[0].node},{servers[1].node}{world}/src", f"{dead},{servers[2].node}{world}/dst"
    out = dtn(world, "run", src, dst, "--split", "2M", "--json", check=0)
    assert json.loads(out.stdout)["state"] == "completed"
    assert identical(world / "src" / "big.bin", world / "dst" / "big.bin")
    state = json.loads((run_dirs(world)[0] / "state.json").read_text())
    assert state["pairs"][f"{servers[0].node}>{dead}"]["state"] == "down"
