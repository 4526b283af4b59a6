"""Declarative metric tables: what an agent exports, with units, semantics and help.

Pure data: nothing here imports PCP, so tables can be checked by plain unit tests.
Each metric names a function from the agent's snapshot to its value(s); the shared
refresher evaluates them once per refresh so that fetches are dictionary lookups.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import compress, repeat
from operator import is_not
from typing import Any

# Value types (PCP's PM_TYPE_*).
U32, U64, I32, I64, DOUBLE, STRING = "u32", "u64", "32", "64", "double", "string"
TYPES = (U32, U64, I32, I64, DOUBLE, STRING)

# Semantics (PCP's PM_SEM_*): counters only go up (rate-converted by clients),
# instant values are levels, discrete values rarely change (versions, sizes, names).
COUNTER, INSTANT, DISCRETE = "counter", "instant", "discrete"
SEMANTICS = (COUNTER, INSTANT, DISCRETE)


@dataclass(frozen=True)
class Units:
    """PCP units: dimensions and scales (space: 0=byte 1=KiB 2=MiB..., time: 0=ns 1=us 2=ms 3=s)."""

    space: int = 0
    time: int = 0
    count: int = 0
    scale_space: int = 0
    scale_time: int = 0
    scale_count: int = 0

    def as_tuple(self) -> tuple[int, int, int, int, int, int]:
        return (self.space, self.time, self.count, self.scale_space, self.scale_time, self.scale_count)


NONE = Units()
COUNT = Units(count=1)
BYTES = Units(space=1)
KBYTES = Units(space=1, scale_space=1)
NSEC = Units(time=1, scale_time=0)
USEC = Units(time=1, scale_time=1)
MSEC = Units(time=1, scale_time=2)
SEC = Units(time=1, scale_time=3)
BYTES_PER_SEC = Units(space=1, time=-1, scale_time=3)
COUNT_PER_SEC = Units(count=1, time=-1, scale_time=3)
BITS_PER_SEC = COUNT_PER_SEC  # PCP has no bit unit; rates in bits/s are counts per second

# Snapshot → value.  For a metric with an instance domain the function returns a
# mapping from instance name to value; otherwise a single value.  None (or a
# missing instance) means "no value now": the fetch reports it as unavailable.
Extractor = Callable[[Any], Any]


@dataclass(frozen=True)
class Indom:
    """An instance domain: the set of things (ports, jobs, filesystems) a metric is about.

    ``instances`` maps the snapshot to {instance name: labels}; labels are PCP
    instance labels (e.g. {"job": "42", "user": "alice"}) so Grafana can filter.
    ``serial`` must never change once released: archives record it.
    """

    name: str
    serial: int
    help: str
    long_help: str
    instances: Callable[[Any], Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class Metric:
    """One exported metric.  ``name`` is relative to the agent root (``port.rcv.bytes``)."""

    name: str
    type: str
    semantics: str
    units: Units
    help: str
    long_help: str
    value: Extractor
    indom: str | None = None
    cluster: int = -1
    item: int = -1
    labels: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"metric {self.name}: unknown type {self.type!r}")
        if self.semantics not in SEMANTICS:
            raise ValueError(f"metric {self.name}: unknown semantics {self.semantics!r}")
        if not self.help.strip() or not self.long_help.strip():
            raise ValueError(f"metric {self.name}: one-line and long help are both required")


def cluster(number: int, metrics: Sequence[Metric]) -> list[Metric]:
    """Number a group of metrics: PMID cluster ``number``, item = position.

    Append only: reordering or deleting would change PMIDs that archives recorded.
    Clusters 4000 and above are reserved for the shared agent-health metrics.
    """
    return numbered(number, dict(enumerate(metrics)))


def numbered(number: int, metrics: Mapping[int, Metric] | Iterable[tuple[int, Metric]]) -> list[Metric]:
    """Number a group of metrics with explicit items: {item: metric}, or (item, metric) pairs.

    For families generated from data (one metric per job state, per error counter): each
    member carries its own item, so growing the family moves no other metric's PMID.  Give
    a generated family as pairs: a repeated item is then refused here, where a dict built by
    a comprehension would silently keep one of the two.
    """
    if not 0 <= number < 4096:
        raise ValueError(f"cluster {number} out of range")
    pairs = list(metrics.items() if isinstance(metrics, Mapping) else metrics)
    items = [i for i, _ in pairs]
    if len(set(items)) != len(items):
        repeated = sorted({i for i in items if items.count(i) > 1})
        raise ValueError(f"cluster {number}: item(s) {repeated} given to more than one metric")
    return [replace(m, cluster=number, item=i) for i, m in pairs]


def check_table(metrics: Sequence[Metric], indoms: Sequence[Indom]) -> None:
    """Raise ValueError if a table is inconsistent (duplicate names/PMIDs, unknown indoms)."""
    indom_names = {i.name for i in indoms}
    if len(indom_names) != len(indoms):
        raise ValueError("duplicate instance domain name")
    if len({i.serial for i in indoms}) != len(indoms):
        raise ValueError("duplicate instance domain serial")
    seen_names: set[str] = set()
    seen_ids: set[tuple[int, int]] = set()
    for m in metrics:
        if m.cluster < 0:
            raise ValueError(f"metric {m.name} has no PMID: wrap its group in cluster()")
        if not (0 <= m.cluster < 4096 and 0 <= m.item < 1024):
            raise ValueError(f"metric {m.name}: PMID {m.cluster}.{m.item} out of range "
                             "(cluster 0-4095, item 0-1023)")
        if m.name in seen_names:
            raise ValueError(f"duplicate metric name {m.name}")
        if (m.cluster, m.item) in seen_ids:
            raise ValueError(f"duplicate PMID {m.cluster}.{m.item} ({m.name})")
        if m.indom is not None and m.indom not in indom_names:
            raise ValueError(f"metric {m.name} names unknown instance domain {m.indom}")
        seen_names.add(m.name)
        seen_ids.add((m.cluster, m.item))
    # A name cannot be both a leaf and a non-leaf in the PMNS.
    for name in seen_names:
        parts = name.split(".")
        for k in range(1, len(parts)):
            if ".".join(parts[:k]) in seen_names:
                raise ValueError(f"metric {'.'.join(parts[:k])} is also a prefix of {name}")


class Column(Mapping[str, Any]):
    """A per-instance metric's values as a column over a list of instance names.

    For big instance domains (a cluster's 50,000 jobs): an extractor returns
    ``Column(names, values)`` instead of building a dict, with one ``names`` sequence
    shared by every column of the snapshot and ``values`` aligned with it; ``None``
    means "no value", as a missing key would in a dict.  It reads as that dict (built on
    first use), and the PCP glue converts whole columns in bulk instead of value by value.
    Give tuples of plain values (numbers, strings, None): the garbage collector stops
    tracking those, where it would walk a list's 50,000 items on every full collection.
    """

    __slots__ = ("names", "values", "_dict")

    def __init__(self, names: Sequence[str], values: Sequence[Any]):
        if len(names) != len(values):
            raise ValueError(f"{len(values)} values for {len(names)} instances")
        self.names = names
        self.values = values
        self._dict: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        if self._dict is None:
            self._dict = dict(compress(zip(self.names, self.values, strict=True),
                                       map(is_not, self.values, repeat(None))))
        return self._dict

    def __getitem__(self, name: str) -> Any:
        return self.as_dict()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())

    def __repr__(self) -> str:
        return f"Column({self.as_dict()!r})"


def per_instance(collection: str, value: Callable[[Any], Any]) -> Extractor:
    """Extractor for a snapshot attribute that maps instance → record: {instance: value(record)},
    leaving out instances where the value is unavailable (None)."""
    return lambda snapshot: {name: v for name, record in getattr(snapshot, collection).items()
                             if (v := value(record)) is not None}
