"""Bulk paths for big instance domains give what the value-by-value ones gave: Column reads as
its dict, the PCP glue's bulk conversion equals coerce() value by value, the collector pause."""
from __future__ import annotations

import gc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pmdas.common.prepare import by_instance_id, coerce
from pmdas.common.refresh import collector_paused
from pmdas.common.table import DOUBLE, I32, I64, STRING, U32, U64, Column


def test_column_reads_as_the_dict_of_its_values():
    column = Column(("a", "b", "c"), (1, None, 0))
    assert column == {"a": 1, "c": 0} and dict(column) == {"a": 1, "c": 0}
    assert len(column) == 2 and list(column) == ["a", "c"] and "b" not in column
    assert column.get("b") is None and column["c"] == 0
    with pytest.raises(KeyError):
        column["b"]
    assert Column((), ()) == {}
    with pytest.raises(ValueError):
        Column(("a",), ())


def test_collector_paused_inside_and_back_after():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("a refresh that fails")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():     # someone else disabled it: left as it was
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def _value_by_value(kind, raw, ids):
    """The PCP glue's conversion as it was written before the bulk path: the reference."""
    out = {}
    for inst, v in raw.items():
        ident = ids.get(inst)
        value = coerce(kind, v)
        if ident is not None and value is not None:
            out[ident] = value
    return out


_NAMES = st.sampled_from(["a", "b", "c", "d", "e"])
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                    st.text(max_size=3), st.integers(0, 100), st.just(""))


@given(st.sampled_from([STRING, DOUBLE, U32, U64, I32, I64]),
       st.dictionaries(_NAMES, _VALUES, max_size=5),
       st.dictionaries(_NAMES, st.integers(0, 99), max_size=5),
       st.booleans())
def test_bulk_conversion_equals_value_by_value(kind, raw, ids, as_column):
    given_raw = Column(tuple(raw), tuple(raw.values())) if as_column else raw
    expected = _value_by_value(kind, {k: v for k, v in raw.items() if not as_column or v is not None}, ids)
    got = by_instance_id(kind, given_raw, ids)
    # repr: the text "nan" is a DOUBLE NaN on both paths, and NaN never equals itself
    assert {k: repr(v) for k, v in got.items()} == {k: repr(v) for k, v in expected.items()}
    assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]


def test_homogeneous_columns_take_the_bulk_path():
    names = tuple(f"j{k}" for k in range(1000))
    ids = {name: k for k, name in enumerate(names)}
    column = Column(names, tuple(None if k % 3 else k for k in range(1000)))
    assert by_instance_id(U32, column, ids) == {k: k for k in range(0, 1000, 3)}
    assert by_instance_id(DOUBLE, column, ids)[3] == 3.0
    assert by_instance_id(I32, Column(names[:2], (2**40, 1)), ids) == {1: 1}   # out of range


def test_instance_ids_with_repeated_names_and_the_forget_boundary(tmp_path):
    from pmdas.common.instances import InstanceIds
    ids = InstanceIds(str(tmp_path / "ids.json"), forget_after=10)
    assert ids.assign(["a", "b", "a"], now=0) == {"a": 0, "b": 1}
    assert ids.assign(["c"], now=10) == {"c": 2}           # a, b unseen for exactly 10 s: kept
    assert ids.assign(["a"], now=10.5) == {"a": 0}         # b unseen for 10.5 s: forgotten
    ids.save()
    restarted = InstanceIds(str(tmp_path / "ids.json"), forget_after=10)
    assert restarted.assign(["a", "b", "c"], now=11) == {"a": 0, "b": 3, "c": 2}
