"""bpftrace stores: any PCP client may store to hpc.bpftrace.control.* (the agent decides who
may change scripts).  Hostile names, path traversal, huge and never-compiling script text,
a script asking bpftrace to run a command, and a flood of stores go to the real agent (root,
the real bpftrace) through the real pmcd with pmstore."""
from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pmdas.hpcbpftrace.header import NAME_RE, HeaderError, parse_header
from pmdas.hpcbpftrace.registry import RegistryError, ScriptRegistry
from tests.harness.pcp import PCP_PATH, installed_agent, reader

from .ledger import LEDGER, Figures, served, wait_served, watch
from .payloads import hostile_names

pytestmark = [pytest.mark.pcp, pytest.mark.services, pytest.mark.usefixtures("pmcd")]

HEADER = "// name: {name}\n// description: abuse test\n// exports: @n counter: ticks\n"


def pmstore(control: str, value: str, user: str | None = None) -> subprocess.CompletedProcess:
    argv = ["pmstore", "-h", "local:", f"hpc.bpftrace.control.{control}", value]
    if user:
        argv = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": PCP_PATH})


def _scripts(canary) -> dict[str, str]:
    """Script texts to add: (expected outcome) name → text."""
    return {
        "abuse_broken": HEADER.format(name="abuse_broken") + "this is { not bpftrace @n ;;; \n",
        "abuse_unsafe": HEADER.format(name="abuse_unsafe")
        + f'BEGIN {{ system("{canary.command("bpftrace-system")}"); @n = count(); print(@n); }}\n',
        "abuse_huge": HEADER.format(name="abuse_huge") + "// " + "x" * 120_000 + "\n",
        "traversal": HEADER.format(name=canary.escape("bpftrace-name")),
        "injected": HEADER.format(name="abuse_ok\n// name: ../../etc/cron.d/x"),
        "no_header": "BEGIN { exit(); }",
        "binary": "\x01\x02\x7f\x1b" * 100,
    }


def test_hostile_stores_through_pmcd(abuse_dir):
    admin, curated = os.path.join(abuse_dir, "admin"), os.path.join(abuse_dir, "curated")
    os.mkdir(curated)
    config = {"script_dir": admin, "curated_dir": curated, "interval": 1, "enabled": []}
    with installed_agent("hpcbpftrace", config), \
            watch("bpftrace stores", ["hpcbpftrace"], [abuse_dir], may_write=[admin]) as case:
        names = hostile_names(case.canary, "s") + [case.canary.escape("bpftrace-enable"),
                                                   "../../../../etc/passwd", "/etc/shadow", "."]
        names = [n for n in names if "\0" not in n and not n.startswith("-")]
        took = []
        for control in ("enable", "disable", "remove"):
            for name in names:
                started = time.monotonic()
                done = pmstore(control, name)
                took.append(time.monotonic() - started)
                assert done.returncode != 0, f"store {control} {name!r} was accepted"
                case.tried()
        scripts = _scripts(case.canary)
        accepted = set()
        for name, text in scripts.items():
            if pmstore("add", text).returncode == 0:
                accepted.add(name)
            case.tried()
        assert accepted == {"abuse_broken", "abuse_unsafe"}, "a bad script was let in, or a good one refused"
        for name in ("abuse_broken", "abuse_unsafe"):    # a user outside allowed_users
            refused = pmstore("disable", name, user="nobody")
            assert refused.returncode != 0
            case.tried()
        for _ in range(100):                            # a flood of stores
            pmstore("enable", "no_such_script")
            case.tried()

        def settled():
            states = served("hpc.bpftrace.script.state")
            return states if all(states.get(n) in ('"failed"', '"unsupported"') for n in accepted) else None
        states = wait_served(settled, "hpc.bpftrace", "the scripts bpftrace refuses to fail")
        got = reader().fetch(["hpc.bpftrace.agent.up", "hpc.bpftrace.script.error"])
        assert got["hpc.bpftrace.agent.up"] == 1
        assert all(got["hpc.bpftrace.script.error"][n] for n in accepted), got
        assert "unsafe" in got["hpc.bpftrace.script.error"]["abuse_unsafe"]      # bpftrace's safe mode
        assert all(NAME_RE.match(n) for n in states), states
        for name in os.listdir(admin):      # only checked names became files in the script dir
            assert name == "state.json" or (name.endswith(".bt") and NAME_RE.match(name[:-3])), name
        assert max(took) < 2.0, f"a refused store took {max(took):.2f} s"
        case.tried(0)
    leftover = subprocess.run(["pgrep", "-f", f"bpftrace -f json {admin}"], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "bpftrace processes outlived the agent"
    assert not re.search(r"PWNED", " ".join(os.listdir("/tmp")))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=30) | st.sampled_from(["..", "../x", "/etc/passwd", "a/b", "ok_name"]),
       body=st.text(max_size=200))
def test_any_store_is_checked_into_the_script_directory_or_refused(tmp_path_factory, name, body):
    """What control.add stores (the header's name and any text): the registry writes it as
    <script_dir>/<name>.bt with a checked name, or refuses it with RegistryError; nothing is
    written elsewhere."""
    LEDGER.add("bpftrace stores", Figures(inputs=1))
    base = tmp_path_factory.mktemp("bt")
    admin, curated = base / "admin", base / "curated"
    curated.mkdir()
    registry = ScriptRegistry(str(curated), str(admin), enabled_by_default=False)
    text = f"// name: {name}\n// description: d\n// exports: @n counter: n\n{body}\n@n = count();\n"
    try:
        header = parse_header(text)
        registry.add(header.name, text)
    except (RegistryError, HeaderError):
        pass
    written = [str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()]
    assert all(w.startswith("admin/") and (w == "admin/state.json" or NAME_RE.match(w[6:-3]))
               for w in written), written
