"""totals: the prints of a map the script clears after each print, added up into counters."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pmdas.hpcbpftrace.output import Variable
from pmdas.hpcbpftrace.totals import OTHER, Totals, is_full, map_keys_max


def keyed(counts: dict, name: str = "@execs") -> Variable:
    return Variable(name, "map", counts, True)


def test_prints_add_up_per_key():
    totals = Totals(max_keys=10)
    assert totals.add(keyed({"bash": 2, "cat": 1})).value == {"bash": 2, "cat": 1}
    assert totals.add(keyed({"cat": 4})).value == {"bash": 2, "cat": 5}
    after = totals.add(keyed({"ls": 1, "bash": 1}))
    assert after == Variable("@execs", "map", {"bash": 3, "cat": 5, "ls": 1}, True)


def test_scalar_prints_add_up():
    totals = Totals(max_keys=10)
    totals.add(Variable("@n", "map", 3, False))
    assert totals.add(Variable("@n", "map", 4, False)) == Variable("@n", "map", 7, False)


def test_keys_beyond_the_cap_are_summed_into_other_and_nothing_is_lost():
    totals = Totals(max_keys=3)
    totals.add(keyed({"a": 1, "b": 1}))
    got = totals.add(keyed({"c": 1, "d": 2, "e": 3, "a": 1})).value
    assert set(got) == {"a", "b", "c", OTHER} and got[OTHER] == 5 and got["a"] == 2
    got = totals.add(keyed({"f": 1, "c": 1})).value
    assert got == {"a": 2, "b": 1, "c": 2, OTHER: 6}


def test_a_print_that_is_not_a_count_leaves_the_totals():
    totals = Totals(max_keys=10)
    totals.add(keyed({"a": 1}))
    assert totals.add(keyed({"a": "text"})) is None
    assert totals.add(keyed({"a": [1, 2]})) is None
    assert totals.add(Variable("@execs", "hist", (), False)) is None
    assert totals.add(keyed({"a": 1.5})) is None
    assert totals.add(keyed({"a": 1})).value == {"a": 2}


def test_keep_only_forgets_variables_no_longer_delta():
    totals = Totals(max_keys=10)
    totals.add(keyed({"a": 1}, "@x"))
    totals.add(keyed({"a": 1}, "@y"))
    totals.keep_only(frozenset({"@y"}))
    assert totals.add(keyed({"a": 1}, "@x")).value == {"a": 1}
    assert totals.add(keyed({"a": 1}, "@y")).value == {"a": 2}


def test_a_full_map_is_one_at_bpftraces_key_limit():
    assert is_full(keyed({str(i): 1 for i in range(4)}), 4)
    assert not is_full(keyed({str(i): 1 for i in range(3)}), 4)
    assert not is_full(Variable("@n", "map", 9, False), 1)


@pytest.mark.parametrize("env, limit", [({}, 4096), ({"BPFTRACE_MAP_KEYS_MAX": "100"}, 100),
                                        ({"BPFTRACE_MAP_KEYS_MAX": "x"}, 4096),
                                        ({"BPFTRACE_MAP_KEYS_MAX": "0"}, 4096)])
def test_map_keys_max_follows_bpftraces_variable(env, limit):
    assert map_keys_max(env) == limit


@given(st.lists(st.dictionaries(st.text("abcdef", min_size=1, max_size=2), st.integers(0, 1000),
                                max_size=12), max_size=20), st.integers(1, 8))
def test_totals_only_grow_and_sum_every_count(prints, cap):
    """A counter never goes backwards: no key's total drops, none disappears, and the sum
    over all keys ([other] included) is the sum of every count printed."""
    totals, last = Totals(cap), {}
    for counts in prints:
        now = totals.add(keyed(counts)).value
        assert all(now[k] >= v for k, v in last.items())
        assert len(now) <= cap + 1
        last = now
    assert sum(last.values()) == sum(sum(c.values()) for c in prints)
