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
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import cpmapi as c_api
import cpmda
from cpmda import set_need_refresh
from pcp.pmapi import pmContext as PCP
from pcp.pmapi import pmUnits
from pcp.pmda import PMDA, pmdaGetContext, pmdaIndom, pmdaInstid, pmdaMetric

from .agent import Agent, StoreRefused
from .namespace import AgentTable
from .prepare import Plain, Preparer, by_instance_id, coerce  # noqa: F401  (re-exported)
from .privilege import PrivilegeError, become, chosen_account, hand_over_state_dir
from .refresh import Published, Refresher
from .start import build_agent, default_state_dir, refreshes_in_child
from .table import COUNTER, DISCRETE, DOUBLE, I32, I64, INSTANT, STRING, U32, U64
from .worker import RefreshProcess

log = logging.getLogger("pmdas")
SLICE = 2048   # instances per slice of an instance array built while fetches are served

_PM_TYPE = {U32: c_api.PM_TYPE_U32, U64: c_api.PM_TYPE_U64, I32: c_api.PM_TYPE_32,
            I64: c_api.PM_TYPE_64, DOUBLE: c_api.PM_TYPE_DOUBLE, STRING: c_api.PM_TYPE_STRING}
_PM_SEM = {COUNTER: c_api.PM_SEM_COUNTER, INSTANT: c_api.PM_SEM_INSTANT,
           DISCRETE: c_api.PM_SEM_DISCRETE}
@dataclass
class Served:
    """What the main thread serves: built in the refresher thread, swapped in whole."""

    values: dict[int, Any]                     # pmid → value or {inst id: value}
    instids: dict[int, Any]                    # indom id → ctypes pmdaInstid array
    counts: dict[int, int]                     # indom id → number of instances
    members: dict[int, frozenset]              # indom id → instance ids
    labels: dict[int, dict[int, str]]          # indom id → {inst id: label JSON}


class HpcPMDA(PMDA):
    """One agent's metrics and instance domains as libpcp_pmda serves them.

    ``table``: the agent's checked, numbered table (AgentTable.of(agent) when not given), the
    one its refresher evaluates and its refresh process prepares values under.
    """

    def __init__(self, agent: Agent, table: AgentTable | None = None):
        table = table or AgentTable.of(agent)
        super().__init__(agent.name, table.domain)
        self.agent = agent
        self.table = table
        self._indom_ids = table.indom_ids
        self._pmids = table.numbered
        self.pmids = table.pmids   # relative name → PMID
        self._check_numbers()
        self._indoms: dict[int, pmdaIndom] = {}
        for indom in table.indoms:
            it = pmdaIndom(self._indom_ids[indom.name], [])
            self._indoms[it.it_indom] = it
            self.add_indom(it, indom.help, indom.long_help)
        for metric, pmid in self._pmids:
            indom_id = self._indom_ids[metric.indom] if metric.indom else c_api.PM_INDOM_NULL
            self.add_metric(table.full_name(metric),
                            pmdaMetric(pmid, _PM_TYPE[metric.type], indom_id, _PM_SEM[metric.semantics],
                                       pmUnits(*metric.units.as_tuple())),
                            metric.help, metric.long_help)
        self._domain_label = json.dumps(dict(agent.domain_labels()))
        self._pending: Served | None = None
        self.preparer = Preparer(table)
        self._instance_memo: dict[int, tuple[dict, Any, frozenset]] = {}   # installing thread only
        self._served = Served({}, {}, {}, {}, {})
        self._keepalive: list[Served] = []
        self._retired: list[Served] = []      # to be freed by the installing thread
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

    def _check_numbers(self) -> None:
        """Fetches and stores arrive as (cluster, item) and are looked up with libpcp's
        numbering: the table's pure-Python numbers must be the same, or they would miss."""
        numbers = [(m.name, pmid, self.pmid(m.cluster, m.item)) for m, pmid in self._pmids]
        numbers += [(i.name, self._indom_ids[i.name], self.indom(i.serial)) for i in self.table.indoms]
        for name, ours, libpcp in numbers:
            if ours != libpcp:
                raise RuntimeError(f"{self.agent.name}: {name} is {ours:#x} in the table, "
                                   f"{libpcp:#x} in libpcp")

    # -- refresher thread (or the thread receiving from the refresh process) ----------
    def prepare(self, published: Published) -> None:
        """Turn a Published snapshot into ready-to-serve structures (refresher thread)."""
        self.install(self.preparer.prepare(published))

    def install(self, plain: Plain) -> None:
        """Make ``plain`` the next thing served: instance arrays are built here (only for
        instance domains whose names changed), then the main thread swaps it in."""
        self._release()
        served = Served(plain.values, {}, {}, {}, plain.labels)
        for indom_id, ids in plain.ids.items():
            served.instids[indom_id], served.members[indom_id] = self._instance_arrays(indom_id, ids)
            served.counts[indom_id] = len(ids)
        with self._lock:
            self._pending = served

    def _release(self) -> None:
        """Free answers the main thread no longer serves here, one value map at a time with the
        interpreter lock let go in between: dropping a million values in one go holds it for
        milliseconds, on whichever thread drops the last reference (before: a fetch's)."""
        while self._retired:
            served = self._retired.pop()
            parts = [*served.values.values(), *served.instids.values(), *served.members.values(),
                     *served.labels.values()]
            del served
            while parts:
                big = len(part) > SLICE if hasattr(part := parts.pop(), "__len__") else False
                del part
                if big:
                    time.sleep(0)

    def _instance_arrays(self, indom_id: int, ids: dict[str, int]) -> tuple[Any, frozenset]:
        """The pmdaInstid array and the id set of an instance domain, built again only when
        its instances changed since the last refresh (50,000 pending jobs often do not).
        A big array is built in slices with the interpreter lock let go in between, so a
        fetch waiting for it waits one slice, not the whole domain."""
        old_ids, array, members = self._instance_memo.get(indom_id, (None, None, None))
        if old_ids is not ids and old_ids != ids:
            array = (pmdaInstid * len(ids))()
            for k, (inst, ident) in enumerate(ids.items()):
                array[k].i_inst = ident
                array[k].i_name = inst.encode("utf-8")
                if k % SLICE == SLICE - 1:
                    time.sleep(0)
            members = frozenset(ids.values())
            self._instance_memo[indom_id] = (ids, array, members)
        return array, members

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
        # libpcp_pmda may still hold the previous arrays until its next refresh; the one before
        # is freed by the installing thread, not here on the fetch path.
        self._retired.extend(self._keepalive)
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


def _arguments(agent_class: type[Agent], argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"pmda{agent_class.name}",
                                     description=f"{agent_class.name} PCP agent ({agent_class.root}.*)")
    parser.add_argument("-c", "--config", help="YAML configuration file "
                        "(default: $PCP_SYSCONF_DIR/hpc/<agent>.yaml, optional)")
    parser.add_argument("-d", "--domain", type=int, default=agent_class.domain, help="PMDA domain number")
    parser.add_argument("-s", "--state-dir", help="where stable instance numbers are kept")
    parser.add_argument("--notready", action="store_true",
                        help="pmcd started us 'notready': send READY after the first refresh")
    return parser.parse_args(argv)


def _least_privilege(agent: Agent, states: str, pmda: HpcPMDA) -> None:
    """Become the account the agent runs as (pmdas/common/privilege.py), its state directory
    handed over first.  An agent that cannot must not serve as root instead: it exits, and
    its log says why."""
    try:
        account = chosen_account(agent, PCP.pmGetConfig("PCP_USER") or "pcp")
        if os.geteuid() == 0:
            hand_over_state_dir(states, account)
        become(account, pmda.set_user)
    except (PrivilegeError, OSError) as exc:
        log.error("%s: cannot run with least privilege: %s", agent.name, exc)
        sys.exit(1)
    log.info("%s runs as %s (uid %d): %s", agent.name, account.name, os.geteuid(), account.why)


def main(agent_class: type[Agent], argv: list[str] | None = None) -> None:
    """Entry point of every agent's ``python -m pmdas.<agent>``."""
    args = _arguments(agent_class, argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="[%(asctime)s] %(name)s %(levelname)s: %(message)s")
    agent, config_error = build_agent(agent_class, args.config, args.domain)
    if config_error:
        log.error("%s; running with default settings", config_error)
    table = AgentTable.of(agent)
    pmda = HpcPMDA(agent, table)
    if "PCP_PYTHON_DOMAIN" in os.environ or "PCP_PYTHON_PMNS" in os.environ:
        pmda.run()     # pmcd's Install asks for our domain or namespace: print it and go
        return
    states = args.state_dir or default_state_dir(agent)
    _least_privilege(agent, states, pmda)   # before any source is read or refresh started
    refresh: Refresher | RefreshProcess
    if refreshes_in_child(agent):   # a big refresh never holds this process's interpreter lock
        refresh = RefreshProcess(agent, pmda.install, args.config, states, config_error=config_error)
    else:
        refresh = Refresher(agent, states, on_publish=pmda.prepare, config_error=config_error, table=table)

    def stop(signum: int, frame: Any) -> NoReturn:
        refresh.stop()
        agent.close()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    # Started 'notready', pmcd waits for READY: handshake, first refresh, READY, all on this
    # thread, so no second thread ever writes to pmcd's pipe.  Without 'notready' pmcd expects
    # answers at once, so the first refresh happens in the background.
    if args.notready:
        pmda.connect_pmcd()
    refresh.start(first_here=args.notready)
    if args.notready:
        pmda.pmda_ready()
    try:
        pmda.run()
    finally:
        refresh.stop()
        agent.close()
