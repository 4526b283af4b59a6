"""Sources: the reads an agent makes each refresh, each bounded by a timeout.

A source is a named callable that reads (a file tree, a command's output) and
parses.  It raises SourceError with one sentence for the admin when the source
is missing or broken.  A source that hangs is abandoned after its timeout and
is not started again until the hung call returns, so hung reads cannot pile up.
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class SourceError(Exception):
    """A source could not be read; the message is one sentence for the admin."""


@dataclass(frozen=True)
class Source:
    name: str
    read: Callable[[], Any]
    timeout: float = 10.0


@dataclass(frozen=True)
class SourceResult:
    name: str
    ok: bool
    value: Any = None
    error: str = ""
    seconds: float = 0.0


class Results(Mapping[str, SourceResult]):
    """The results of one refresh's sources, by source name."""

    def __init__(self, results: Mapping[str, SourceResult]):
        self._results = dict(results)

    def __getitem__(self, name: str) -> SourceResult:
        return self._results[name]

    def __iter__(self):
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def value(self, name: str, default: Any = None) -> Any:
        """The parsed value of a source that succeeded, else ``default``."""
        result = self._results.get(name)
        return result.value if result is not None and result.ok else default


class SourceRunner:
    """Runs sources with per-source timeouts, remembering which ones are still hung."""

    def __init__(self) -> None:
        self._hung: dict[str, threading.Thread] = {}

    def run(self, sources: Sequence[Source]) -> Results:
        results: dict[str, SourceResult] = {}
        pending: list[tuple[Source, threading.Thread, dict, float]] = []
        for source in sources:
            hung = self._hung.get(source.name)
            if hung is not None and hung.is_alive():
                results[source.name] = SourceResult(
                    source.name, False,
                    error=f"source {source.name} is still hung from an earlier refresh "
                          f"(timed out after {source.timeout:g} s)")
                continue
            self._hung.pop(source.name, None)
            box: dict[str, Any] = {}
            thread = threading.Thread(target=_call, args=(source.read, box),
                                      name=f"source-{source.name}", daemon=True)
            pending.append((source, thread, box, time.monotonic()))
            thread.start()
        for source, thread, box, started in pending:
            thread.join(max(0.0, source.timeout - (time.monotonic() - started)))
            seconds = time.monotonic() - started
            if thread.is_alive():
                self._hung[source.name] = thread
                results[source.name] = SourceResult(
                    source.name, False, seconds=seconds,
                    error=f"source {source.name} timed out after {source.timeout:g} s")
            elif "error" in box:
                results[source.name] = SourceResult(source.name, False, error=box["error"],
                                                    seconds=seconds)
            else:
                results[source.name] = SourceResult(source.name, True, value=box.get("value"),
                                                    seconds=seconds)
        return Results(results)


def _call(read: Callable[[], Any], box: dict) -> None:
    try:
        box["value"] = read()
    except SourceError as exc:
        box["error"] = str(exc)
    except Exception as exc:  # a parser bug must not take the agent down
        box["error"] = f"{type(exc).__name__}: {exc}"


def run_command(argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None) -> str:
    """Run a command without a shell and return its standard output as text.

    Raises SourceError with one sentence when it is missing, fails or times out.
    """
    try:
        done = subprocess.run(list(argv), capture_output=True, timeout=timeout,
                              env=None if env is None else {**os.environ, **env},
                              stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        raise SourceError(f"command {argv[0]} not found") from None
    except PermissionError:
        raise SourceError(f"command {argv[0]} is not executable") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"command {' '.join(argv[:2])} timed out after {timeout:g} s") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = detail[-1] if detail else f"exit status {done.returncode}"
        raise SourceError(f"command {' '.join(argv[:2])} failed: {why}")
    return done.stdout.decode("utf-8", "replace")


def read_text(path: str) -> str:
    """Read a small text file, turning OS errors into one-sentence SourceErrors."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        raise SourceError(f"{path} does not exist") from None
    except PermissionError:
        raise SourceError(f"{path} is not readable (permission denied)") from None
    except OSError as exc:
        raise SourceError(f"{path} could not be read: {exc.strerror}") from None


def under(root: str, path: str) -> str:
    """``path`` (absolute, e.g. /sys/class/infiniband) below a root prefix (fixture tree or /)."""
    return os.path.join(root, path.lstrip("/")) if root not in ("", "/") else path
