"""Why did bpftrace stop?  Classify its standard error (pure, no I/O).

Three outcomes drive the runner:
  UNSUPPORTED  the kernel lacks what the script needs (no kprobes, a missing
               tracepoint or module, a tracepoint whose fields differ on this
               kernel): report the reason, never restart.
  BROKEN       the script itself does not compile (syntax or semantic error):
               restarting cannot help either.
  CRASHED      anything else (exit() in the script, a signal, a runtime error):
               restart with back-off.
Samples of each, captured from bpftrace 0.17, are in tests/hpcbpftrace/fixtures/*.stderr.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

UNSUPPORTED, BROKEN, CRASHED = "unsupported", "broken", "crashed"

# Lines that are always printed and say nothing about this failure.
_NOISE = (
    re.compile(r"couldn't set RLIMIT_MEMLOCK"),
    re.compile(r"^\s*~+\s*$"),                     # caret line under a source excerpt
)
_LOCATED = re.compile(r"^(?P<where>[^\s:]*:\d+(?:[-:]\d+)*): (?P<level>ERROR|WARNING): (?P<what>.*)$")
_ATTACH = re.compile(r"ERROR: Error attaching probe: '(?P<probe>[^']+)'")
_KERNEL_DETAIL = re.compile(r"^(create_probe_event|perf_event_open|bpf_attach_\w+|"
                            r"Could not|could not|No BTF|Kernel)", re.I)
# Compile-time errors that mean "this kernel differs", not "the script is wrong".
_KERNEL_MISMATCH = (
    re.compile(r"tracepoint not found: (?P<what>\S+)"),
    re.compile(r"does not contain a field named"),
    re.compile(r"[Cc]ould not resolve symbol"),
    re.compile(r"No BTF found|BTF is not available|kernel does not support", re.I),
    re.compile(r"(kfunc|fentry|kprobe|uprobe|usdt)\S* not (available|supported)", re.I),
)


@dataclass(frozen=True)
class Diagnosis:
    outcome: str     # UNSUPPORTED, BROKEN or CRASHED
    reason: str      # one sentence for the admin


def meaningful_lines(stderr: str) -> list[str]:
    """Standard error without the RLIMIT_MEMLOCK notice and excerpt markers."""
    return [line.rstrip() for line in stderr.splitlines()
            if line.strip() and not any(p.search(line) for p in _NOISE)]


def _clean(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def diagnose(stderr: str, returncode: int | None) -> Diagnosis:
    """Classify an exited bpftrace from its standard error and exit status."""
    lines = meaningful_lines(stderr)
    for i, line in enumerate(lines):
        m = _ATTACH.search(line)
        if m:
            details = [d for d in lines[:i] if _KERNEL_DETAIL.match(d.strip())]
            why = f" ({_clean(details[-1])})" if details else ""
            hint = ""
            if "kprobe_events" in why or m["probe"].startswith(("kprobe:", "kretprobe:")):
                hint = "; this kernel may lack kprobes (CONFIG_KPROBES) or the traced function"
            return Diagnosis(UNSUPPORTED, _clean(
                f"unsupported on this kernel: bpftrace cannot attach probe "
                f"'{m['probe']}'{why}{hint}", 500))
    errors = []
    for line in lines:
        m = _LOCATED.match(line.strip())
        if m and m["level"] == "ERROR":
            errors.append((m["where"], m["what"]))
    for where, what in errors:
        if any(p.search(what) for p in _KERNEL_MISMATCH):
            return Diagnosis(UNSUPPORTED, _clean(
                f"unsupported on this kernel: {what} (at {where})", 500))
    if errors:
        where, what = errors[0]
        return Diagnosis(BROKEN, _clean(f"script error at {where}: {what}", 500))
    plain = [line.strip()[len("ERROR:"):].strip() for line in lines
             if line.strip().startswith("ERROR:")]
    if plain:
        return Diagnosis(CRASHED, _clean(f"bpftrace stopped: {plain[-1]}"))
    if returncode is None:
        return Diagnosis(CRASHED, "bpftrace stopped")
    if returncode < 0:
        return Diagnosis(CRASHED, f"bpftrace was killed by signal {-returncode}")
    return Diagnosis(CRASHED, f"bpftrace exited with status {returncode}")
