"""PCP glue shared by every agent: table → PCP metrics, snapshots → fetch answers.

Threading model.  libpcp_pmda runs in the main thread (``pmdaMain`` releases the
GIL while it waits for pmcd).  The refresher thread does all the work of a refresh
and then prebuilds what the main thread needs: per-PMID value maps keyed by
instance ID, ctypes instance arrays and instance-label JSON.  The main thread only
swaps those in (a few pointer assignments) from its refresh/instance callbacks,
and answers fetches with dictionary lookups.  A fetch never reads a source.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import pwd
import signal
import sys
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import is_, is_not, itemgetter
from typing import Any

import cpmapi as c_api
import cpmda
from cpmda import set_need_refresh
from pcp.pmapi import pmUnits
from pcp.pmda import PMDA, pmdaGetContext, pmdaIndom, pmdaInstid, pmdaMetric

from .agent import Agent, StoreRefused
from .config import COMMON_OPTIONS, Config, ConfigError, load, validate
from .refresh import Published, Refresher
from .table import COUNTER, DISCRETE, DOUBLE, I32, I64, INSTANT, STRING, U32, U64, Column, Metric

log = logging.getLogger("pmdas")

_PM_TYPE = {U32: c_api.PM_TYPE_U32, U64: c_api.PM_TYPE_U64, I32: c_api.PM_TYPE_32,
            I64: c_api.PM_TYPE_64, DOUBLE: c_api.PM_TYPE_DOUBLE, STRING: c_api.PM_TYPE_STRING}
_PM_SEM = {COUNTER: c_api.PM_SEM_COUNTER, INSTANT: c_api.PM_SEM_INSTANT,
           DISCRETE: c_api.PM_SEM_DISCRETE}
_UNSIGNED_MAX = {U32: 2**32 - 1, U64: 2**64 - 1}
_SIGNED_RANGE = {I32: (-2**31, 2**31 - 1), I64: (-2**63, 2**63 - 1)}


def coerce(kind: str, value: Any) -> Any:
    """Convert an extracted value to what PCP expects for ``kind``; None if impossible."""
    if value is None:
        return None
    try:
        if kind == STRING:
            return value if isinstance(value, str) else str(value)
        if kind == DOUBLE:
            return float(value)
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if kind in _UNSIGNED_MAX:
        return number if 0 <= number <= _UNSIGNED_MAX[kind] else None
    low, high = _SIGNED_RANGE[kind]
    return number if low <= number <= high else None


_RANGE = {U32: (0, 2**32 - 1), U64: (0, 2**64 - 1), I32: _SIGNED_RANGE[I32], I64: _SIGNED_RANGE[I64]}


def by_instance_id(kind: str, raw: Mapping[str, Any], ids: Mapping[str, int],
                   idents: Sequence[int | None] | None = None) -> dict[int, Any]:
    """{instance name: value} (a dict or a Column) → {instance id: value as PCP wants it},
    leaving out instances ``ids`` does not know and values ``coerce`` refuses.

    The usual metric (every instance known, every value None or already of the right
    Python type and in range) is converted in bulk, with no Python call per value: a
    cluster's 50,000 jobs times twenty metrics are a million values per refresh.
    ``idents``: a Column's instance ids in the order of its names, if the caller has them
    (the columns of one snapshot share their names).
    """
    if isinstance(raw, Column):
        names, values = raw.names, raw.values
    else:
        names, values = raw.keys(), raw.values()
    if idents is None:
        idents = list(map(ids.get, names))
    if any(map(is_, values, repeat(None))):     # leave out the gaps first
        present = list(map(is_not, values, repeat(None)))
        idents, values = list(compress(idents, present)), list(compress(values, present))
    if not any(map(is_, idents, repeat(None))) and _needs_no_coercion(kind, values):
        try:
            converted = map(float, values) if kind == DOUBLE else values
            return dict(zip(idents, converted, strict=True))
        except OverflowError:  # an int too big for a double: let coerce() drop it
            pass
    out = {}
    for ident, v in zip(idents, values, strict=True):
        value = coerce(kind, v)
        if ident is not None and value is not None:
            out[ident] = value
    return out


def _needs_no_coercion(kind: str, values: Collection[Any]) -> bool:
    """True if coerce() would return every value unchanged (DOUBLE: float() of it)."""
    if not values:
        return True
    types = set(map(type, values))
    if kind == STRING:
        return types <= {str}
    if kind == DOUBLE:
        return types <= {float, int}
    if not types <= {int}:
        return False
    low, high = _RANGE[kind]
    return low <= min(values) and max(values) <= high


@dataclass
class Served:
    """What the main thread serves: built in the refresher thread, swapped in whole."""

    values: dict[int, Any]                     # pmid → value or {inst id: value}
    instids: dict[int, Any]                    # indom id → ctypes pmdaInstid array
    counts: dict[int, int]                     # indom id → number of instances
    members: dict[int, frozenset]              # indom id → instance ids
    labels: dict[int, dict[int, str]]          # indom id → {inst id: label JSON}


class HpcPMDA(PMDA):
    def __init__(self, agent: Agent, refresher: Refresher, config_error: str = ""):
        super().__init__(agent.name, agent.domain)
        self.agent = agent
        self.refresher = refresher
        self.config_error = config_error
        self._indom_ids = {i.name: self.indom(i.serial) for i in refresher.indoms}
        self._indoms: dict[int, pmdaIndom] = {}
        self._pmids: list[tuple[Metric, int]] = []
        for indom in refresher.indoms:
            it = pmdaIndom(self._indom_ids[indom.name], [])
            self._indoms[it.it_indom] = it
            self.add_indom(it, indom.help, indom.long_help)
        for metric in refresher.metrics:
            indom_id = self._indom_ids[metric.indom] if metric.indom else c_api.PM_INDOM_NULL
            pmid = self.pmid(metric.cluster, metric.item)
            self._pmids.append((metric, pmid))
            self.add_metric(refresher.full_name(metric),
                            pmdaMetric(pmid, _PM_TYPE[metric.type], indom_id, _PM_SEM[metric.semantics],
                                       pmUnits(*metric.units.as_tuple())),
                            metric.help, metric.long_help)
        self._domain_label = json.dumps(dict(agent.domain_labels()))
        self._pending: Served | None = None
        self._label_memo: dict[int, tuple[dict, dict]] = {}   # refresher thread only
        self._instance_memo: dict[int, tuple[dict, Any, frozenset]] = {}   # likewise
        self._served = Served({}, {}, {}, {}, {})
        self._keepalive: list[Served] = []
        self._lock = threading.Lock()
        self._metric_by_pmid = {pmid: metric for metric, pmid in self._pmids}
        self._users: dict[int, str] = {}    # client context → authenticated user name
        self.set_comm_flags(cpmda.PMDA_FLAG_AUTHORIZE)
        self.set_attribute_callback(self._attribute)
        self.set_endcontext_callback(self._end_context)
        self.set_store_callback(self._store)
        self.set_fetch_callback(self._fetch)
        self.set_refresh(self._refresh)
        self.set_instance(self._instance)
        self.set_label(self._label)
        self.set_label_callback(self._instance_label)

    # -- refresher thread --------------------------------------------------
    def prepare(self, published: Published) -> None:
        """Turn a Published snapshot into ready-to-serve structures (refresher thread)."""
        ids_by_indom: dict[str, dict[str, int]] = {}
        served = Served({}, {}, {}, {}, {})
        for name, instances in published.instances.items():
            indom_id = self._indom_ids[name]
            ids = ids_by_indom[name] = dict(zip(instances, map(itemgetter(0), instances.values()),
                                                strict=True))
            served.instids[indom_id], served.members[indom_id] = self._instance_arrays(indom_id, ids)
            served.counts[indom_id] = len(ids)
            served.labels[indom_id] = self._labels_json(indom_id, instances.values())
        aligned: dict[tuple[str, int], list[int | None]] = {}  # ids in the order of shared names
        for metric, pmid in self._pmids:
            raw = published.values.get(self.refresher.full_name(metric))
            if metric.indom is None:
                value = coerce(metric.type, raw)
                if value is not None:
                    served.values[pmid] = value
                continue
            ids = ids_by_indom.get(metric.indom, {})
            if isinstance(raw, Column):
                if not any(map(is_not, raw.values, repeat(None))):
                    continue   # no value at all, as an empty dict
                key = (metric.indom, id(raw.names))
                if key not in aligned:
                    aligned[key] = list(map(ids.get, raw.names))
                served.values[pmid] = by_instance_id(metric.type, raw, ids, aligned[key])
            elif raw:
                served.values[pmid] = by_instance_id(metric.type, raw, ids)
        with self._lock:
            self._pending = served

    def _instance_arrays(self, indom_id: int, ids: dict[str, int]) -> tuple[Any, frozenset]:
        """The pmdaInstid array and the id set of an instance domain, built again only when
        its instances changed since the last refresh (50,000 pending jobs often do not)."""
        old_ids, array, members = self._instance_memo.get(indom_id, (None, None, None))
        if old_ids != ids:
            array = (pmdaInstid * len(ids))()
            for k, (inst, ident) in enumerate(ids.items()):
                array[k].i_inst = ident
                array[k].i_name = inst.encode("utf-8")
            members = frozenset(ids.values())
            self._instance_memo[indom_id] = (ids, array, members)
        return array, members

    def _labels_json(self, indom_id: int,
                     instances: Iterable[tuple[int, Mapping[str, Any]]]) -> dict[int, str]:
        """{instance id: label JSON}; encoded again only for instances whose labels changed
        since the last refresh (a job's never do, and a cluster lists 50,000 jobs)."""
        old_labels, old_json = self._label_memo.get(indom_id, ({}, {}))
        labels_by_id: dict[int, Mapping[str, Any]] = dict(filter(itemgetter(1), instances))
        if labels_by_id == old_labels:
            return old_json
        json_by_id: dict[int, str] = {}
        for ident, labels in labels_by_id.items():
            text = old_json.get(ident)
            json_by_id[ident] = (text if text is not None and old_labels[ident] == labels
                                 else json.dumps(dict(labels)))
        self._label_memo[indom_id] = (labels_by_id, json_by_id)
        return json_by_id

    # -- main thread ---------------------------------------------------------
    def _apply_pending(self) -> None:
        with self._lock:
            served, self._pending = self._pending, None
        if served is None:
            return
        for indom_id, it in self._indoms.items():
            array = served.instids.get(indom_id)
            if array is None:
                continue
            it.it_set = array
            it.it_numinst = served.counts[indom_id]
        set_need_refresh()
        # libpcp_pmda may still hold the previous arrays until its next refresh.
        self._keepalive = [self._served]
        self._served = served

    def _refresh(self, cluster: int) -> None:
        self._apply_pending()

    def _instance(self, serial: int) -> None:
        self._apply_pending()

    def _fetch(self, cluster: int, item: int, inst: int) -> list:
        entry = self._served.values.get(self.pmid(cluster, item))
        if entry is None:
            return [c_api.PM_ERR_AGAIN, 0]
        if not isinstance(entry, dict):
            return [entry, 1]
        value = entry.get(inst)
        if value is not None:
            return [value, 1]
        for members in self._served.members.values():
            if inst in members:
                return [c_api.PM_ERR_AGAIN, 0]
        return [c_api.PM_ERR_INST, 0]

    def _attribute(self, ctx: int, attr: int, value: str) -> None:
        if attr == cpmda.PMDA_ATTR_USERNAME:
            self._users[ctx] = value
        elif attr == cpmda.PMDA_ATTR_USERID and ctx not in self._users:
            try:
                self._users[ctx] = pwd.getpwuid(int(value)).pw_name
            except (KeyError, ValueError):
                log.warning("client context %d: unknown uid %s", ctx, value)

    def _end_context(self, ctx: int) -> None:
        self._users.pop(ctx, None)

    def _store(self, cluster: int, item: int, inst: int, value: Any) -> int:
        metric = self._metric_by_pmid.get(self.pmid(cluster, item))
        if metric is None:
            return c_api.PM_ERR_PMID
        instance = None
        if metric.indom is not None:
            instance = self.inst_name_lookup(self._indom_ids[metric.indom], inst)
            if instance is None:
                return c_api.PM_ERR_INST
        user = self._users.get(pmdaGetContext())
        try:
            self.agent.store(metric.name, instance, value, user)
        except StoreRefused as exc:
            log.warning("store to %s.%s by %s refused: %s", self.agent.root, metric.name,
                        user or "an unauthenticated client", exc)
            return c_api.PM_ERR_PERMISSION if exc.permission else c_api.PM_ERR_BADSTORE
        except Exception:
            log.exception("store to %s.%s failed", self.agent.root, metric.name)
            return c_api.PM_ERR_BADSTORE
        log.info("store to %s.%s by %s accepted", self.agent.root, metric.name, user)
        return 0

    def _label(self, ident: int, kind: int) -> str:
        return self._domain_label if kind == c_api.PM_LABEL_DOMAIN else "{}"

    def _instance_label(self, indom: int, inst: int) -> str:
        return self._served.labels.get(indom, {}).get(inst, "{}")


def _state_dir(agent: Agent) -> str:
    base = os.environ.get("PCP_VAR_DIR", "/var/lib/pcp")
    return os.path.join(base, "config", "hpc", agent.name)


def main(agent_class: type[Agent], argv: list[str] | None = None) -> None:
    """Entry point of every agent's ``python -m pmdas.<agent>``."""
    parser = argparse.ArgumentParser(prog=f"pmda{agent_class.name}",
                                     description=f"{agent_class.name} PCP agent ({agent_class.root}.*)")
    parser.add_argument("-c", "--config", help="YAML configuration file "
                        "(default: $PCP_SYSCONF_DIR/hpc/<agent>.yaml, optional)")
    parser.add_argument("-d", "--domain", type=int, default=agent_class.domain, help="PMDA domain number")
    parser.add_argument("-s", "--state-dir", help="where stable instance numbers are kept")
    parser.add_argument("--notready", action="store_true",
                        help="pmcd started us 'notready': send READY after the first refresh")
    args = parser.parse_args(argv)

    config_error = ""
    try:
        config = load(agent_class.name, agent_class.options, args.config)
    except ConfigError as exc:  # keep serving (health says why) rather than vanish from pmcd
        config_error = str(exc)
        config = defaults(agent_class)
    agent = agent_class(config)
    agent.domain = args.domain
    agent.prepare_process()
    pmda_holder: dict[str, HpcPMDA] = {}
    refresher = Refresher(agent, state_dir=args.state_dir or _state_dir(agent),
                          on_publish=lambda p: pmda_holder["pmda"].prepare(p),
                          config_error=config_error)
    pmda = HpcPMDA(agent, refresher, config_error)
    pmda_holder["pmda"] = pmda
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="[%(asctime)s] %(name)s %(levelname)s: %(message)s")
    if config_error:
        log.error("%s; running with default settings", config_error)
    if "PCP_PYTHON_DOMAIN" in os.environ or "PCP_PYTHON_PMNS" in os.environ:
        pmda.run()
        return

    def stop(signum: int, frame: Any) -> None:
        agent.close()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    # Started 'notready', the first refresh happens before the PDU loop: handshake now, refresh,
    # then READY, all on this thread, so no second thread ever writes to pmcd's pipe.  Without
    # 'notready' pmcd expects answers at once, so the first refresh runs in the background.
    if args.notready:
        pmda.connect_pmcd()
        try:
            refresher.refresh_once()
        except Exception:
            log.exception("first refresh failed")
        pmda.pmda_ready()
    threading.Thread(target=refresher.run_forever, kwargs={"first_wait": args.notready},
                     name="refresh", daemon=True).start()
    try:
        pmda.run()
    finally:
        agent.close()


def defaults(agent_class: type[Agent]) -> Config:
    return Config(validate({}, {**COMMON_OPTIONS, **agent_class.options}, "(defaults)"), None)
