"""Metric table of the alarm agent (hpc.alarm.*).

Append only within each cluster: PMIDs are positions, and archives record them.
"""
from __future__ import annotations

from pmdas.common.table import (
    COUNT,
    COUNTER,
    DISCRETE,
    DOUBLE,
    INSTANT,
    NONE,
    SEC,
    STRING,
    U32,
    U64,
    Indom,
    Metric,
    cluster,
    per_instance,
)

from .state import SEVERITIES

SEVERITY_LEVEL = {"info": 1, "warning": 2, "critical": 3}



INDOMS = [
    Indom("alarm", 0, "alarms raised by the pcp-hpc pmie rules, named rule:host:instance",
          "One instance per alarm that pmie has raised and that is firing now or was cleared "
          "within the last week: rule name, host pmie evaluated it on, and the instance the "
          "rule was true for (rule:host when the rule has no instances), e.g. "
          "ib.symbol_errors:node17:mlx5_0:1. Labels: rule, host, instance, severity.",
          lambda s: {k: {"rule": a.rule, "host": a.host, "instance": a.instance,
                         "severity": a.severity} for k, a in s.alarms.items()}),
    Indom("severity", 1, "alarm severities: info, warning, critical",
          "The three severities a rule can have. Always all three, so a dashboard shows 0 "
          "rather than nothing when no alarm of a severity fires.",
          lambda s: {name: {"severity": name} for name in SEVERITIES}),
    Indom("rule", 2, "alarm rules that have raised an alarm",
          "One instance per rule name with at least one alarm in the state directory.",
          lambda s: {r: {"rule": r} for r in {a.rule for a in s.alarms.values()}}),
]

_ALARM = [
    Metric("firing", U32, INSTANT, NONE, "1 while the alarm fires, 0 once cleared",
           "1 while the rule is true for this rule:host:instance (pmie found it true at its "
           "last evaluation), 0 after pmie found it false again. Cleared alarms stay for a "
           "week with firing 0 so dashboards can show recent trouble.",
           per_instance("alarms", lambda a: int(a.firing)), indom="alarm"),
    Metric("since", DOUBLE, INSTANT, SEC, "start of the current (or last) episode, epoch s",
           "When the rule last became true for this instance, in seconds since 1970-01-01 "
           "UTC. While firing, 'now - since' is how long the problem has lasted.",
           per_instance("alarms", lambda a: a.since), indom="alarm"),
    Metric("last_change", DOUBLE, INSTANT, SEC, "time the alarm last fired or cleared, epoch s",
           "When this alarm last changed state (fired or cleared), in seconds since the epoch.",
           per_instance("alarms", lambda a: a.last_change), indom="alarm"),
    Metric("cleared", DOUBLE, INSTANT, SEC, "time the alarm was last cleared, epoch s",
           "When pmie last found the rule false again for this instance, in seconds since the "
           "epoch. Unavailable while the alarm fires.",
           per_instance("alarms", lambda a: a.cleared), indom="alarm"),
    Metric("last_confirmed", DOUBLE, INSTANT, SEC, "last evaluation that found the rule true",
           "When pmie last evaluated the rule and found it true for this instance, in seconds "
           "since the epoch. A firing alarm confirmed long ago means pmie stopped evaluating "
           "it (see hpc.alarm.stale).", per_instance("alarms", lambda a: a.last_confirmed), indom="alarm"),
    Metric("stale", U32, INSTANT, NONE, "1 if firing but not confirmed lately",
           "1 when the alarm is firing but pmie has not confirmed it for longer than the "
           "agent's stale_after setting: pmie stopped, lost the host, or the rule was removed. "
           "Its firing state is then a memory, not a measurement.",
           per_instance("alarms", lambda a: int(a.stale)), indom="alarm"),
    Metric("message", STRING, INSTANT, NONE, "what the rule says about the problem",
           "The rule's message for this instance, with the measured value filled in.",
           per_instance("alarms", lambda a: a.message), indom="alarm"),
    Metric("value", STRING, INSTANT, NONE, "the measured value that made the rule true",
           "pmie's %v for this instance at the last confirmation, as pmie printed it "
           "(canonical units: bytes, seconds, counts, per second for rates).",
           per_instance("alarms", lambda a: a.value), indom="alarm"),
    Metric("severity", STRING, DISCRETE, NONE, "severity of the rule: info, warning or critical",
           "The severity configured for the rule that raised this alarm.",
           per_instance("alarms", lambda a: a.severity), indom="alarm"),
    Metric("severity_level", U32, DISCRETE, NONE, "severity as a number: 1 info 2 warning 3 critical",
           "The severity as a number for thresholds and colours: 1 info, 2 warning, 3 critical.",
           per_instance("alarms", lambda a: SEVERITY_LEVEL.get(a.severity)), indom="alarm"),
    Metric("firings", U64, COUNTER, COUNT, "times the alarm has fired",
           "Number of episodes (transitions from clear to firing) recorded for this instance "
           "since its state was first written.", per_instance("alarms", lambda a: a.firings), indom="alarm"),
    Metric("rule", STRING, DISCRETE, NONE, "name of the rule that raised the alarm",
           "The rule name (ib.symbol_errors, lustre.ost_full, ...) for tables in dashboards.",
           per_instance("alarms", lambda a: a.rule), indom="alarm"),
    Metric("host", STRING, DISCRETE, NONE, "host the rule was true on",
           "The host pmie evaluated the rule on (pmcd's host name as pmie reports it).",
           per_instance("alarms", lambda a: a.host), indom="alarm"),
]

_TOTALS = [
    Metric("total.firing", U32, INSTANT, COUNT, "alarms firing now",
           "Number of alarms (rule:host:instance) firing now, over every rule and host: the "
           "single number for the summary dashboard.",
           lambda s: sum(1 for a in s.alarms.values() if a.firing)),
    Metric("total.firing_by_severity", U32, INSTANT, COUNT, "alarms firing now per severity",
           "Number of alarms firing now with each severity (info, warning, critical).",
           lambda s: {sev: sum(1 for a in s.alarms.values() if a.firing and a.severity == sev)
                      for sev in SEVERITIES}, indom="severity"),
    Metric("total.alarms", U32, INSTANT, COUNT, "alarms known (firing or recently cleared)",
           "Number of alarm instances in the state directory, firing or cleared within a week.",
           lambda s: len(s.alarms)),
    Metric("total.stale", U32, INSTANT, COUNT, "firing alarms not confirmed lately",
           "Number of firing alarms that pmie has not confirmed for longer than stale_after.",
           lambda s: sum(1 for a in s.alarms.values() if a.stale)),
    Metric("total.hosts_firing", U32, INSTANT, COUNT, "hosts with at least one firing alarm",
           "Number of distinct hosts with at least one alarm firing now.",
           lambda s: len({a.host for a in s.alarms.values() if a.firing})),
    Metric("total.rule_firing", U32, INSTANT, COUNT, "alarms firing now per rule",
           "Number of alarms firing now for each rule (0 for rules whose alarms all cleared).",
           lambda s: {r: sum(1 for a in s.alarms.values() if a.firing and a.rule == r)
                      for r in {a.rule for a in s.alarms.values()}}, indom="rule"),
    Metric("state.files", U32, INSTANT, COUNT, "state files read at the last refresh",
           "Number of rule@host state files the agent read from the state directory.",
           lambda s: s.files),
    Metric("state.unusable", U32, INSTANT, COUNT, "state files that could not be read",
           "Number of state files that were unreadable or not valid at the last refresh; "
           "hpc.alarm.state.problems says which and why.", lambda s: len(s.problems)),
    Metric("state.problems", STRING, INSTANT, NONE, "why state files could not be used",
           "Semicolon-separated '<file>: <reason>' for each unusable state file, or empty.",
           lambda s: "; ".join(s.problems)),
    Metric("state.directory", STRING, DISCRETE, NONE, "the state directory the agent reads",
           "Where the alarm actions record state (the agent's directory setting); the pmie "
           "rules must write to the same place (hpc-pcp alarm rules --state-dir).",
           lambda s: s.directory),
]

METRICS = [*cluster(0, _ALARM), *cluster(1, _TOTALS)]
