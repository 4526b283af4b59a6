"""The rule catalogue and the pmie files generated from it.

pmie -C checks against an archive built from the agents' own metric tables
(tests/alarms/archive.py), so types and names are exactly the agents'.  pmie -C
exits 0 even on errors, so stderr is what is checked.
"""
from __future__ import annotations

import re
import subprocess

import pytest

from hpc_pcp.alarm import RuleError, Settings, configure, load_catalogue, render
from tests.harness.pcp import pcp_env

from .archive import build, metric_names


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return build(str(tmp_path_factory.mktemp("archive")))


def pmie_check(text: str, archive: str, tmp_path) -> str:
    path = tmp_path / "rules.pmie"
    path.write_text(text)
    done = subprocess.run(["pmie", "-C", "-a", archive, str(path)], capture_output=True, text=True,
                          env=pcp_env(), timeout=60)
    return done.stderr.strip()


# Any dotted name outside a string literal is a metric (pmie has no other dotted words).
_NAME = re.compile(r"\b[a-z][a-z0-9_]*(?:\.[A-Za-z0-9_]+)+")


def named_metrics(condition: str) -> set[str]:
    return set(_NAME.findall(re.sub(r'"[^"]*"', '""', condition)))


def test_metric_names_are_found_in_conditions():
    assert named_metrics('all_sample (proc.runq.blocked @0..4 > $n) && match_inst "^hpc.x" '
                         'pmcd.agent.status != 0') == {"proc.runq.blocked", "pmcd.agent.status"}


def test_every_metric_in_the_rules_exists_in_an_agent_table():
    """Our agents' tables, or PCP's base metrics declared in base_metrics.py (which
    tests/logger/test_base_metrics.py checks against pminfo): a typo in either fails here."""
    known = metric_names()
    missing = {r.name: sorted(named_metrics(r.condition) - known) for r in load_catalogue()
               if named_metrics(r.condition) - known}
    assert not missing, f"rules name metrics no agent exports: {missing}"
    assert "proc.runq.blocked" in set().union(*(named_metrics(r.condition) for r in load_catalogue()))


def test_d_state_alarm_holds_before_it_fires():
    """One brief D state must not page: the rule wants every one of several samples."""
    rule = next(r for r in load_catalogue() if r.name == "node.d_state")
    assert re.search(r"all_sample \(proc\.runq\.blocked @0\.\.([4-9]|\d\d) ", rule.condition), rule.condition
    assert "ps " in rule.help and "Lustre" in rule.help and "hpc-node" in rule.help


def test_catalogue_covers_every_area():
    groups = {r.group for r in load_catalogue()}
    assert groups >= {"nodes", "jobs", "lustre", "ib", "bpftrace", "dtn"}


def test_generated_rules_pass_pmie_syntax_check(archive, tmp_path):
    rules, settings = configure(load_catalogue(), {"state_dir": "/var/lib/pcp/config/hpc/alarms"})
    text = render(rules, settings)
    assert pmie_check(text, archive, tmp_path) == ""
    assert text.count(" -> shell ") == 2 * (len(rules) - 1)  # node.unreachable: no hosts given


def test_committed_rule_file_is_current_and_valid(archive, tmp_path):
    with open("pmie_rules/hpc-alarms.pmie", encoding="utf-8") as f:
        committed = f.read()
    assert committed == render(*configure(load_catalogue(), {}))
    assert pmie_check(committed, archive, tmp_path) == ""


def test_pmie_check_catches_a_broken_rule(archive, tmp_path):
    """The check above can fail: a string compared left-most is rejected by pmie."""
    bad = 'x = count_inst (hpc.ib.port.width != "4X" && hpc.ib.port.state == 4) == 0 -> print "x";\n'
    assert "mixed string and arithmetic" in pmie_check(bad, archive, tmp_path)


def test_thresholds_are_pmie_macros_and_configurable():
    rules, settings = configure(load_catalogue(), {
        "groups": ["ib"], "rules": {"ib.symbol_errors": {"max_per_sec": 5, "severity": "critical"},
                                    "ib.port_width": {"width": "2X"},
                                    "ib.counter_saturated": {"enabled": False}}})
    text = render(rules, settings)
    assert "ib_symbol_errors_max_per_sec = 5;" in text
    assert "hpc.ib.port.errors.symbol > $ib_symbol_errors_max_per_sec" in text
    assert "fire ib.symbol_errors --severity critical" in text
    assert 'hpc.ib.port.width != "2X"' in text
    assert "ib_counter_saturated" not in text and "lustre." not in text


def test_unreachable_rules_are_per_host():
    rules, settings = configure(load_catalogue(), {"groups": ["nodes"], "hosts": ["n1", "n2"]})
    text = render(rules, settings)
    assert "pmcd.numagents :'n1' >= 0" in text and "pmcd.numagents :'n2' >= 0" in text
    assert text.count("unknown\n") == 2


@pytest.mark.parametrize("raw, words", [
    ({"rules": {"no.such": {}}}, "no rule named"),
    ({"rules": {"ib.symbol_errors": {"max_per_sec": "lots"}}}, "must be a number"),
    ({"rules": {"ib.symbol_errors": {"severity": "panic"}}}, "severity must be one of"),
    ({"rules": {"ib.symbol_errors": {"bogus": 1}}}, "not a variable"),
    ({"rules": {"ib.port_width": {"width": "4X\"; rm"}}}, "without quotes"),
    ({"state_dir": "/tmp/$(reboot)"}, "must not contain"),
    ({"delta": "soon"}, "delta"),
    ({"colour": "red"}, "not a known setting"),
])
def test_bad_configuration_is_one_clear_sentence(raw, words):
    with pytest.raises(RuleError, match=words):
        configure(load_catalogue(), raw)


def test_instance_names_never_reach_the_shell_parser():
    text = render(*configure(load_catalogue(), {"groups": ["lustre"]}))
    for line in text.splitlines():
        if "%i" in line:  # only inside the quoted here-document body
            assert "<<'HPCALARM'\\n\" \"%h\\t%i\\t%v\\n\" \"HPCALARM\\n\"" in line


def test_settings_defaults():
    assert Settings().command == ("hpc-pcp", "alarm")
