"""The scale fixes (bench/lustre_scale.py) change speed, not answers.

Grouped counter guarding is checked against a per-counter model written here the slow,
obvious way (generated refresh sequences, a fixture tree); the possessive job_stats
pattern against the portable one (generated text, the fixture files).
"""

from __future__ import annotations

import glob
import os
import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lustre_helpers import FIXTURES, make_refresher

from pmdas.hpclustre import job_stats
from pmdas.hpclustre.counters import CounterGuard

P = "hpc.lustre."


class PerCounterGuard:
    """The reference: every counter on its own, exported as the sum of its increases."""

    def __init__(self):
        self.last, self.total, self.seen, self.resets = {}, {}, set(), 0

    def delta(self, key, raw):
        previous = self.last.get(key)
        self.last[key] = raw
        self.seen.add(key)
        if previous is None:
            return raw
        if raw < previous:
            self.resets += 1
            return raw
        return raw - previous

    def monotonic(self, key, raw):
        self.total[key] = self.total.get(key, 0) + self.delta(key, raw)
        return self.total[key]

    def sweep(self, keep):
        for key in [k for k in self.last if k not in self.seen and not keep(k)]:
            del self.last[key]
            self.total.pop(key, None)
        self.seen = set()


refresh_plans = st.lists(   # refreshes → groups → {counter name: raw value}
    st.dictionaries(st.sampled_from(["a", "b", "c"]),
                    st.dictionaries(st.sampled_from(["x", "y", "z"]), st.integers(0, 50), max_size=3),
                    max_size=3),
    min_size=1, max_size=8)


@settings(max_examples=300)
@given(refresh_plans, st.lists(st.booleans(), min_size=8, max_size=8))
def test_grouped_guard_matches_per_counter_guard(plan, b_failed):
    """Counters appear, go back, vanish and come back; a group whose source failed this
    refresh (not updated, kept by the sweep) survives, as the collector arranges."""
    for method in ("monotonic", "delta"):
        grouped, reference = CounterGuard(), PerCounterGuard()
        for groups, failed in zip(plan, b_failed, strict=False):
            for group, counters in groups.items():
                if failed and group == "b":
                    continue
                names, raw = tuple(counters), tuple(counters.values())
                many = grouped.monotonic_many if method == "monotonic" else grouped.deltas
                got = many((group,), names, raw)
                expected = tuple(getattr(reference, method)((group, n), v) for n, v in counters.items())
                assert tuple(got) == expected, (method, group, counters)
            grouped.sweep(keep=lambda key, failed=failed: failed and key[0] == "b")
            reference.sweep(keep=lambda key, failed=failed: failed and key[0] == "b")
            assert grouped.resets == reference.resets


def test_grouped_guard_hands_back_raw_values_until_something_goes_back():
    guard = CounterGuard()
    raw = (5, 7)
    assert guard.monotonic_many(("osc", "t"), ("a", "b"), raw) is raw
    raw = (6, 9)
    assert guard.monotonic_many(("osc", "t"), ("a", "b"), raw) is raw
    guard.sweep()
    assert guard.monotonic_many(("osc", "t"), ("a", "b"), (1, 10)) == (7, 10)
    assert guard.last_reset.startswith("osc t a went back from 6 to 1")


def test_client_snapshot_reuses_parsed_objects_and_stays_monotonic_after_clear(tree):
    root = tree("v2_15", "client")
    r = make_refresher(root)
    r.refresh_once()
    second = r.refresh_once()
    device = second.snapshot.devices["scratch-OST0000"]
    path = glob.glob(os.path.join(root, "sys/kernel/debug/lustre/osc/scratch-OST0000-osc-*/rpc_stats"))[0]
    before = second.values[P + "client.target.rpc_hist.pages.write"]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    cleared = re.sub(r"^(\d+:\s+)\d+(.*\|\s+)\d+", r"\g<1>0\g<2>0", text, flags=re.MULTILINE)
    assert cleared != text
    with open(path, "w", encoding="utf-8") as f:
        f.write(cleared)           # lctl set_param osc.*.rpc_stats=clear
    third = r.refresh_once()
    after = third.values[P + "client.target.rpc_hist.pages.write"]
    assert all(after[k] >= v for k, v in before.items() if k.startswith("scratch-OST0000::"))
    assert third.values[P + "counter_resets"] > 0
    assert device.rpc is not None and third.snapshot.devices["scratch-OST0001"].rpc is not None



job_stats_pieces = st.lists(st.sampled_from([
    "job_stats:\n", "- job_id:          ", '"SLURM_JOB10:0:node-client"', "24", "\n",
    "  snapshot_time:   1723114647.887515895 secs.nsecs", "  write_bytes:     ", "  punch: ",
    "{ samples: ", "{samples:", "       861", "0", "1", "-3", ", unit: ", "bytes", "usecs", " reqs",
    ", min: ", ", max: ", ", sum: ", "11025514496", ", sumsq: 166242808078794752",
    ", hist: { 32K: 1, 16M: 666 }", " }", "}", ",", " ", "  ", "\t", ":", "é", "_x",
]), max_size=80).map("".join)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="possessive quantifiers need Python 3.11")
@settings(max_examples=500)
@given(st.one_of(job_stats_pieces, st.text(max_size=300)))
def test_possessive_counter_pattern_matches_as_the_portable_one(text):
    assert job_stats._COUNTER.findall(text) == job_stats._PORTABLE_COUNTER.findall(text)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="possessive quantifiers need Python 3.11")
def test_possessive_counter_pattern_on_real_files():
    files = glob.glob(os.path.join(FIXTURES, "**", "job_stats"), recursive=True)
    assert files
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        assert job_stats._COUNTER.findall(text) == job_stats._PORTABLE_COUNTER.findall(text), path
