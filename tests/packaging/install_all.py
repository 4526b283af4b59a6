"""Install every pcp-hpc agent into pmcd with the INSTALLED package's hpc_pcp (run by
scripts/test-packages.sh as ``/usr/bin/python3 -I install_all.py DIR AGENT...``).

DIR/configs.yaml maps each agent to its settings; each is written to DIR/<agent>.yaml and
given to the agent with -c, so the site's /etc/pcp/hpc files are left alone.
"""
from __future__ import annotations

import os
import sys

import yaml

from hpc_pcp import install


def main(directory: str, agents: list[str]) -> int:
    if "/site-packages/" not in install.__file__ and "/dist-packages/" not in install.__file__:
        raise SystemExit(f"hpc_pcp imports from {install.__file__}, not from an installed package")
    with open(os.path.join(directory, "configs.yaml"), encoding="utf-8") as f:
        configs = yaml.safe_load(f)
    if set(configs) != set(agents):
        raise SystemExit(f"settings for {sorted(configs)}, but the agents are {sorted(agents)}")
    failed = 0
    for name in agents:
        path = os.path.join(directory, f"{name}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(configs[name], f)
        result = install.install(name, extra_args=f"-c {path}")
        print(f"{name}: {'installed' if result.ok else 'FAILED'}")
        if not result.ok:
            failed += 1
            print(result.output)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2:]))
