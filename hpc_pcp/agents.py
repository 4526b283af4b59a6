"""Which of the pcp-hpc agents load in this installation (the registry is pmdas.agents)."""
from __future__ import annotations

from pmdas.agents import AGENTS, AgentEntry

__all__ = ["AGENTS", "AgentEntry", "available"]


def available(problems: dict[str, str] | None = None) -> dict[str, AgentEntry]:
    """Agents whose code loads in this installation; others are described in ``problems``."""
    out = {}
    for name, entry in AGENTS.items():
        try:
            entry.load()
        except Exception as exc:  # one broken agent must not take the admin command down
            if problems is not None:
                problems[name] = f"{type(exc).__name__}: {exc}"
            continue
        out[name] = entry
    return out
