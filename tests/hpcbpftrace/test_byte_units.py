"""Finding 10 of issue 17: maps declared 'unit bytes' were exported in hpc.bpftrace.data.counter,
whose units are counts.  They go to data.counter_bytes (byte units) now; data.counter keeps the
maps declared in counts."""
from __future__ import annotations

import os

from pmdas.common.table import BYTES, COUNT, COUNTER
from pmdas.hpcbpftrace.datatable import DataTable
from pmdas.hpcbpftrace.header import parse_header
from pmdas.hpcbpftrace.metrics import METRICS
from pmdas.hpcbpftrace.registry import CURATED_DIR, Script

from .test_datatable import printed

HEADER = """// name: io
// description: test
// exports: @read_bytes delta by comm unit bytes: bytes read
// exports: @bio_bytes counter by device unit bytes: bytes of block requests
// exports: @reads delta by comm unit count: read calls
// exports: @size instant unit bytes: a level, not a counter
"""


def test_byte_counters_and_deltas_go_to_the_byte_metric():
    script = Script("io", "/x/io.bt", "admin", True, parse_header(HEADER))
    tables = DataTable().update({"io": script}, {"io": {
        "@read_bytes": printed("map", "@read_bytes", {"cat": 4096}),
        "@bio_bytes": printed("map", "@bio_bytes", {"254,0": 3031040}),
        "@reads": printed("map", "@reads", {"cat": 2}),
        "@size": printed("map", "@size", 7)}})
    assert tables["counter_bytes"].as_dict() == {"io:@read_bytes:cat": 4096,
                                                 "io:@bio_bytes:254,0": 3031040}
    assert tables["counter_bytes"].labels["io:@read_bytes:cat"]["unit"] == "bytes"
    assert tables["counter"].as_dict() == {"io:@reads:cat": 2}
    assert tables["instant"].as_dict() == {"io:@size": 7}


def test_metric_units_match_the_declared_units():
    by_name = {m.name: m for m in METRICS}
    assert by_name["data.counter_bytes"].units == BYTES
    assert by_name["data.counter_bytes"].semantics == COUNTER
    assert by_name["data.counter"].units == COUNT         # shipped: unchanged


def test_every_curated_byte_counter_lands_in_the_byte_metric():
    scripts = {}
    for file in sorted(os.listdir(CURATED_DIR)):
        if file.endswith(".bt"):
            with open(os.path.join(CURATED_DIR, file), encoding="utf-8") as f:
                header = parse_header(f.read())
            scripts[header.name] = Script(header.name, file, "curated", True, header)
    byte_exports = [(name, e) for name, s in scripts.items() for e in s.header.exports
                    if e.unit == "bytes" and e.metric_kind == "counter"]
    assert {e.variable for _, e in byte_exports} >= {"@read_bytes", "@write_bytes", "@bio_bytes"}
    values: dict[str, dict] = {}
    for name, e in byte_exports:
        values.setdefault(name, {})[e.variable] = printed("map", e.variable, {"k": 1})
    tables = DataTable().update(scripts, values)
    assert len(tables["counter_bytes"].names) == len(byte_exports)
    assert not tables["counter"].names
