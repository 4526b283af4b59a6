"""--verify at any size: one hash per side, a wait that scales with the file, range checksums."""
import os
import time

from dtn_transfer.batchrun import batch_argv
from dtn_transfer.endpoints import Endpoint
from dtn_transfer.options import RunOptions
from dtn_transfer.plan import PlannedFile
from dtn_transfer.schedule import Batch
from dtn_transfer.tuning import Tuning
from dtn_transfer.verify import Checker

from .conftest import needs_gridftp

MIB = 1 << 20


def test_verify_does_not_make_globus_url_copy_hash_too():
    tuning = Tuning(concurrency=1, parallelism=1, pipelining=False)
    batch = Batch(pair=0, bin="large", files=(), tuning=tuning)
    argv = batch_argv(batch, RunOptions(verify=True), "list", "dump", third_party=True)
    assert "-verify-checksum" not in argv


def test_ranges_are_compared_one_by_one(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    data = os.urandom(3 * MIB)
    (tmp_path / "s" / "big").write_bytes(data)
    bad = bytearray(data)
    bad[MIB + 5] ^= 1                                   # one bit in the second range
    (tmp_path / "d" / "big").write_bytes(bytes(bad))
    checker = Checker(Endpoint((), str(tmp_path / "s")), Endpoint((), str(tmp_path / "d")), (None, None),
                      False)
    pieces = [(0, MIB), (MIB, MIB), (2 * MIB, MIB)]
    assert checker.compare_ranges("big", pieces[:1] + pieces[2:]) is None
    assert checker.compare_ranges("big", pieces).startswith(f"range {MIB}+{MIB}: MD5 mismatch")


@needs_gridftp
def test_a_checksum_longer_than_the_timeout_still_verifies(world, servers):
    size = 384 * MIB
    block = os.urandom(MIB)
    for side in ("src", "dst"):
        path = world / side / "big"
        with open(path, "wb") as f:
            for _ in range(size // MIB):
                f.write(block)
        path.chmod(0o644)
    src = Endpoint((servers[0].node,), str(world / "src"))
    dst = Endpoint((servers[2].node,), str(world / "dst"))
    timeout = 0.3                                       # each side's CKSM takes longer than this
    checker = Checker(src, dst, (servers[0].node, servers[2].node), True, timeout=timeout)
    started = time.monotonic()
    try:
        result = checker.verify([PlannedFile(relpath="big", size=size, bin="large", pair=0)])
    finally:
        checker.close()
    took = time.monotonic() - started
    assert result == {"big": None}, result
    assert took > timeout, f"the hash took {took:.2f}s: not longer than the base timeout"
