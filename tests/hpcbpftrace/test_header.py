"""Script headers: the curated set, the grammar's errors, and fuzzing."""
from __future__ import annotations

import glob
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pmdas.hpcbpftrace.header import (
    KINDS,
    UNITS,
    HeaderError,
    misdeclared_exports,
    parse_header,
    probe_kinds,
    unused_exports,
    valid_name,
)
from pmdas.hpcbpftrace.registry import CURATED_DIR

CURATED = sorted(glob.glob(os.path.join(CURATED_DIR, "*.bt")))
GOOD = """// name: demo
// description: A demo script.
// requires: tracepoint, btf
// exports: @opens counter by comm unit count: files opened
// exports: @lat histogram by device,op unit us: latency
//
// prose: free text with a colon is not a key? it is, see below

tracepoint:syscalls:sys_enter_openat { @opens[comm] = count(); @lat[1, 2] = hist(3); }
"""


def test_curated_set_is_complete_and_valid():
    names = {os.path.basename(p)[:-3] for p in CURATED}
    expected = {"syscalls", "biolatency", "runqlat", "cswitch", "migrations", "pagefaults", "tcpretrans",
                "rwbytes", "procexec", "oomkill", "lustre_client", "lnet"}
    assert expected <= names
    for path in CURATED:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        header = parse_header(text)
        assert header.name == os.path.basename(path)[:-3]
        assert header.exports, path
        assert unused_exports(header, text) == [], path
        assert misdeclared_exports(header, text) == [], path
        for export in header.exports:
            assert export.help and export.kind in KINDS and export.unit in UNITS
            # every exported map is printed periodically, so values keep flowing
            assert f"print({export.variable})" in text, (path, export.variable)


def test_kprobe_scripts_declare_and_use_kprobes():
    for name in ("lustre_client", "lnet"):
        with open(os.path.join(CURATED_DIR, f"{name}.bt"), encoding="utf-8") as f:
            header = parse_header(f.read())
        assert "kprobe" in header.requires
        assert "kprobe" in header.probe_kinds and "kretprobe" in header.probe_kinds


def test_good_header_fields():
    # "prose" is not a known key: a typo'd key must fail, so use real prose instead
    text = GOOD.replace("// prose: free text with a colon is not a key? it is, see below",
                        "// free text without a key")
    header = parse_header(text)
    assert header.name == "demo"
    assert header.requires == ("tracepoint", "btf")
    opens, lat = header.exports
    assert (opens.variable, opens.kind, opens.keys, opens.unit) == ("@opens", "counter", ("comm",), "count")
    assert lat.keys == ("device", "op") and lat.kind == "histogram" and lat.unit == "us"
    assert lat.name == "lat" and header.export("@lat") is lat and header.export("@x") is None
    assert header.probe_kinds == ("tracepoint",)


@pytest.mark.parametrize("change, message", [
    (("// name: demo", "// name: Demo"), "lower-case"),
    (("// name: demo\n", ""), "no '// name:'"),
    (("// description: A demo script.\n", ""), "no '// description:'"),
    (("counter by comm", "gauge by comm"), "kind 'gauge'"),
    (("unit count", "unit furlongs"), "unit 'furlongs'"),
    (("@opens counter", "opens counter"), "exports must read"),
    (("// requires:", "// needs:"), "unknown header key 'needs'"),
    (("// exports: @lat", "// exports: @opens"), "exported twice"),
    (("by device,op", "by Device"), "key name"),
])
def test_header_errors_name_the_problem(change, message):
    text = GOOD.replace("// prose: free text with a colon is not a key? it is, see below", "//")
    with pytest.raises(HeaderError, match=message):
        parse_header(text.replace(*change))


def test_unknown_key_is_an_error_not_silence():
    with pytest.raises(HeaderError, match="unknown header key 'prose'"):
        parse_header(GOOD)


def test_header_stops_at_first_code_line():
    text = "// name: a\n// description: d\nBEGIN {}\n// exports: @x counter: late\n"
    assert parse_header(text).exports == ()


def test_unused_exports_found():
    text = "// name: a\n// description: d\n// exports: @x counter: x\n// exports: @xy counter: y\n" \
           "BEGIN { @xy = count(); }\n"
    assert unused_exports(parse_header(text), text) == ["@x"]


@pytest.mark.parametrize("name, ok", [("syscalls", True), ("a1_b", True), ("", False),
                                      ("../etc/passwd", False), ("a/b", False), ("A", False),
                                      ("1abc", False), ("x" * 41, False), ("a.bt", False)])
def test_valid_name(name, ok):
    assert valid_name(name) is ok


def test_probe_kinds_ignores_comments():
    assert probe_kinds("// kprobe:foo\ntracepoint:a:b {}\n  kretprobe:x {}") == ("kretprobe", "tracepoint")


@given(st.text(max_size=400))
def test_parse_header_raises_only_header_error(text):
    try:
        header = parse_header(text)
    except HeaderError as exc:
        assert str(exc)
    else:
        assert valid_name(header.name)


# Tracepoints that fire on every system call, context switch, wakeup or page fault.
HOT_PROBES = ("raw_syscalls:", "syscalls:", "sched:sched_switch", "sched:sched_wakeup",
              "exceptions:page_fault")


def test_default_set_stays_off_hot_paths():
    """The default set costs a busy job little (bench/bpftrace_overhead.py): no script in it
    probes a per-event hot path.  runqlat, on demand, times only 1 wakeup in 8."""
    from pmdas.hpcbpftrace.collector import DEFAULT_ENABLED
    for name in DEFAULT_ENABLED:
        with open(os.path.join(CURATED_DIR, f"{name}.bt"), encoding="utf-8") as f:
            text = f.read()
        assert not [p for p in HOT_PROBES if p in text], name
    with open(os.path.join(CURATED_DIR, "runqlat.bt"), encoding="utf-8") as f:
        assert f.read().count("((nsecs >> 20) & 7) == 0") == 2, "runqlat samples wakeups and preemptions"


# Map keys with a small bound on a node; anything else (process names, addresses, pids)
# would fill bpftrace's 4,096 keys in a script's life.
BOUNDED_KEYS = {"device"}


def test_curated_maps_keyed_without_a_small_bound_are_cleared_after_each_print():
    """procexec, tcpretrans, migrations, ... : a by-name or by-address map is a delta, and
    clear()ed right after its print in the same probe."""
    for path in CURATED:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for export in parse_header(text).exports:
            if set(export.keys) - BOUNDED_KEYS:
                assert export.kind == "delta", (path, export.variable)
            if export.kind == "delta":
                assert f"print({export.variable});\n\tclear({export.variable});" in text, \
                    (path, export.variable)


def test_delta_is_a_counter_to_pcp():
    header = parse_header("// name: a\n// description: d\n// exports: @x delta by comm unit count: x\n"
                          "// exports: @y counter: y\n")
    assert [e.metric_kind for e in header.exports] == ["counter", "counter"]
    assert header.deltas == {"@x"}


@pytest.mark.parametrize("kind, body, problem", [
    ("delta", "print(@x);", "@x is declared delta but never clear()ed"),
    ("delta", "print(@x); zero(@x);", "@x is declared delta but never clear()ed"),
    ("delta", "print(@x); clear(@x);", None),
    ("counter", "print(@x); clear(@x);", "@x is declared counter but the script clears it, so its "
                                         "values would go backwards; declare it delta"),
    ("counter", "print(@x); zero( @x );", "declared counter but the script zeros it"),
    ("histogram", "print(@x); clear(@x);", "declare it instant"),
    ("instant", "print(@x); clear(@x);", None),
    ("counter", "print(@x); clear(@xy);", None),
    ("counter", "print(@x);\n// clear(@x) in a comment", None),
])
def test_misdeclared_exports(kind, body, problem):
    text = (f"// name: a\n// description: d\n// exports: @x {kind}: x\n"
            f"tracepoint:a:b {{ @x = count(); @xy = count(); }}\ninterval:s:1 {{ {body} }}\n")
    found = misdeclared_exports(parse_header(text), text)
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and problem in found[0]
