"""Instance names from hostile sources: no control characters, unique first words, raw text kept."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pmdas.common.names import MAX_NAME, clean_text, label_json, renamed


def safe_instances(labelled):
    """{raw: labels} -> {shown name: raw}, as the preparer shows them to pmcd."""
    changes = renamed(labelled.keys())
    return labelled if not changes else {changes.get(raw, raw): raw for raw in labelled}


def _first(name):
    return name.split(" ", 1)[0]


def test_ordinary_names_pass_unchanged_as_the_same_object():
    labelled = {str(j): {"job": str(j)} for j in range(50_000)}
    assert safe_instances(labelled) is labelled


def test_a_newline_and_a_heredoc_terminator_cannot_pass():
    raw = "run1\nHPCALARM\ntouch /tmp/owned\n"
    out = safe_instances({raw: {"run": raw}, "other": {}})
    (name,) = [n for n in out if n != "other"]
    assert "\n" not in name and name.startswith("run1\\nHPCALARM\\ntouch")
    assert out[name] == raw and out["other"] == "other"


def test_names_reach_pcp_in_printable_ascii_with_the_text_kept_in_a_label():
    """pmproxy 6.0.3 writes a byte above 0x7f of an instance name as \\xc3 in /series replies
    (invalid JSON: every panel reading the metric failed) and as U+FFFD per byte in /pmapi
    replies: names are served as printable ASCII, other characters as Python escapes."""
    out = safe_instances({"r\u00e9sum\u00e9": {"job": "1"}, "\u4f5c\u696d x": {}, "esc\x1b[2J": {},
                          "tab\tand\u2028": {}, "emoji\U0001f600": {}})
    assert set(out) == {"r\\xe9sum\\xe9", "\\u4f5c\\u696d x", "esc\\x1b[2J", "tab\\tand\\u2028",
                        "emoji\\U0001f600"}
    assert all(n.isascii() and n.isprintable() for n in out)
    assert out["r\\xe9sum\\xe9"] == "r\u00e9sum\u00e9"
    assert clean_text("plain ascii") == "plain ascii"
    # one character and its escape written out by hand: one first word, both kept apart
    raws = ["caf\u00e9", "caf\\xe9"]
    changes = renamed(raws)
    assert len({_first(changes.get(r, r)) for r in raws}) == 2


def test_a_long_name_is_cut_with_a_digest_and_names_stay_apart():
    """A source's cap counts characters; escapes make each up to ten: still at most MAX_NAME."""
    raws = ["\u00e9" * 150, "\u00e9" * 151, "x" * 500, "x" * 501]
    changes = renamed(raws)
    shown = [changes.get(r, r) for r in raws]
    assert all(len(n) <= MAX_NAME and "~" in n for n in shown)
    assert len({_first(n) for n in shown}) == 4
    assert not shown[0].rsplit("~", 1)[0].endswith(("\\", "\\x", "\\xe"))


def test_a_lone_surrogate_becomes_encodable_and_is_kept_escaped():
    out = safe_instances({"run\ud800x": {}})
    (name,) = out
    name.encode("utf-8")
    assert label_json({"run": "run\ud800x"}) == '{"run": "run\\\\ud800x"}'
    assert label_json({"run": "caf\u00e9 \U0001f600"}) == '{"run": "caf\\u00e9 \\ud83d\\ude00"}'


def test_shared_first_words_are_made_unique_and_stable():
    comments = {f"Not Running: queue {q} is full": {"job": q} for q in ("a", "b", "c")}
    comments["Not"] = {}
    first = safe_instances(comments)
    again = safe_instances(dict(reversed(list(comments.items()))))
    assert first.keys() == again.keys()
    assert len({_first(n) for n in first}) == len(first) == 4
    changed = [n for n in first if n.startswith("Not#")]
    assert len(changed) == 4
    assert {first[n] for n in changed} == set(comments)


def test_a_name_crafted_to_collide_with_a_digest_is_still_unique():
    base = {"x a": {}, "x b": {}}
    crafted = next(iter(n for n in safe_instances(base))).split(" ")[0]
    out = safe_instances({**base, crafted: {}})
    assert len({_first(n) for n in out}) == 3


@given(st.dictionaries(st.text(max_size=12), st.just({}), max_size=12))
def test_every_result_is_safe_and_one_to_one(labelled):
    out = safe_instances(labelled)
    assert len(out) == len(labelled)
    assert len({_first(n) for n in out}) == len(out)
    for name in out:
        name.encode("utf-8")
        assert all(c not in name for c in "\n\r\t\x00\x1b\u2028")


def test_the_preparer_shows_safe_names_and_keeps_values_and_the_raw_text():
    """What pmcd is given (Plain.ids, label JSON, string values) for hostile names read from a
    source; the values still belong to the right instance."""
    import json

    from pmdas.common.health import Health
    from pmdas.common.namespace import AgentTable
    from pmdas.common.prepare import Preparer
    from pmdas.common.refresh import Published
    from pmdas.hpcsample.collector import SampleAgent

    table = AgentTable.of(SampleAgent)
    raw = ["ok", "evil\nHPCALARM\nid", "lone\ud800", "Not Running: a", "Not Running: b"]
    instances = {"file": {n: (k, {"file": n}) for k, n in enumerate(raw)}}
    values = {"hpc.sample.file.value": {n: float(k) for k, n in enumerate(raw)},
              "hpc.sample.agent.last_error": "bad \udcff byte"}
    plain = Preparer(table).prepare(Published(0.0, values, instances, Health()))
    file_indom = table.indom_ids["file"]
    shown = plain.ids[file_indom]
    assert sorted(shown.values()) == list(range(len(raw)))
    assert "ok" in shown and len({n.split(" ")[0] for n in shown}) == len(raw)
    for name in shown:
        name.encode("utf-8")
        assert "\n" not in name
    by_id = plain.values[table.pmids["file.value"]]
    assert by_id == {k: float(k) for k in range(len(raw))}
    labels = {ident: json.loads(text) for ident, text in plain.labels[file_indom].items()}
    assert labels[1]["raw_name"] == raw[1] and labels[2]["raw_name"] == "lone\\ud800"
    assert "raw_name" not in labels[0]
    plain.values[table.pmids["agent.last_error"]].encode("utf-8")


def test_a_string_value_with_nul_reaches_pcp_as_a_c_string():
    """PCP's bindings parse string values as C strings: a NUL in one (a job name, a comment)
    failed the whole fetch, and PCP 6.0.3 left the error pending for the agent's next call."""
    from pmdas.common.prepare import by_instance_id, coerce
    from pmdas.common.table import STRING
    assert coerce(STRING, "job\x00name") == "job\ufffdname"
    assert by_instance_id(STRING, {"a": "x\x00y", "b": "ok"}, {"a": 0, "b": 1}) == {0: "x\ufffdy", 1: "ok"}
