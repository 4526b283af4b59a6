"""Which lines of a Lustre stats file count an operation, and which count one again.

Lustre counts some requests on more than one line, differently per version
(checked against lustre-release 2.10-2.16):

* every MDT rename is counted in ``rename`` and again in ``samedir_rename`` or
  ``crossdir_rename`` (all versions), and in 2.16 also in ``parallel_rename_file``
  or ``parallel_rename_dir`` when it ran without the big rename lock;
* 2.14 and later time each bulk read and write on ``read``/``write`` lines beside
  ``read_bytes``/``write_bytes`` (OST stats and job_stats; MDT ones from 2.15);
* 2.10 OST stats also carry the generic OBD-operation lines, where each bulk I/O
  is counted once more in ``preprw`` and once more in ``commitrw``.

A sum of "operations served" therefore adds only the lines that count an
operation once, and never the bulk I/O lines, so it means the same on every version.
"""
from __future__ import annotations

# Lines that repeat an operation already counted on another line.
REPEATS = frozenset(("read", "write", "preprw", "commitrw", "samedir_rename", "crossdir_rename",
                     "parallel_rename_file", "parallel_rename_dir"))

# What the help texts say about the sums (kept here, next to the rule).
SUM_RULE = ("Each request is counted once: the bulk read/write lines (read_bytes, write_bytes, "
            "and the read/write timing lines of 2.14+) are left out, as are the lines that count "
            "a request again: samedir_rename, crossdir_rename (all versions) and "
            "parallel_rename_file/parallel_rename_dir (2.16) repeat 'rename'; preprw and "
            "commitrw (2.10 OST stats) repeat each bulk I/O.")


def counts_once(op: str) -> bool:
    """True for a line that counts requests no other line of the same file counts."""
    return not op.endswith("_bytes") and op not in REPEATS
