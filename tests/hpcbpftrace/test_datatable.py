"""datatable: script variables → instances of hpc.bpftrace.data.*, kept while the keys stay."""
from __future__ import annotations

import json

from pmdas.hpcbpftrace.datatable import DataTable
from pmdas.hpcbpftrace.header import parse_header
from pmdas.hpcbpftrace.output import Variable, parse_line
from pmdas.hpcbpftrace.registry import Script

HEADER = """// name: {name}
// description: test
// exports: @m counter by slot unit count: a keyed counter
// exports: @h histogram by dev unit us: a keyed histogram
// exports: @lat histogram unit ns: a plain histogram
"""


def script(name: str = "s", header: str = HEADER) -> Script:
    return Script(name, f"/x/{name}.bt", "admin", True, parse_header(header.format(name=name)))


def printed(kind: str, name: str, value) -> Variable:
    event = parse_line(json.dumps({"type": kind, "data": {name: value}}))
    assert isinstance(event, Variable)
    return event


def hist(*counts: int) -> list[dict]:
    """log2 buckets 0, 1, 2-3, 4-7, ... with these counts."""
    out, low = [], 0
    for i, count in enumerate(counts):
        high = 0 if i == 0 else (1 if i == 1 else 2 * low - 1)
        out.append({"min": low, "max": high, "count": count})
        low = high + 1
    return out


def as_dict(table) -> dict:
    assert len(table.names) == len(table.values) == len(table.labels)
    assert set(table.labels) == set(table.names)
    return table.as_dict()


def test_keyed_counter_instances_labels_and_values():
    tables = DataTable().update({"s": script()}, {"s": {"@m": printed("map", "@m", {"a": 1, "b,c": 2})}})
    counter = tables["counter"]
    assert as_dict(counter) == {"s:@m:a": 1, "s:@m:b,c": 2}
    assert counter.labels["s:@m:b,c"] == {"script": "s", "variable": "@m", "unit": "count", "key": "b,c"}
    assert all(not as_dict(tables[k]) for k in ("instant", "histogram", "string"))


def test_same_keys_in_another_order_keep_names_and_labels_by_identity():
    data = DataTable()
    first = data.update({"s": script()}, {"s": {"@m": printed("map", "@m", {"a": 1, "b": 2, "c": 3})}})
    again = data.update({"s": script()}, {"s": {"@m": printed("map", "@m", {"c": 30, "a": 10, "b": 20})}})
    before, after = first["counter"], again["counter"]
    assert after.names is before.names and after.labels is before.labels
    assert as_dict(after) == {"s:@m:a": 10, "s:@m:b": 20, "s:@m:c": 30}


def test_an_unchanged_print_is_not_looked_at_again():
    data = DataTable()
    variables = {"@m": printed("map", "@m", {"a": 1})}
    first = data.update({"s": script()}, {"s": variables})["counter"]
    again = data.update({"s": script()}, {"s": variables})["counter"]
    assert again.names is first.names and again.values is first.values


def test_keys_appearing_and_disappearing_rebuild_reusing_kept_labels():
    data = DataTable()
    first = data.update({"s": script()}, {"s": {"@m": printed("map", "@m", {"a": 1, "b": 2})}})["counter"]
    grown = data.update({"s": script()}, {"s": {"@m": printed("map", "@m", {"a": 3, "b": 4, "new": 1})}})
    grown = grown["counter"]
    assert as_dict(grown) == {"s:@m:a": 3, "s:@m:b": 4, "s:@m:new": 1}
    assert grown.labels["s:@m:a"] is first.labels["s:@m:a"]          # built once, kept
    shrunk = data.update({"s": script()}, {"s": {"@m": printed("map", "@m", {"new": 2, "b": 5})}})
    assert as_dict(shrunk["counter"]) == {"s:@m:new": 2, "s:@m:b": 5}
    # as many keys as before, but not the same ones
    swapped = data.update({"s": script()}, {"s": {"@m": printed("map", "@m", {"x": 7, "b": 6})}})
    assert as_dict(swapped["counter"]) == {"s:@m:x": 7, "s:@m:b": 6}
    # and back to the earlier set: values line up again
    back = data.update({"s": script()}, {"s": {"@m": printed("map", "@m", {"b": 8, "x": 9})}})
    assert back["counter"].names is swapped["counter"].names
    assert as_dict(back["counter"]) == {"s:@m:x": 9, "s:@m:b": 8}


def test_keyed_histogram_in_key_then_bucket_order_with_labels():
    value = {"sdb": hist(1, 0, 2), "sda": hist(0, 5)}
    tables = DataTable().update({"s": script()}, {"s": {"@h": printed("hist", "@h", value)}})
    h = tables["histogram"]
    assert list(h.names) == ["s:@h:sda|0", "s:@h:sda|1", "s:@h:sdb|0", "s:@h:sdb|1", "s:@h:sdb|2-3"]
    assert list(h.values) == [0, 5, 1, 0, 2]
    assert h.labels["s:@h:sdb|2-3"] == {"script": "s", "variable": "@h", "unit": "us",
                                        "key": "sdb", "bucket": "2-3"}


def test_histogram_growing_a_bucket_keeps_bucket_order():
    data = DataTable()
    data.update({"s": script()}, {"s": {"@lat": printed("hist", "@lat", hist(1, 2))}})
    grown = data.update({"s": script()}, {"s": {"@lat": printed("hist", "@lat", hist(1, 2, 0, 4))}})
    h = grown["histogram"]
    assert list(h.names) == ["s:@lat:0", "s:@lat:1", "s:@lat:2-3", "s:@lat:4-7"]
    assert list(h.values) == [1, 2, 0, 4]
    assert "key" not in h.labels["s:@lat:0"] and h.labels["s:@lat:0"]["bucket"] == "0"


def test_undeclared_scalars_strings_and_tuples():
    variables = {"@n": printed("map", "@n", 5), "@t": printed("map", "@t", "text"),
                 "@tup": printed("map", "@tup", [1, "a"]), "@avg": printed("stats", "@avg", {"k": 4}),
                 "@names": printed("map", "@names", {"1": "bash", "2": "cat"})}
    tables = DataTable().update({"s": script()}, {"s": variables})
    assert as_dict(tables["instant"]) == {"s:@n": 5, "s:@avg:k": 4}
    assert as_dict(tables["string"]) == {"s:@t": "text", "s:@names:1": "bash", "s:@names:2": "cat"}
    assert tables["instant"].labels["s:@n"] == {"script": "s", "variable": "@n", "unit": "none"}


def test_a_map_holding_text_and_numbers_splits_by_value():
    data = DataTable()
    for _ in range(2):
        tables = data.update({"s": script()}, {"s": {"@x": printed("map", "@x", {"a": 1, "b": "two"})}})
        assert as_dict(tables["instant"]) == {"s:@x:a": 1}
        assert as_dict(tables["string"]) == {"s:@x:b": "two"}
    tables = data.update({"s": script()}, {"s": {"@x": printed("map", "@x", {"a": "one", "b": "two"})}})
    assert as_dict(tables["instant"]) == {}
    assert as_dict(tables["string"]) == {"s:@x:a": "one", "s:@x:b": "two"}


def test_scripts_and_variables_that_go_away_leave_the_tables():
    data = DataTable()
    both = data.update({"s": script("s"), "t": script("t")},
                       {"s": {"@m": printed("map", "@m", {"a": 1})},
                        "t": {"@m": printed("map", "@m", {"a": 2}),
                              "@lat": printed("hist", "@lat", hist(1))}})
    assert as_dict(both["counter"]) == {"s:@m:a": 1, "t:@m:a": 2}
    one = data.update({"s": script("s"), "t": script("t")}, {"t": {"@m": printed("map", "@m", {"a": 3})}})
    assert as_dict(one["counter"]) == {"t:@m:a": 3} and as_dict(one["histogram"]) == {}
    unknown = data.update({}, {"t": {"@m": printed("map", "@m", {"a": 3})}})   # not in the registry
    assert as_dict(unknown["counter"]) == {}


def test_a_changed_header_relabels():
    data = DataTable()
    variables = {"s": {"@m": printed("map", "@m", {"a": 1})}}
    data.update({"s": script()}, variables)
    changed = HEADER.replace("@m counter by slot unit count", "@m instant by slot unit bytes")
    tables = data.update({"s": script(header=changed)}, variables)
    assert as_dict(tables["counter"]) == {} and as_dict(tables["instant"]) == {"s:@m:a": 1}
    assert tables["instant"].labels["s:@m:a"]["unit"] == "bytes"


def test_delta_totals_are_counters():
    header = "// name: {name}\n// description: test\n// exports: @execs delta by comm unit count: execs\n"
    tables = DataTable().update({"s": script(header=header)},
                                {"s": {"@execs": Variable("@execs", "map", {"cat": 5, "[other]": 2}, True)}})
    assert as_dict(tables["counter"]) == {"s:@execs:cat": 5, "s:@execs:[other]": 2}
    assert tables["counter"].labels["s:@execs:[other]"]["key"] == "[other]"
    assert all(not as_dict(tables[k]) for k in ("instant", "histogram", "string"))
