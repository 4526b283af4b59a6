"""PCP's configuration variables (pcp.conf) without importing the PCP bindings."""
from __future__ import annotations

import functools
import os


@functools.cache
def _pcp_conf() -> dict[str, str]:
    path = os.environ.get("PCP_CONF", "/etc/pcp.conf")
    values: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    key, _, value = line.partition("=")
                    values[key.strip()] = value.strip().strip('"')
    except OSError:
        pass
    return values


def pcp_config(key: str) -> str:
    """A PCP_* setting: the environment first, then pcp.conf (as libpcp does)."""
    defaults = {"PCP_PMDAS_DIR": "/var/lib/pcp/pmdas", "PCP_VAR_DIR": "/var/lib/pcp",
                "PCP_SYSCONF_DIR": "/etc/pcp", "PCP_LOG_DIR": "/var/log/pcp",
                "PCP_BINADM_DIR": "/usr/lib/pcp/bin", "PCP_RC_DIR": "/etc/init.d"}
    return os.environ.get(key) or _pcp_conf().get(key) or defaults.get(key, "")
