"""PMIDs of the generated families (per job state, per node state) never move when a state is added."""
from __future__ import annotations

import pytest

from pmdas.common.table import Metric, check_table
from pmdas.hpcjob import metrics
from pmdas.hpcjob.collector import JobSnapshot
from pmdas.hpcjob.model import JOB_STATES, NODE_STATES


def pmids(table: list[Metric]) -> dict[str, tuple[int, int]]:
    return {m.name: (m.cluster, m.item) for m in table}


def after_first(items: dict[str, int], state: str, item: int) -> dict[str, int]:
    """The items with a new state second in line: not at the end, where position would do."""
    first, *rest = items.items()
    return dict([first, (state, item), *rest])


def test_new_job_and_node_states_take_new_items_and_move_nothing():
    job_items = after_first(metrics.pinned(JOB_STATES, metrics.PARTITION_JOB_ITEMS, "job state"),
                            "preempted", 24)
    node_items = after_first(metrics.pinned(NODE_STATES, metrics.PARTITION_NODE_ITEMS, "node state"),
                             "planned", 25)
    nodes_items = after_first(metrics.pinned(NODE_STATES, metrics.NODE_ITEMS, "node state"),
                              "planned", 9)
    grown = [*metrics.JOB, *metrics.USAGE, *metrics.partition_metrics(job_items, node_items),
             *metrics.OWNERS, *metrics.node_metrics(nodes_items), *metrics.SCHEDULER]
    check_table(grown, metrics.INDOMS)
    assert pmids(grown) == {**pmids(metrics.METRICS),
                            "partition.jobs.preempted": (3, 24),
                            "partition.nodes.planned": (3, 25),
                            "nodes.planned": (5, 9)}


def test_the_per_state_metrics_follow_the_model_and_the_pinned_items():
    table = pmids(metrics.METRICS)
    for state in JOB_STATES:
        assert table[f"partition.jobs.{state}"] == (3, metrics.PARTITION_JOB_ITEMS[state])
    for state in NODE_STATES:
        assert table[f"partition.nodes.{state}"] == (3, metrics.PARTITION_NODE_ITEMS[state])
        assert table[f"nodes.{state}"] == (5, metrics.NODE_ITEMS[state])


def test_a_state_without_an_item_is_refused_by_name():
    with pytest.raises(ValueError, match="job state preempted has no PMID item"):
        metrics.pinned((*JOB_STATES, "preempted"), metrics.PARTITION_JOB_ITEMS, "job state")


def test_a_repeated_item_is_refused_not_folded_away():
    """Two states given one item: refused where the family is numbered (a dict keyed by item
    would have kept one of them silently)."""
    items = {**metrics.NODE_ITEMS, "planned": metrics.NODE_ITEMS["idle"]}
    with pytest.raises(ValueError, match=r"cluster 5: item\(s\) \[0\] given to more than one metric"):
        metrics.node_metrics(items)


def test_snapshot_is_keyword_only():
    with pytest.raises(TypeError):
        JobSnapshot("slurm", True, True, 0.1)  # type: ignore[misc]
    snapshot = JobSnapshot(scheduler="slurm", cluster_view=True, reachable=True,
                           response_time=0.1)
    assert snapshot.jobs == {} and snapshot.job_names == () and snapshot.taken == 0.0
