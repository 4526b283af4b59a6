"""Stable instance IDs: a name keeps its number across refreshes and agent restarts.

Numbers are never reused while a name is remembered.  Names that have not been
seen for ``forget_after`` seconds are forgotten (jobs, expired job_stats entries),
so the map stays bounded on long-running nodes.  The map is saved atomically as
JSON so a restarted agent gives every instance its old number back.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable
from itertools import compress, filterfalse, repeat
from operator import gt, sub

log = logging.getLogger(__name__)


class InstanceIds:
    def __init__(self, path: str | None = None, forget_after: float = 7 * 86400):
        self.path = path
        self.forget_after = forget_after
        self._ids: dict[str, int] = {}
        self._seen: dict[str, float] = {}
        self._next = 0
        self._dirty = False
        if path:
            self._load(path)

    def _load(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as f:
                saved = json.load(f)
            self._ids = {str(k): int(v) for k, v in saved["ids"].items()}
            self._seen = {str(k): float(v) for k, v in saved.get("seen", {}).items()}
            self._next = max([int(saved.get("next", 0)), *(i + 1 for i in self._ids.values())])
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("instance map %s unreadable (%s); starting a new one", path, exc)

    def assign(self, names: Iterable[str], now: float | None = None) -> dict[str, int]:
        """Return {name: id} for the current names, allocating numbers for new ones.

        Written for 50,000 names a refresh (a cluster's jobs): the per-name work is done
        by C loops (filterfalse, zip, map), Python only touches new and stale names.
        """
        now = time.time() if now is None else now
        names = list(names)
        ids = self._ids
        for name in filterfalse(ids.__contains__, names):
            if name not in ids:      # a name listed twice
                ids[name] = self._next
                self._next += 1
                self._dirty = True
        self._seen.update(dict.fromkeys(names, now))
        out = dict(zip(names, map(ids.__getitem__, names), strict=True))
        ages = map(sub, repeat(now), self._seen.values())
        stale = list(compress(self._seen, map(gt, ages, repeat(self.forget_after))))
        for name in stale:
            del self._seen[name]
            self._ids.pop(name, None)
            self._dirty = True
        return out

    def save(self) -> None:
        if not self.path or not self._dirty:
            return
        # dumps, then one write: json.dump would write 50,000 jobs in 400,000 pieces.
        text = json.dumps({"next": self._next, "ids": self._ids,
                           "seen": {n: round(t) for n, t in self._seen.items()}})
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".instances.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self.path)
            self._dirty = False
        except OSError as exc:
            log.warning("cannot save instance map %s: %s", self.path, exc)
            try:
                os.unlink(tmp)
            except OSError:
                pass
