"""Running one thread per node pair while the caller keeps the run's live state moving."""
from __future__ import annotations

import threading
from collections.abc import Callable


def run_ticking(threads: list[threading.Thread], tick: Callable[[], None], every: float = 0.5) -> None:
    """Start ``threads`` and wait for all of them, calling ``tick`` every ``every`` seconds
    meanwhile (live progress, state published to hpcdtn)."""
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(every)
            tick()
