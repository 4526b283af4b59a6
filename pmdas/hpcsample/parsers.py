"""Pure parsers for the sample agent's sources."""
from __future__ import annotations


def parse_value_file(text: str) -> float:
    """A value file holds one number; surrounding white space is ignored."""
    return float(text.strip())


def parse_key_values(text: str) -> dict[str, float]:
    """Lines of ``key value``; blank lines and ``#`` comments are skipped, bad lines ignored."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            continue
        try:
            out[parts[0]] = float(parts[1])
        except ValueError:
            continue
    return out
