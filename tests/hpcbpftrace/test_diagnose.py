"""Classifying bpftrace's exit from its real standard error (fixtures/*.stderr)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pmdas.hpcbpftrace.diagnose import BROKEN, CRASHED, UNSUPPORTED, diagnose, meaningful_lines
from pmdas.hpcbpftrace.procstat import parse_fdinfo, parse_proc_stat

from .conftest import fixture_text


def test_kprobe_without_kernel_kprobes_is_unsupported():
    found = diagnose(fixture_text("kprobe_unsupported.stderr"), 255)
    assert found.outcome == UNSUPPORTED
    assert "kretprobe:lnet_send" in found.reason and "kprobe_events" in found.reason
    assert found.reason.startswith("unsupported on this kernel")


def test_missing_tracepoint_is_unsupported():
    found = diagnose(fixture_text("tracepoint_missing.stderr"), 1)
    assert found.outcome == UNSUPPORTED and "nonexist:foo" in found.reason


def test_tracepoint_field_changed_between_kernels_is_unsupported():
    found = diagnose(fixture_text("field_mismatch.stderr"), 1)
    assert found.outcome == UNSUPPORTED and "'family'" in found.reason


def test_syntax_error_is_broken_with_location():
    found = diagnose(fixture_text("syntax_error.stderr"), 1)
    assert found.outcome == BROKEN
    assert "stdin:1:52-53" in found.reason and "syntax error" in found.reason


def test_plain_exit_and_signal_are_crashes():
    noise = fixture_text("syntax_error.stderr").splitlines()[0]
    assert diagnose(noise, 0) == diagnose("", 0)
    assert diagnose(noise, 0).outcome == CRASHED and "status 0" in diagnose(noise, 0).reason
    assert "signal 9" in diagnose("", -9).reason
    assert "boom" in diagnose("ERROR: boom\n", 1).reason


def test_memlock_notice_is_noise():
    assert meaningful_lines(fixture_text("syntax_error.stderr"))[0].startswith("stdin:1:52-53")


@given(st.text(max_size=500), st.one_of(st.none(), st.integers(-64, 255)))
def test_diagnose_never_raises(stderr, code):
    found = diagnose(stderr, code)
    assert found.outcome in (UNSUPPORTED, BROKEN, CRASHED) and found.reason


def test_proc_stat_with_awkward_comm():
    text = "4242 (bpf) trace) S 1 4242 4242 0 -1 4194560 9814 0 10 0 150 50 0 0 20 0 1 0"
    assert parse_proc_stat(text, 100) == 2.0
    assert parse_proc_stat("garbage", 100) is None


def test_fdinfo():
    info = parse_fdinfo("pos:\t0\nprog_type:\t5\nrun_time_ns:\t1234\nrun_cnt:\t7\n")
    assert info["run_time_ns"] == "1234" and info["run_cnt"] == "7"
