"""Byte sizes as people type and read them (``64M``, ``1.5 GiB``).

Both command lines (``dtn-transfer`` and the lab's ``dtn-lab``) take sizes and rates in
the same notation, so it lives here, below both, and neither command imports the other.
"""
from __future__ import annotations

import click

_SUFFIX = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}


def parse_size(text: str) -> int:
    """``64M``, ``512K``, ``1G`` or plain bytes → bytes (binary multiples)."""
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1] if text and text[-1] in _SUFFIX else ""
    number = text[:-1] if unit else text
    try:
        value = float(number) * _SUFFIX[unit]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size like 64M or 1048576") from None
    if value <= 0:
        raise click.BadParameter("a size must be greater than 0")
    return int(value)


class Size(click.ParamType):
    """A click option type for sizes: the option's value arrives as bytes."""

    name = "size"

    def convert(self, value, param, ctx):  # noqa: ANN001 - click's signature
        return value if isinstance(value, int) else parse_size(value)


def human(nbytes: float) -> str:
    """Bytes as a short binary-unit string for terminals (``3.2 MiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"
