"""The command line's security options: GSI credentials, anonymous mode, data channel level.

GridFTP endpoints are GSI unless ``--anonymous`` is given.  Credentials are found as the
Globus tools find them (``--proxy``, ``--cert``/``--key``, else ``X509_USER_PROXY``,
``/tmp/x509up_u<uid>``, ``X509_USER_CERT``/``X509_USER_KEY``) and then put into this
process's environment, so the globus-url-copy children and the tool's own control
connections present the same identity.  They are not kept with the run: ``--resume``
finds them again the same way (a proxy may have been renewed meanwhile).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, fields

import click

from .endpoints import Endpoint
from .gsi import DATA_CHANNEL, Credentials, GsiError


def security_options(f):
    """Decorate a command with the security options; it receives them as one ``security``
    (a ``Security``)."""
    @functools.wraps(f)
    def command(*args, **params):
        taken = {name: params.pop(name) for name in _FIELDS}
        return f(*args, security=Security(**taken), **params)

    options = [
        click.option("--anonymous", is_flag=True,
                     help="Anonymous, clear-text ftp:// (no credentials, nothing protected); bare "
                          "host:port/path endpoints become ftp://.  Without it GridFTP endpoints are "
                          "gsiftp:// and ftp:// is refused."),
        click.option("--proxy", type=click.Path(dir_okay=False), default=None,
                     help="GSI proxy file (grid-proxy-init's output). Default: $X509_USER_PROXY, "
                          "then /tmp/x509up_u<uid>."),
        click.option("--cert", type=click.Path(dir_okay=False), default=None,
                     help="User certificate instead of a proxy (with --key; the key must not need a "
                          "pass phrase). Default when no proxy: $X509_USER_CERT."),
        click.option("--key", type=click.Path(dir_okay=False), default=None, help="Key of --cert."),
        click.option("--cert-dir", type=click.Path(file_okay=False), default=None,
                     help="Trusted CA certificates. Default: $X509_CERT_DIR, then "
                          "/etc/grid-security/certificates."),
        click.option("--dcsafe", "data_channel", flag_value="safe",
                     help="GSI data channels authenticated and integrity-checked (globus-url-copy -dcsafe)."),
        click.option("--dcpriv", "data_channel", flag_value="private",
                     help="GSI data channels authenticated and encrypted (globus-url-copy -dcpriv)."),
        click.option("--no-dcau", "data_channel", flag_value="clear",
                     help="GSI data channels without authentication (-nodcau). Default: authenticated "
                          "(DCAU), as GridFTP does."),
        click.option("--dcau", "data_channel", flag_value="auth", default=True, hidden=True),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass(frozen=True, kw_only=True)
class Security:
    """The values of ``security_options``."""

    anonymous: bool = False
    proxy: str | None = None
    cert: str | None = None
    key: str | None = None
    cert_dir: str | None = None
    data_channel: str = "auth"

    def check(self) -> None:
        """Refuse contradictions before anything starts (click.UsageError)."""
        if self.data_channel not in DATA_CHANNEL:
            raise click.UsageError(f"unknown data channel level {self.data_channel!r}")
        if self.anonymous and (self.proxy or self.cert or self.key or self.data_channel != "auth"):
            raise click.UsageError("--anonymous takes no credentials nor data channel protection "
                                   "(--proxy/--cert/--key/--dcsafe/--dcpriv/--no-dcau)")

    def use_credentials(self, *endpoints: Endpoint) -> None:
        """Find the GSI credentials if an endpoint needs them and export them to this process
        (and so to globus-url-copy); raises GsiError with what is missing."""
        if not any(e.gsi for e in endpoints):
            return
        creds = Credentials.find(self.proxy, self.cert, self.key, self.cert_dir)
        for name in ("X509_USER_PROXY", "X509_USER_CERT", "X509_USER_KEY"):
            os.environ.pop(name, None)       # only the chosen identity, no fallback to another
        os.environ.update(creds.environment())


_FIELDS = tuple(f.name for f in fields(Security))

__all__ = ["GsiError", "Security", "security_options"]
