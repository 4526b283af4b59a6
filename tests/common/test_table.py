import pytest

from pmdas.common.table import BYTES, COUNTER, INSTANT, U64, Indom, Metric, check_table, cluster


def metric(name, indom=None):
    return Metric(name, U64, COUNTER, BYTES, "one line", "long help", lambda s: 0, indom=indom)


def test_cluster_numbers_items_by_position():
    ms = cluster(3, [metric("a"), metric("b")])
    assert [(m.cluster, m.item) for m in ms] == [(3, 0), (3, 1)]


def test_help_is_required():
    with pytest.raises(ValueError, match="help"):
        Metric("x", U64, INSTANT, BYTES, "", "long", lambda s: 0)


def test_unknown_type_and_semantics_rejected():
    with pytest.raises(ValueError, match="type"):
        Metric("x", "float128", INSTANT, BYTES, "h", "l", lambda s: 0)
    with pytest.raises(ValueError, match="semantics"):
        Metric("x", U64, "sometimes", BYTES, "h", "l", lambda s: 0)


@pytest.mark.parametrize("metrics, indoms, problem", [
    ([metric("a")], [], "no PMID"),
    (cluster(0, [metric("a"), metric("a")]), [], "duplicate metric name"),
    (cluster(0, [metric("a")]) + cluster(0, [metric("b")]), [], "duplicate PMID"),
    (cluster(0, [metric("a", indom="nope")]), [], "unknown instance domain"),
    (cluster(0, [metric("a"), metric("a.b")]), [], "also a prefix"),
    ([], [Indom("i", 0, "h", "l", dict), Indom("j", 0, "h", "l", dict)], "serial"),
])
def test_check_table_finds_inconsistencies(metrics, indoms, problem):
    with pytest.raises(ValueError, match=problem):
        check_table(metrics, indoms)
