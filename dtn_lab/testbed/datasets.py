"""Test data sets shaped like ESnet's climate DTN test sets, scaled to one small machine.

ESnet publishes DTN test data as a few sets that differ in file-size mix, because the
mix is what decides whether concurrency, parallelism or pipelining pays off:

- ``small``:  many files of 30-400 KB (log-uniform), in a few subdirectories;
- ``medium``: MB-size files (1-8 MB);
- ``large``:  a few files of tens of MB;
- ``huge``:   two big files.

``scale`` multiplies file counts of the many-file sets and file sizes of the few-file
sets, so the shape survives scaling (tests use ~0.02; the default totals ~0.5 GiB).
Sizes are drawn from a generator seeded by the set's name: the same request yields the
same files.  Contents are distinct per file and per MiB (a hash stamped on a random
block), so a misplaced or truncated block shows in sizes and checksums while generation
costs about as much as writing the bytes.
"""
from __future__ import annotations

import hashlib
import math
import os
import random
from dataclasses import dataclass

KB, MB = 1000, 1000 ** 2


@dataclass(frozen=True, kw_only=True)
class DatasetShape:
    """How a data set looks: file count and size range, and what ``--scale`` multiplies."""

    name: str
    files: int
    min_size: int
    max_size: int
    scale_counts: bool      # True: scale the number of files; False: scale their sizes
    subdirs: int = 1


SHAPES: dict[str, DatasetShape] = {s.name: s for s in (
    DatasetShape(name="small", files=400, min_size=30 * KB, max_size=400 * KB, scale_counts=True, subdirs=4),
    DatasetShape(name="medium", files=40, min_size=1 * MB, max_size=8 * MB, scale_counts=True),
    DatasetShape(name="large", files=6, min_size=20 * MB, max_size=40 * MB, scale_counts=False),
    DatasetShape(name="huge", files=2, min_size=96 * MB, max_size=96 * MB, scale_counts=False),
)}


def file_sizes(shape: DatasetShape, scale: float = 1.0) -> list[int]:
    """Sizes of the files of one set at ``scale`` (deterministic)."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    rng = random.Random(f"dtn-testbed-{shape.name}")
    count = max(2, round(shape.files * scale)) if shape.scale_counts else shape.files
    size_scale = 1.0 if shape.scale_counts else scale
    lo, hi = math.log(shape.min_size), math.log(shape.max_size)
    return [max(1, int(math.exp(rng.uniform(lo, hi)) * size_scale)) for _ in range(count)]


def relpaths(shape: DatasetShape, count: int) -> list[str]:
    width = len(str(count))
    names = [f"{shape.name}-{i:0{width}d}.nc" for i in range(count)]
    if shape.subdirs <= 1:
        return names
    return [f"run{i % shape.subdirs}/{n}" for i, n in enumerate(names)]


def _write(path: str, size: int, block: bytes, stamp: bytes) -> None:
    with open(path, "wb") as f:
        left, chunk = size, 0
        while left > 0:
            head = hashlib.sha256(stamp + chunk.to_bytes(8, "big")).digest()
            piece = (head + block[len(head):])[:left]
            f.write(piece)
            left -= len(piece)
            chunk += 1


def generate(directory: str, shape_name: str, scale: float = 1.0) -> dict:
    """Write one data set into ``directory`` (readable by the servers' anonymous user).

    Existing files of the right size are kept, so ``up`` after ``up`` costs nothing; files
    that are not part of the set at this scale are removed.
    """
    shape = SHAPES[shape_name]
    sizes = file_sizes(shape, scale)
    paths = relpaths(shape, len(sizes))
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    block = os.urandom(1 << 20)
    for rel, size in zip(paths, sizes, strict=True):
        full = os.path.join(directory, rel)
        parent = os.path.dirname(full)
        if not os.path.isdir(parent):
            os.makedirs(parent)
            os.chmod(parent, 0o755)
        try:
            if os.path.getsize(full) == size:
                continue
        except OSError:
            pass
        _write(full, size, block, f"{shape_name}/{rel}".encode())
        os.chmod(full, 0o644)
    wanted = set(paths)
    for parent, _dirs, names in os.walk(directory):     # a smaller scale than last time
        for name in names:
            full = os.path.join(parent, name)
            if os.path.relpath(full, directory) not in wanted:
                os.unlink(full)
    return {"files": len(sizes), "bytes": sum(sizes), "min": min(sizes), "max": max(sizes),
            "scale": scale}
