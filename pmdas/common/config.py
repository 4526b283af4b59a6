"""Agent configuration: one YAML file per agent, validated at start.

Every agent works without a file (defaults).  A broken file gives exactly one
sentence naming the file, the key and the problem.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml


class ConfigError(Exception):
    """One sentence naming the file, the key and what is wrong."""


@dataclass(frozen=True)
class Option:
    default: Any
    help: str
    kind: type | tuple = object
    check: Callable[[Any], str | None] | None = None  # returns the problem, or None


def positive(value: Any) -> str | None:
    # .inf is a YAML float: an infinite interval or timeout would never refresh or time out
    return None if 0 < value < float("inf") else "must be greater than 0 and finite"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must not be negative"


# Options every agent has.
COMMON_OPTIONS: dict[str, Option] = {
    "interval": Option(10.0, "Seconds between refreshes of the sources.", (int, float), positive),
    "timeout": Option(5.0, "Seconds a single source may take before it is abandoned and "
                      "reported as failed.", (int, float), positive),
    "root": Option("/", "Prefix for /sys, /proc and debugfs paths (a fixture tree in tests "
                   "and on the demo node).", str),
    "user": Option("", "Account the agent runs as once pmcd has started it. Empty: the agent "
                   "chooses, the pcp user (PCP_USER in pcp.conf) unless its sources need root "
                   "(hpcbpftrace; hpclustre where Lustre keeps statistics in debugfs). Naming "
                   "root here gives hpcjob every job Slurm's PrivateData hides.", str),
}

# For agents whose refresh is big (see pmdas/common/worker.py); they list it in their options.
REFRESH_PROCESS = Option(True, "Refresh in a separate process, so that a big refresh never delays "
                         "fetches: the agent's own process only serves them. false refreshes in a "
                         "thread of the agent's process instead (one process fewer; fetches then "
                         "wait while a big refresh holds Python's interpreter lock).", bool)

_KIND_WORDS = {int: "a whole number", float: "a number", str: "a string", bool: "true or false",
               list: "a list", dict: "a mapping"}


def _kind_word(kind: type | tuple) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds:
        return "a number"
    return " or ".join(_KIND_WORDS.get(k, k.__name__) for k in kinds)


class Config(Mapping[str, Any]):
    """Validated settings with attribute access (``config.interval``)."""

    def __init__(self, values: Mapping[str, Any], path: str | None):
        self._values = dict(values)
        self.path = path

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def config_dir() -> str:
    """Where agent configuration lives: $HPC_PCP_CONFIG_DIR or $PCP_SYSCONF_DIR/hpc."""
    explicit = os.environ.get("HPC_PCP_CONFIG_DIR")
    if explicit:
        return explicit
    return os.path.join(os.environ.get("PCP_SYSCONF_DIR", "/etc/pcp"), "hpc")


def default_path(agent: str) -> str:
    return os.path.join(config_dir(), f"{agent}.yaml")


def validate(raw: Any, options: Mapping[str, Option], where: str) -> dict[str, Any]:
    """Merge ``raw`` over the defaults and check it; ``where`` names the file in errors."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a mapping of settings, "
                          f"not {type(raw).__name__}")
    unknown = sorted(set(raw) - set(options))
    if unknown:
        raise ConfigError(f"{where}: key '{unknown[0]}' is not a known setting "
                          f"(known: {', '.join(sorted(options))})")
    values: dict[str, Any] = {}
    for key, option in options.items():
        value = raw.get(key, option.default)
        kinds = option.kind if isinstance(option.kind, tuple) else (option.kind,)
        if value is not None or option.default is not None:
            is_bool = isinstance(value, bool)
            if object not in kinds and (not isinstance(value, kinds) or (is_bool and bool not in kinds)):
                raise ConfigError(f"{where}: key '{key}' must be {_kind_word(option.kind)}, "
                                  f"got {value!r}")
            if option.check is not None:
                problem = option.check(value)
                if problem:
                    raise ConfigError(f"{where}: key '{key}' {problem}, got {value!r}")
        values[key] = value
    return values


def load(agent: str, options: Mapping[str, Option], path: str | None = None) -> Config:
    """Load and validate an agent's YAML file; a missing default file means defaults."""
    explicit = path is not None
    path = path or default_path(agent)
    all_options = {**COMMON_OPTIONS, **options}
    if not os.path.exists(path):
        if explicit:
            raise ConfigError(f"{path}: the configuration file does not exist")
        return Config(validate({}, all_options, path), None)
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text (byte {exc.start})") from None
    except (RecursionError, ValueError):  # nested past Python's stack; an int of over 4,300 digits
        raise ConfigError(f"{path}: is not a usable configuration (nested too deeply or a "
                          "number too long)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: is not valid YAML{at}: {problem}") from None
    return Config(validate(raw, all_options, path), path)
