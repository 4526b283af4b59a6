"""The pinned namespace: every agent's table matches its committed listing, PMID for PMID."""
from __future__ import annotations

import dataclasses

import pytest

from pmdas.agents import AGENTS
from pmdas.common import listing
from pmdas.common.namespace import AgentTable, indom_id, pmid
from pmdas.common.table import BYTES, COUNT, COUNTER, U64, Metric, check_table, cluster, numbered
from pmdas.hpcsample.collector import SampleAgent


@pytest.mark.parametrize("name", list(AGENTS))
def test_table_matches_committed_listing(name):
    agent_class = AGENTS[name].load()
    assert listing.differences(agent_class) == [], (
        f"{name}: the metric table no longer matches {listing.golden_path(agent_class)}; "
        "a shipped PMID must never change (new metrics take new numbers; then "
        "'python -m pmdas.common.listing --write')")


def _changed_sample(**change) -> type[SampleAgent]:
    """SampleAgent with its first metric altered, as a careless edit of the table would."""
    first, *rest = SampleAgent.metrics
    return type("ChangedSample", (SampleAgent,), {"metrics": [dataclasses.replace(first, **change), *rest]})


def test_a_changed_pmid_is_caught():
    path = listing.golden_path(SampleAgent)
    diff = listing.differences(_changed_sample(item=900), path)
    first = SampleAgent.metrics[0]
    assert f"- hpc.sample.{first.name}  415.{first.cluster}.{first.item}" in "\n".join(diff)
    assert f"+ hpc.sample.{first.name}  415.{first.cluster}.900" in "\n".join(diff)


@pytest.mark.parametrize("change", [{"type": "u64"}, {"semantics": "discrete"}, {"units": BYTES},
                                    {"indom": "key"}])
def test_a_changed_descriptor_is_caught(change):
    assert listing.differences(_changed_sample(**change), listing.golden_path(SampleAgent))


def test_a_removed_metric_keeps_its_number(tmp_path):
    """--write turns a metric that left the table into a retired line; giving its PMID to a
    new metric is then an error."""
    first, second, *rest = SampleAgent.metrics
    golden = tmp_path / "metrics.golden"
    golden.write_text(listing.render(AgentTable.of(SampleAgent)))
    without = type("Without", (SampleAgent,), {"metrics": [first, *rest]})
    golden.write_text(listing.rewrite(without, str(golden)))
    text = golden.read_text()
    assert f"{listing.RETIRED}hpc.sample.{second.name}  415.{second.cluster}.{second.item}" in text
    assert listing.differences(without, str(golden)) == []
    reused = dataclasses.replace(second, name="brand_new")
    taken = type("Taken", (SampleAgent,), {"metrics": [first, reused, *rest]})
    diff = listing.differences(taken, str(golden))
    assert any(line.startswith("! ") and "hpc.sample.brand_new" in line for line in diff), diff


def test_explicit_items_keep_family_members_in_place():
    def metric(name):
        return Metric(name, U64, COUNTER, COUNT, "x", "x", lambda s: 0)
    before = numbered(3, {0: metric("a"), 1: metric("b"), 5: metric("c")})
    after = numbered(3, {0: metric("a"), 1: metric("b"), 2: metric("new"), 5: metric("c")})
    assert {m.name: m.item for m in before}.items() <= {m.name: m.item for m in after}.items()


def test_pmid_range_is_checked():
    m = Metric("x", U64, COUNTER, COUNT, "x", "x", lambda s: 0)
    with pytest.raises(ValueError, match="out of range"):
        check_table([dataclasses.replace(m, cluster=1, item=1024)], [])
    with pytest.raises(ValueError):
        cluster(4096, [m])


def test_pmid_and_indom_ids_as_libpcp_builds_them():
    from pcp.pmapi import pmContext
    assert pmid(415, 4000, 13) == pmContext.pmID_build(415, 4000, 13)
    assert indom_id(415, 4001) == pmContext.pmInDom_build(415, 4001)
    assert listing.units_text(COUNT) == "count"
