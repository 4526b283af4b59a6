"""Property tests: the parsers never crash on any input, and round-trip what they are given."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pmdas.hpclustre.job_stats import MAX_JOB_ID, clean_job_id, job_labels, parse_job_stats
from pmdas.hpclustre.parsers import (
    parse_health_check,
    parse_lnet_stats,
    parse_recovery_status,
    parse_rpc_stats,
    parse_stats,
)

junk = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400)
lustreish = st.lists(
    st.sampled_from(
        [
            "job_stats:\n",
            "- job_id: ",
            "  write_bytes: ",
            "{ samples: ",
            "12",
            ", unit: ",
            "bytes",
            "reqs",
            ", min: 1, max: 9, sum: ",
            "99",
            " }",
            "\n",
            "samples [usecs] ",
            "read RPCs in flight: ",
            "|",
            "\t",
            "1024:\t\t",
            "   3   4 ",
            "status: ",
            "COMPLETE",
            ":",
            "-",
            " ",
            '"',
        ]
    ),
    max_size=60,
).map("".join)


@settings(max_examples=300)
@given(st.one_of(junk, lustreish))
def test_parsers_never_crash(text):
    parse_stats(text)
    parse_rpc_stats(text)
    parse_recovery_status(text)
    parse_health_check(text)
    for job_id, counters in parse_job_stats(text).items():
        assert job_id and len(job_id) <= MAX_JOB_ID
        assert all(samples > 0 and (total is None or total >= 0) for samples, _u, total in counters.values())
    try:
        values = parse_lnet_stats(text)
    except ValueError:
        pass
    else:
        assert all(v >= 0 for v in values.values())


ops = st.sampled_from(["read_bytes", "write_bytes", "punch", "open", "getattr", "setattr"])
job_ids = st.text(alphabet="abcXYZ0123456789_.:-", min_size=1, max_size=40)
entries = st.dictionaries(
    job_ids, st.dictionaries(ops, st.tuples(st.integers(0, 2**62), st.integers(0, 2**63))), max_size=20
)


@settings(max_examples=200)
@given(entries, st.booleans())
def test_job_stats_round_trip(jobs, new_form):
    """Whatever we write in Lustre's format (either form) we read back, zero counts left out."""
    text = "job_stats:\n"
    for job_id, counters in jobs.items():
        shown = f'"{job_id}"' if new_form else job_id
        text += f"- job_id:          {shown}\n  snapshot_time:   1510782606\n"
        for op, (samples, total) in counters.items():
            if op.endswith("_bytes") or new_form:
                text += (
                    f"  {op + ':':<16} {{ samples: {samples:11d}, unit: bytes, min: 0, max: 0, "
                    f"sum: {total:16d}"
                    + (f", sumsq: {total}, hist: {{ 4K: 1 }}" if new_form else "")
                    + " }\n"
                )
            else:
                text += f"  {op + ':':<16} {{ samples: {samples:11d}, unit:  reqs }}\n"
    parsed = parse_job_stats(text)
    assert set(parsed) == {clean_job_id(j) for j in jobs}
    for job_id, counters in jobs.items():
        for op, (samples, total) in counters.items():
            if samples == 0:
                assert op not in parsed[job_id]
            else:
                want = total if (op.endswith("_bytes") or new_form) else None
                assert parsed[job_id][op] == (samples, parsed[job_id][op][1], want)


@given(st.text(max_size=300))
def test_job_labels_keep_the_raw_id(job_id):
    assert job_labels(job_id)["jobid"] == job_id


@settings(max_examples=100)
@given(
    st.dictionaries(
        st.sampled_from(["open", "close", "write_bytes", "ost_write"]),
        st.tuples(st.integers(1, 2**63), st.integers(0, 2**63)),
        min_size=1,
    )
)
def test_stats_round_trip(counters):
    text = "snapshot_time             1510950459.772792457 secs.nsecs\n" + "".join(
        f"{name:<25} {n} samples [usecs] 1 2 {total} {total}\n" for name, (n, total) in counters.items()
    )
    parsed = parse_stats(text)
    assert {k: (v.samples, v.total) for k, v in parsed.items()} == counters
