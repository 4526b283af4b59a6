"""Starting globus-url-copy processes that die with dtn-transfer, from any thread.

A killed dtn-transfer must not leave transfers running (a resume would race them), so each
child asks the kernel for SIGKILL when its parent goes (PR_SET_PDEATHSIG).  Setting that
between fork and exec with ``preexec_fn`` is unsafe in a threaded process (the child may
deadlock on a lock another thread held at fork time), and batches start from one thread
per node pair.  So the request is made by util-linux's ``setpriv --pdeathsig KILL``, which
execs the real command after setting it; no Python code runs in the forked child.  (The
request is made just after exec, so a parent gone within that instant is not seen; a
batch's thread lives as long as its process.)
"""
from __future__ import annotations

import shutil
import subprocess

SETPRIV = shutil.which("setpriv")


def dying_with_us(argv: list[str]) -> list[str]:
    """``argv`` wrapped so that the process gets SIGKILL when its parent dies (when util-linux's
    setpriv is there; Debian installs it with util-linux, an essential package)."""
    return [SETPRIV, "--pdeathsig", "KILL", "--", *argv] if SETPRIV else list(argv)


def start(argv: list[str], **kwargs) -> subprocess.Popen:  # noqa: ANN003 - Popen's keywords
    """Popen of ``argv`` dying with us; never with ``preexec_fn`` (threads)."""
    if "preexec_fn" in kwargs:
        raise ValueError("no preexec_fn: batches start from threads")
    return subprocess.Popen(dying_with_us(argv), stdin=subprocess.DEVNULL, **kwargs)
