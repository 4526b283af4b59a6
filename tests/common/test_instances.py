from hypothesis import given
from hypothesis import strategies as st

from pmdas.common.instances import InstanceIds


def test_ids_are_stable_across_refreshes_and_restarts(tmp_path):
    path = str(tmp_path / "ids.json")
    ids = InstanceIds(path)
    first = ids.assign(["a", "b"], now=0)
    ids.save()
    again = ids.assign(["b", "c"], now=1)
    assert again["b"] == first["b"] and again["c"] not in first.values()
    ids.save()
    restarted = InstanceIds(path)
    assert restarted.assign(["a", "b", "c"], now=2) == {**first, "c": again["c"]}


def test_forgotten_names_do_not_reuse_numbers(tmp_path):
    ids = InstanceIds(str(tmp_path / "ids.json"), forget_after=10)
    a = ids.assign(["a"], now=0)["a"]
    ids.assign(["b"], now=100)          # "a" unseen for 100 s: forgotten
    assert ids.assign(["a"], now=101)["a"] != a


def test_corrupt_map_starts_afresh(tmp_path):
    path = tmp_path / "ids.json"
    path.write_text("{not json")
    assert InstanceIds(str(path)).assign(["x"]) == {"x": 0}


@given(st.lists(st.lists(st.text(min_size=1, max_size=8), max_size=20), max_size=10))
def test_ids_unique_within_every_refresh(refreshes):
    ids = InstanceIds()
    seen: dict[str, int] = {}
    for names in refreshes:
        got = ids.assign(names)
        assert len(set(got.values())) == len(got)
        for name, ident in got.items():
            assert seen.setdefault(name, ident) == ident
