"""A small reader over the PCP client API: names → {instance: value}."""
from __future__ import annotations

from typing import Any

import cpmapi as c_api
from pcp import pmapi


class PcpReader:
    """Fetches metrics from a pmcd (default: this host) and returns plain Python values."""

    def __init__(self, host: str = "local:"):
        self.context = pmapi.pmContext(c_api.PM_CONTEXT_HOST, host)

    def fetch(self, names: list[str]) -> dict[str, Any]:
        """{name: value} for singular metrics, {name: {instance: value}} for the rest.

        A name that is unknown or has no value maps to None.
        """
        out: dict[str, Any] = {}
        known: list[str] = []
        for name in names:
            try:
                self.context.pmLookupName(name)
                known.append(name)
            except pmapi.pmErr:
                out[name] = None
        if not known:
            return out
        pmids = self.context.pmLookupName(known)
        descs = self.context.pmLookupDescs(pmids)
        result = self.context.pmFetch(pmids)
        try:
            for i, name in enumerate(known):
                desc = descs[i]
                numval = result.contents.get_numval(i)
                if numval <= 0:
                    out[name] = None
                    continue
                values: Any = {}
                for j in range(numval):
                    atom = self.context.pmExtractValue(result.contents.get_valfmt(i),
                                                       result.contents.get_vlist(i, j),
                                                       desc.type, desc.type)
                    value = atom.dref(desc.type)
                    if desc.indom == c_api.PM_INDOM_NULL:
                        values = value
                        break
                    inst = result.contents.get_inst(i, j)
                    values[self.context.pmNameInDom(desc, inst)] = value
                out[name] = values
        finally:
            self.context.pmFreeResult(result)
        return out

    def children(self, name: str) -> list[str]:
        try:
            return list(self.context.pmGetChildren(name))
        except pmapi.pmErr:
            return []
