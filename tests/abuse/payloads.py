"""Hostile text for every path: shell breakouts aimed at a canary, pmie here-document
terminators, control and format characters, lone surrogates, PCP first-word collisions,
path traversal, huge values.  Each command in a payload, were it ever run by a shell,
would create a file in the case's canary directory (ledger.Canary)."""
from __future__ import annotations

from hpc_pcp.alarm import HEREDOC

from .ledger import Canary


def shell_breakouts(canary: Canary, tag: str) -> list[str]:
    """Text that runs a command if any shell, pmie action or here-document pastes it raw."""
    c = canary.command
    return [
        f"{tag}a$({c(tag + 'a')})",
        f"{tag}b`{c(tag + 'b')}`",
        f"{tag}c;{c(tag + 'c')}",
        f"{tag}d|{c(tag + 'd')}",
        f"{tag}e&&{c(tag + 'e')}",
        f"{tag}f\n{HEREDOC}\n{c(tag + 'f')}\n",
        f"{tag}g\r\n{HEREDOC}\r\n{c(tag + 'g')}",
        f"{tag}h\u2028{HEREDOC}\u2028{c(tag + 'h')}",
        f"{tag}i'\"; {c(tag + 'i')}; echo '\"",
        f"{tag}j\n{c(tag + 'j')}",
        f"{HEREDOC}\n{c(tag + 'k')}",
    ]


def odd_text(tag: str) -> list[str]:
    """Text that is not an attack on a shell but on parsers, PCP and terminals."""
    return [
        f"{tag}nul\x00x", f"{tag}esc\x1b[2J\x1b]0;title\x07", f"{tag}del\x7fx", f"{tag}tab\tx",
        f"{tag}bidi\u202etxt.exe", f"{tag}zw\u200b\ufeff", f"{tag}pct%i%h%v%s%n", f"{tag}\\x41\\n",
        f"{tag}emoji\U0001f600", f"{tag}" + "é" * 200, f"{tag}{{{{7*7}}}}${{IFS}}",
        f"Not Running: {tag} queue a", f"Not Running: {tag} queue b", "Not",
        f"{tag}-- -rf --help", f"{tag} spaced name ", f"{tag}" + "x" * 5000,
    ]


def hostile_names(canary: Canary, tag: str) -> list[str]:
    return shell_breakouts(canary, tag) + odd_text(tag)


def surrogates(tag: str) -> list[str]:
    """Lone surrogates: only where the source carries them escaped (JSON), never as bytes."""
    return [f"{tag}lone\ud800", f"{tag}low\udfffx"]
