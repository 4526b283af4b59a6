"""Alarm rules: the YAML catalogue in pmie_rules/ → a pmie configuration file.

Each catalogue rule is a per-instance pmie condition with named thresholds.  The
generated file defines every numeric threshold as a pmie macro at the top of its
rule (``ib_symbol_errors_max_per_sec = 0;``), so an admin can tune a generated
file by hand, or — better, because it survives regeneration — in the YAML
configuration given to ``hpc-pcp alarm rules --config``.

Every rule becomes two pmie rules on the same condition C:
  fire:  some_inst (C)           -> hpc-pcp alarm fire  (all true host/instance/value triples)
  clear: count_inst (C) == 0     -> hpc-pcp alarm clear (per host, only if it fires somewhere)
         || <agent>.agent.instances #'<indom>' == 0   (no instance left: pmie says "unknown")
Host, instance and value reach the command on standard input through a quoted
here-document, never through the shell's parser: instance names (Lustre job ids,
for one) can be chosen by users.
"""
from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from pmdas.common import shipped
from pmdas.hpcalarm.state import RULE_NAME, SEVERITIES, default_directory

HEREDOC = "HPCALARM"
_VARIABLE = re.compile(r"\$([a-z][a-z0-9_]*)")
_METRIC = re.compile(r"\b(?:hpc|pmcd)(?:\.[A-Za-z0-9_]+)+")
# Text that lands inside a pmie string and a shell single-quoted word must not contain these.
_UNSAFE = re.compile(r"[\"'$%\\`\n]")
DEFAULT_DELTA = "30 sec"


class RuleError(Exception):
    """A catalogue or configuration problem, in one sentence."""


def catalogue_dir() -> str:
    """$HPC_PCP_RULES_DIR, else the shipped pmie_rules/ (source tree or installed data)."""
    explicit = os.environ.get("HPC_PCP_RULES_DIR")
    if explicit:
        return explicit
    return str(shipped.data_dir(shipped.PMIE_RULES))


@dataclass(frozen=True)
class Variable:
    default: Any
    help: str


@dataclass(frozen=True)
class Rule:
    name: str
    group: str
    severity: str
    summary: str
    help: str
    condition: str
    message: str
    variables: Mapping[str, Variable] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)   # configured variable values
    kind: str = "instances"                                   # or "unreachable"
    enabled: bool = True

    @property
    def ident(self) -> str:
        """The rule name as a pmie identifier (ib.symbol_errors → ib_symbol_errors)."""
        return self.name.replace(".", "_")

    def metrics(self) -> set[str]:
        return set(_METRIC.findall(self.condition))


def _rule(name: str, group: str, raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: rule {name} must be a mapping")
    if not RULE_NAME.match(name):
        raise RuleError(f"{where}: rule name {name!r} must be lower-case words joined by dots")
    for key in ("severity", "summary", "help", "condition", "message"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise RuleError(f"{where}: rule {name} needs a '{key}' text")
    if raw["severity"] not in SEVERITIES:
        raise RuleError(f"{where}: rule {name} severity must be one of {', '.join(SEVERITIES)}")
    if _UNSAFE.search(raw["message"]):
        raise RuleError(f"{where}: rule {name} message must not contain quotes, $, %, ` or \\")
    variables = {}
    for var, spec in (raw.get("variables") or {}).items():
        if not isinstance(spec, dict) or "default" not in spec:
            raise RuleError(f"{where}: variable {var} of rule {name} needs a default")
        variables[var] = Variable(spec["default"], str(spec.get("help", "")))
    used = set(_VARIABLE.findall(raw["condition"]))
    if used - set(variables):
        raise RuleError(f"{where}: rule {name} uses undefined variable ${sorted(used - set(variables))[0]}")
    return Rule(name, group, raw["severity"], raw["summary"].strip(), raw["help"].strip(),
                " ".join(raw["condition"].split()), raw["message"], variables,
                {k: v.default for k, v in variables.items()}, raw.get("kind", "instances"))


def load_catalogue(directory: str | None = None) -> list[Rule]:
    """Every rule of every *.yaml file in the catalogue directory, in file order."""
    directory = directory or catalogue_dir()
    rules: list[Rule] = []
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".yaml"))
    except OSError as exc:
        raise RuleError(f"rule catalogue {directory} cannot be read: {exc.strerror}") from None
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as f:
                raw = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise RuleError(f"{path}: cannot be read as YAML ({exc})") from None
        group = str(raw.get("group", name[:-5]))
        for rule_name, spec in (raw.get("rules") or {}).items():
            rules.append(_rule(rule_name, group, spec, path))
    seen: set[str] = set()
    for r in rules:
        if r.name in seen:
            raise RuleError(f"rule {r.name} is defined twice in {directory}")
        seen.add(r.name)
    return rules


@dataclass(frozen=True)
class Settings:
    """Everything besides the rules that ends up in the generated file."""

    delta: str = DEFAULT_DELTA
    state_dir: str = ""
    command: Sequence[str] = ("hpc-pcp", "alarm")
    hosts: Sequence[str] = ()          # hosts that get a node.unreachable rule


_SETTING_KEYS = {"delta", "state_dir", "command", "hosts", "groups", "rules"}


def installed_command() -> tuple[str, ...]:
    """How pmie's actions reach this installation's ``hpc-pcp``: by absolute path.  pmie runs
    actions with its own fixed PATH (/usr/sbin:/sbin:/usr/bin:/bin): a package's /usr/bin/hpc-pcp
    is found there, a virtual environment's is not, and its alarms would be silently lost.
    The command beside this interpreter first (the one running now), else the one on PATH;
    the bare name only when neither exists or its path could not be quoted safely."""
    beside = os.path.join(os.path.dirname(sys.executable), "hpc-pcp")
    found = beside if os.access(beside, os.X_OK) else shutil.which("hpc-pcp")
    if not found:
        return tuple(Settings.command)
    found = os.path.abspath(found)
    if _UNSAFE.search(found) or " " in found:
        return tuple(Settings.command)
    return (found, "alarm")


def configure(rules: list[Rule], raw: Any, where: str = "configuration") -> tuple[list[Rule], Settings]:
    """Apply an admin's YAML mapping (see pmie_rules/README.md) to the catalogue."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: the top level must be a mapping")
    unknown = sorted(set(raw) - _SETTING_KEYS)
    if unknown:
        raise RuleError(f"{where}: key '{unknown[0]}' is not a known setting "
                        f"(known: {', '.join(sorted(_SETTING_KEYS))})")
    command = raw.get("command", Settings.command)
    if isinstance(command, str):
        command = shlex.split(command)
    settings = Settings(str(raw.get("delta", DEFAULT_DELTA)), str(raw.get("state_dir") or ""),
                        tuple(str(c) for c in command), tuple(str(h) for h in raw.get("hosts") or ()))
    for text in (settings.state_dir, *settings.command, *settings.hosts):
        if _UNSAFE.search(text) or " " in text:
            raise RuleError(f"{where}: {text!r} must not contain spaces, quotes, $, %, ` or \\")
    if not re.fullmatch(r"\d+(\.\d+)?\s*(sec|min|hour|msec)?", settings.delta.strip()):
        raise RuleError(f"{where}: delta {settings.delta!r} must look like '30 sec' or '1 min'")
    groups = raw.get("groups")
    by_name = {r.name: r for r in rules}
    out = [r for r in rules if groups is None or r.group in groups]
    for name, override in (raw.get("rules") or {}).items():
        if name not in by_name:
            raise RuleError(f"{where}: rules: no rule named {name!r} (see 'hpc-pcp alarm show')")
        if not isinstance(override, dict):
            raise RuleError(f"{where}: rules: {name} must be a mapping of settings")
        rule = by_name[name]
        values = dict(rule.values)
        changes: dict[str, Any] = {}
        for key, value in override.items():
            if key == "enabled":
                changes["enabled"] = bool(value)
            elif key == "severity":
                if value not in SEVERITIES:
                    raise RuleError(f"{where}: rules: {name}: severity must be one of "
                                    f"{', '.join(SEVERITIES)}")
                changes["severity"] = value
            elif key in rule.variables:
                values[key] = _checked_value(rule, key, value, where)
            else:
                raise RuleError(f"{where}: rules: {name}: '{key}' is not a variable of the rule "
                                f"(variables: {', '.join(rule.variables) or 'none'})")
        updated = replace(rule, values=values, **changes)
        out = [updated if r.name == name else r for r in out]
    return out, settings


def _checked_value(rule: Rule, key: str, value: Any, where: str) -> Any:
    default = rule.variables[key].default
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RuleError(f"{where}: rules: {rule.name}: {key} must be a number, got {value!r}")
        return value
    if not isinstance(value, str) or _UNSAFE.search(value):
        raise RuleError(f"{where}: rules: {rule.name}: {key} must be text without quotes, $, % or \\")
    return value


# -- rendering ----------------------------------------------------------------------------
def _macro(rule: Rule, var: str) -> str:
    return f"{rule.ident}_{var}"


def _condition(rule: Rule) -> str:
    def sub(match: re.Match) -> str:
        var = match.group(1)
        value = rule.values[var]
        return value if isinstance(value, str) else f"${_macro(rule, var)}"
    return _VARIABLE.sub(sub, rule.condition)


def _shell_word(text: str) -> str:
    return shlex.quote(text)


def _fire_action(rule: Rule, settings: Settings, host: str | None = None) -> str:
    argv = [*settings.command, "fire", rule.name, "--severity", rule.severity,
            "--message", rule.message]
    if settings.state_dir:
        argv += ["--state-dir", settings.state_dir]
    head = " ".join(_shell_word(a) for a in argv)
    if host is not None:  # unreachable: pmie binds nothing, the host is literal
        return f'shell "{head} <<\'{HEREDOC}\'\\n{host}\\t\\t\\n{HEREDOC}\\n"'
    return f'shell "{head} <<\'{HEREDOC}\'\\n" "%h\\t%i\\t%v\\n" "{HEREDOC}\\n"'


def _clear_action(rule: Rule, settings: Settings, host: str | None = None) -> str:
    state_dir = settings.state_dir or default_directory()
    argv = [*settings.command, "clear", rule.name]
    if settings.state_dir:
        argv += ["--state-dir", settings.state_dir]
    guard = (f"ls -A {_shell_word(os.path.join(state_dir, 'firing'))} 2>/dev/null | "
             f"grep -qF {_shell_word(rule.name + '@')}")
    head = f"{guard} && " + " ".join(_shell_word(a) for a in argv)
    if host is not None:
        return f'shell "{head} <<\'{HEREDOC}\'\\n{host}\\n{HEREDOC}\\n"'
    return f'shell "{head} <<\'{HEREDOC}\'\\n" "%h\\n" "{HEREDOC}\\n"'


def _comment(text: str) -> str:
    return text.replace("*/", "* /").replace("$", "")


def _empty_guard(rule: Rule) -> str | None:
    """``hpc.<agent>.agent.instances #'<indom>' == 0`` for the first per-instance hpc metric.

    count_inst over a metric with no instances is unknown to pmie, so without this a
    rule whose offending instances all vanished (a job ended, a run finished) would
    never clear.
    """
    indoms = _metric_indoms()
    for name in sorted(rule.metrics()):
        found = indoms.get(name)
        if found:
            root, indom = found
            return f"{root}.agent.instances #'{indom}' == 0"
    return None


@functools.lru_cache(maxsize=1)
def _metric_indoms() -> dict[str, tuple[str, str]]:
    """Full metric name → (agent root, indom name), for every per-instance agent metric."""
    from hpc_pcp.agents import available
    out = {}
    for entry in available().values():
        agent = entry.load()
        for metric in agent.metrics:
            if metric.indom is not None:
                out[f"{agent.root}.{metric.name}"] = (agent.root, metric.indom)
    return out


def render_rule(rule: Rule, settings: Settings) -> str:
    lines = [f"/* {rule.name} ({rule.severity}): {_comment(rule.summary)}.",
             f" * {_comment(rule.help)}"]
    for var, spec in rule.variables.items():
        lines.append(f" * {var} = {rule.values[var]!s}: {_comment(spec.help)}")
    lines.append(" */")
    for var in rule.variables:
        value = rule.values[var]
        if not isinstance(value, str):
            lines.append(f"{_macro(rule, var)} = {value};")
    condition = _condition(rule)
    if rule.kind == "unreachable":
        if not settings.hosts:
            lines.append(f"// {rule.name}: no hosts configured (hosts: in the configuration)")
        for i, host in enumerate(settings.hosts):
            qualified = _METRIC.sub(lambda m, h=host: f"{m.group(0)} :'{h}'", condition)
            lines.append(f"{rule.ident}_{i} = ruleset\n    {qualified}\n"
                         f"        -> {_clear_action(rule, settings, host)}\n"
                         f"  unknown\n        -> {_fire_action(rule, settings, host)};")
        return "\n".join(lines) + "\n"
    lines.append(f"{rule.ident} =\n    some_inst ({condition})\n        -> {_fire_action(rule, settings)};")
    clear = f"count_inst ({condition}) == 0"
    guard = _empty_guard(rule)
    if guard:  # pmie finds no instance at all "unknown": clear when the last one has gone
        clear = f"{clear} || {guard}"
    lines.append(f"{rule.ident}_clear =\n    {clear}\n"
                 f"        -> {_clear_action(rule, settings)};")
    return "\n".join(lines) + "\n"


def render(rules: Sequence[Rule], settings: Settings, title: str = "pcp-hpc alarm rules") -> str:
    """The pmie configuration for the enabled ``rules``."""
    head = [f"// {title}: generated by 'hpc-pcp alarm rules'; tune with its --config file.",
            "// Numeric thresholds are the macros above each rule. Actions record alarm state",
            f"// in {settings.state_dir or default_directory()} (exported as hpc.alarm.* by hpcalarm).",
            "", f"delta = {settings.delta};", ""]
    body = [render_rule(r, settings) for r in rules if r.enabled]
    return "\n".join(head) + "\n".join(body)


def load_config(path: str | None) -> Any:
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f) or {}
    except OSError as exc:
        raise RuleError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: is not valid YAML ({exc})") from None
