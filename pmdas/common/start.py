"""How an agent comes to life, in one place: its settings and the agent built from them.

An agent with a refresh process (pmdas/common/worker.py) is built twice: once in the process
pmcd talks to and once in the refresh child.  Both must come out the same (same settings, same
domain, the same fallback to defaults when the file is broken), or the child would number and
fill metrics the agent's process does not serve.  So both call ``build_agent`` and nothing
else, the child with the settings its parent read: the file is read once, as root, and the
child (running as the pcp user) never reads it.  Pure Python, no PCP bindings: the refresh
child never needs libpcp_pmda.
"""
from __future__ import annotations

import os

from .agent import Agent
from .config import COMMON_OPTIONS, Config, ConfigError, load, validate


def defaults(agent_class: type[Agent]) -> Config:
    """The settings an agent runs with when it has no file, or a broken one."""
    return Config(validate({}, {**COMMON_OPTIONS, **agent_class.options}, "(defaults)"), None)


def read_settings(agent_class: type[Agent], config_path: str | None) -> tuple[Config, str]:
    """The agent's settings from ``config_path`` (None: the default file, if any), and the
    configuration error, or "".

    A broken file does not stop the agent: it runs on defaults, and its health says why,
    rather than vanishing from pmcd over a typo.
    """
    try:
        return load(agent_class.name, agent_class.options, config_path), ""
    except ConfigError as exc:
        return defaults(agent_class), str(exc)


def build_agent(agent_class: type[Agent], config_path: str | None, domain: int,
                settings: tuple[Config, str] | None = None) -> tuple[Agent, str]:
    """The agent, configured from ``config_path`` (or from ``settings`` already read: the
    refresh child gets its parent's, as it may run as a user who cannot read the file),
    numbered ``domain`` and with its process-wide settings made; and the configuration
    error, or "".
    """
    config, config_error = settings or read_settings(agent_class, config_path)
    agent = agent_class(config)
    agent.domain = domain
    agent.prepare_process()
    return agent, config_error


def refreshes_in_child(agent: Agent) -> bool:
    """Whether the agent's refreshes run in a refresh process (its ``refresh_process``
    setting).  An agent that accepts PCP stores keeps the refresh thread whatever the
    setting: a store must reach the agent object that refreshes."""
    return bool(agent.config.get("refresh_process", False)) and type(agent).store is Agent.store


def default_state_dir(agent: Agent) -> str:
    """Where an agent keeps its stable instance numbers unless told otherwise (-s)."""
    base = os.environ.get("PCP_VAR_DIR", "/var/lib/pcp")
    return os.path.join(base, "config", "hpc", agent.name)
