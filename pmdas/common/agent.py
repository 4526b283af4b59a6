"""The contract every agent fulfils: its sources, how they combine, what it exports."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .config import Config, Option
from .sources import Results, Source
from .table import Indom, Metric


class StoreRefused(Exception):
    """A PCP store was refused; ``permission`` distinguishes 'not allowed' from 'bad value'."""

    def __init__(self, reason: str, permission: bool = False):
        super().__init__(reason)
        self.permission = permission


class Agent:
    """Subclass per agent.  Pure Python: the PCP glue (pmdas.common.pmda) drives it.

    ``sources()`` is called once per refresh and may depend on what is present
    (filesystems mounted, ports plugged in).  ``build()`` turns the source results
    into one immutable snapshot that the metric table's extractors read.  It is
    called from a single refresh thread, so an agent may keep state between
    refreshes (previous counters, for example) on ``self``.
    """

    name: str = ""            # pmcd.conf label, e.g. "hpcib"
    domain: int = 0           # PMDA domain number
    root: str = ""            # metric root, e.g. "hpc.ib"
    options: Mapping[str, Option] = {}
    metrics: Sequence[Metric] = ()
    indoms: Sequence[Indom] = ()

    def __init__(self, config: Config):
        self.config = config

    def sources(self) -> Sequence[Source]:
        raise NotImplementedError

    def build(self, results: Results) -> Any:
        raise NotImplementedError

    def store(self, metric: str, instance: str | None, value: Any, user: str | None) -> None:
        """Handle a PCP store (pmstore, a Grafana panel) to ``metric`` (relative name).

        Called on pmcd's thread: do no slow work here, hand it to the refresh
        thread.  ``user`` is the authenticated user of the client, or None when
        the client did not authenticate.  Raise StoreRefused to refuse.
        """
        raise StoreRefused(f"{self.root}.{metric} is read-only", permission=True)

    def request_refresh(self) -> None:
        """Ask for a refresh now rather than at the next interval (the refresher wires this)."""

    def needs_root(self) -> str:
        """Why this agent must keep running as root once pmcd has started it, or "" if it need
        not (then it becomes the pcp user: pmdas/common/privilege.py).  Asked once, as root,
        before the first refresh; the ``user`` setting overrides the answer."""
        return ""

    def prepare_process(self) -> None:
        """Set process-wide things (interpreter settings) once, in the agent's own process
        before its first refresh; never called by tests that build agents in-process."""

    def close(self) -> None:
        """Release what the agent started (child processes); called when pmcd lets it go."""

    def domain_labels(self) -> Mapping[str, Any]:
        """Labels for every metric of this agent (PCP domain labels)."""
        return {"agent": self.name}
