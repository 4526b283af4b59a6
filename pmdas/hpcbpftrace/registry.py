"""The scripts a node may run: curated ones shipped with pcp-hpc and admin-added ones.

Curated scripts live in the package's ``bpftrace_scripts/`` directory and cannot
be removed, only disabled.  Admin scripts are files ``<name>.bt`` in an admin
directory (default /var/lib/pcp-hpc/bpftrace/scripts).  Which scripts are
enabled is kept in ``state.json`` there, so it survives agent restarts.  Names are
validated (a lower-case word, no path tricks) and sizes capped before anything
is written, and a script must carry a valid header naming itself.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection
from dataclasses import dataclass

from pmdas.common import shipped
from pmdas.common.durable import replace_file

from .header import Header, HeaderError, misdeclared_exports, parse_header, unused_exports, valid_name

log = logging.getLogger(__name__)

CURATED_DIR = str(shipped.data_dir(shipped.BPFTRACE_SCRIPTS))
ADMIN_DIR = "/var/lib/pcp-hpc/bpftrace/scripts"
MAX_SCRIPT_BYTES = 64 << 10
CURATED, ADMIN = "curated", "admin"


class RegistryError(Exception):
    """A refused registry operation; the message is one sentence for the admin."""


@dataclass(frozen=True)
class Script:
    name: str
    path: str
    origin: str                  # CURATED or ADMIN
    enabled: bool
    header: Header | None        # None when the header is broken (see error)
    error: str = ""

    @property
    def runnable(self) -> bool:
        return self.header is not None and not self.error


def check_script(name: str, text: str, max_bytes: int = MAX_SCRIPT_BYTES) -> Header:
    """Validate a script before it is stored; raise RegistryError with the reason."""
    if not valid_name(name):
        raise RegistryError(f"script name {name!r} must be a lower-case word of letters, "
                            f"digits and '_' (at most 40 characters)")
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise RegistryError(f"script {name} is {size} bytes, over the limit of {max_bytes}")
    if "\0" in text:
        raise RegistryError(f"script {name} contains a NUL byte")
    try:
        header = parse_header(text)
    except HeaderError as exc:
        raise RegistryError(f"script {name}: {exc}") from None
    if header.name != name:
        raise RegistryError(f"script {name}: its header names it {header.name!r}")
    unused = unused_exports(header, text)
    if unused:
        raise RegistryError(f"script {name}: exported {unused[0]} is never used in the script")
    misdeclared = misdeclared_exports(header, text)
    if misdeclared:
        raise RegistryError(f"script {name}: {misdeclared[0]}")
    return header


class ScriptRegistry:
    def __init__(self, curated_dir: str = CURATED_DIR, admin_dir: str = ADMIN_DIR,
                 max_bytes: int = MAX_SCRIPT_BYTES,
                 enabled_by_default: bool | Collection[str] = True):
        self.curated_dir, self.admin_dir = curated_dir, admin_dir
        self.max_bytes = max_bytes
        self.enabled_by_default = enabled_by_default
        # path → (origin, text, header, error): the agent lists the scripts every refresh;
        # a file whose text did not change is not validated again.
        self._checked: dict[str, tuple[str, bytes, Header | None, str]] = {}

    # -- reading ----------------------------------------------------------------
    def scripts(self) -> dict[str, Script]:
        """Every known script by name; curated ones win a name clash."""
        state = self._state()
        found: dict[str, Script] = {}
        checked: dict[str, tuple[str, bytes, Header | None, str]] = {}
        for origin, directory in ((CURATED, self.curated_dir), (ADMIN, self.admin_dir)):
            for path in self._files(directory):
                name = os.path.basename(path)[:-3]
                if name in found or not valid_name(name):
                    continue
                found[name] = self._load(name, path, origin, state, checked)
        self._checked = checked      # forget files that are gone
        return found

    def get(self, name: str) -> Script:
        script = self.scripts().get(name) if valid_name(name) else None
        if script is None:
            raise RegistryError(f"there is no bpftrace script named {name!r}")
        return script

    def enabled(self) -> list[Script]:
        return [s for s in self.scripts().values() if s.enabled]

    def _files(self, directory: str) -> list[str]:
        try:
            with os.scandir(directory) as entries:
                return sorted(e.path for e in entries if e.name.endswith(".bt") and e.is_file())
        except OSError:
            return []

    def _load(self, name: str, path: str, origin: str, state: dict,
              checked: dict[str, tuple[str, bytes, Header | None, str]]) -> Script:
        explicit = state.get(name)
        default = self.enabled_by_default
        if explicit is not None:
            enabled = bool(explicit)
        else:
            enabled = default if isinstance(default, bool) else name in default
        try:
            with open(path, "rb") as f:
                raw = f.read(self.max_bytes + 1)
        except OSError as exc:
            return Script(name, path, origin, enabled, None, exc.strerror or str(exc))
        before = self._checked.get(path)
        if before is not None and before[0] == origin and before[1] == raw:
            header, error = before[2], before[3]
        else:
            header, error = self._check(name, raw)
        checked[path] = (origin, raw, header, error)
        return Script(name, path, origin, enabled, header, error)

    def _check(self, name: str, raw: bytes) -> tuple[Header | None, str]:
        if len(raw) > self.max_bytes:
            return None, f"script {name} is over the size limit of {self.max_bytes} bytes"
        try:
            text = raw.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
            return check_script(name, text, self.max_bytes), ""
        except RegistryError as exc:
            return None, str(exc)

    # -- changing -----------------------------------------------------------------
    def add(self, name: str, text: str, enable: bool = True) -> Script:
        """Store an admin script (replacing an earlier admin script of that name)."""
        check_script(name, text, self.max_bytes)
        if os.path.exists(os.path.join(self.curated_dir, f"{name}.bt")):
            raise RegistryError(f"script {name} is a curated script; choose another name")
        self._write(f"{name}.bt", text)
        self._set_enabled(name, enable)
        return self.get(name)

    def remove(self, name: str) -> None:
        script = self.get(name)
        if script.origin == CURATED:
            raise RegistryError(f"script {name} is curated: it can be disabled, not removed")
        try:
            os.unlink(self._admin_path(name))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise RegistryError(f"cannot remove script {name}: {exc.strerror}") from None
        state = self._state()
        state.pop(name, None)
        self._write("state.json", json.dumps(state, indent=1, sort_keys=True))

    def enable(self, name: str) -> Script:
        self.get(name)
        self._set_enabled(name, True)
        return self.get(name)

    def disable(self, name: str) -> Script:
        self.get(name)
        self._set_enabled(name, False)
        return self.get(name)

    # -- storage ------------------------------------------------------------------
    def _admin_path(self, name: str) -> str:
        path = os.path.join(self.admin_dir, f"{name}.bt")
        if os.path.dirname(os.path.abspath(path)) != os.path.abspath(self.admin_dir):
            raise RegistryError(f"script name {name!r} escapes the script directory")
        return path

    def _state(self) -> dict[str, bool]:
        try:
            with open(os.path.join(self.admin_dir, "state.json"), encoding="utf-8") as f:
                raw = json.load(f)
            return {str(k): bool(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("bpftrace script state in %s unreadable (%s); using defaults",
                        self.admin_dir, exc)
            return {}

    def _set_enabled(self, name: str, enabled: bool) -> None:
        state = self._state()
        state[name] = enabled
        self._write("state.json", json.dumps(state, indent=1, sort_keys=True))

    def _write(self, filename: str, text: str) -> None:
        """Durable, atomic write into the admin directory (pmdas/common/durable.py).

        A reader never sees half a script, and a crash right after a store leaves the
        old file or the new one, never an empty one.
        """
        try:
            os.makedirs(self.admin_dir, mode=0o755, exist_ok=True)
            replace_file(os.path.join(self.admin_dir, filename), text)
        except OSError as exc:
            raise RegistryError(f"cannot write {filename} in {self.admin_dir}: "
                                f"{exc.strerror or exc}") from None
