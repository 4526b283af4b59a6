"""globus-url-copy children die with dtn-transfer, and start without preexec_fn (threads)."""
import ast
import os
import pathlib
import subprocess
import threading
import time

from dtn_transfer.children import start

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "dtn_transfer"


def test_no_process_starts_with_preexec_fn():
    """preexec_fn runs Python between fork and exec: unsafe in a threaded process."""
    found = []
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "preexec_fn":
                found.append(f"{path.name}:{node.value.lineno}")
    assert found == []


def test_a_child_dies_when_the_thread_that_started_it_ends():
    started = []

    def batch_thread():
        started.append(start(["sleep", "60"], stdout=subprocess.DEVNULL))
        time.sleep(0.5)   # the request is made just after exec: a batch thread lives far longer

    thread = threading.Thread(target=batch_thread)
    thread.start()
    thread.join()
    proc = started[0]
    try:
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.returncode == -9, "SIGKILL on its parent's end"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, 9)
            proc.wait()
