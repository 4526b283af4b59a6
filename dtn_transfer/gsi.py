"""GSI (X.509) on the GridFTP control channel, for listing, SIZE, CKSM and DELE.

globus-url-copy authenticates its own sessions; this module gives the tool's own control
connections the same identity, so a GSI-only server serves them.  The protocol is
RFC 2228 with Globus's GSSAPI mechanism, which is TLS carried in FTP commands:

- ``AUTH GSSAPI`` (334), then the TLS handshake as base64 ``ADAT`` tokens (335 while the
  server has more to say, 235 when done).  The client presents the user's proxy (or
  certificate) and checks the server's host certificate against the trusted CA directory.
- After the handshake GSI's delegation step: the client sends one byte, ``0`` (no
  delegation: this session only reads sizes and checksums), as TLS application data; if
  it had handshake bytes left to send it first waits for the server's answer (a padding
  byte, read and dropped).
- Every later command goes as ``ENC <base64 TLS record>``; replies come back as
  631/632/633 lines whose decoded TLS records hold ordinary FTP replies.
- ``USER :globus-mapping:`` asks the server to map the certificate's subject through
  its grid-mapfile; a subject that is not there is refused at ``PASS``.

Python's ``ssl`` module does the TLS (``SSLObject`` over memory buffers), so no Globus
library is needed in-process.  ``MLSD`` is answered with ``MLSC``, the same listing on
the control channel: no data channel has to be authenticated for a listing, and the
names travel protected.  Because commands are wrapped, bytes outside ASCII (UTF-8 names)
reach the server intact, which the clear-text telnet layer of anonymous sessions drops.
"""
from __future__ import annotations

import base64
import ftplib
import os
import ssl
from dataclasses import dataclass

GSI_USER = ":globus-mapping:"     # "map my certificate's subject through the grid-mapfile"
_PROTECTED_REPLIES = ("631", "632", "633")
_MAX_REPLY_LINE = 256 << 20       # one protected reply holds a whole MLSC listing


# Data channel security of a GSI transfer, as globus-url-copy's flags: "auth" (DCAU, both
# ends prove the user's delegated identity; GridFTP's default), "safe" (also integrity
# checked), "private" (also encrypted), "clear" (no authentication: -nodcau).
DATA_CHANNEL = {"clear": ["-nodcau"], "auth": [], "safe": ["-dcsafe"], "private": ["-dcpriv"]}


def data_channel_flags(level: str) -> list[str]:
    """globus-url-copy flags for a data channel level (``DATA_CHANNEL``)."""
    try:
        return list(DATA_CHANNEL[level])
    except KeyError:
        raise ValueError(f"data channel level {level!r} is not one of {', '.join(DATA_CHANNEL)}") from None


class GsiError(Exception):
    """GSI credentials are missing or unusable, or a server refused them; one sentence."""


@dataclass(frozen=True)
class Credentials:
    """What the user authenticates with: a proxy (certificate and key in one file) or a
    certificate and key, and the directory of trusted CA certificates (``<hash>.0``)."""

    cert: str
    key: str
    cert_dir: str
    proxy: bool = True

    @classmethod
    def find(cls, proxy: str | None = None, cert: str | None = None, key: str | None = None,
             cert_dir: str | None = None, environ: dict[str, str] | None = None) -> Credentials:
        """Credentials as the Globus tools search them: an explicit proxy, an explicit
        certificate and key, ``X509_USER_PROXY``, ``/tmp/x509up_u<uid>``, then
        ``X509_USER_CERT``/``X509_USER_KEY``; CAs from ``X509_CERT_DIR`` or
        ``/etc/grid-security/certificates``."""
        env = os.environ if environ is None else environ
        cert_dir = cert_dir or env.get("X509_CERT_DIR") or "/etc/grid-security/certificates"
        identity = _identity(proxy, cert, key, env)
        if not os.path.isdir(cert_dir):
            raise GsiError(f"no trusted CA directory {cert_dir} (set X509_CERT_DIR or give --cert-dir)")
        return cls(*identity, cert_dir=cert_dir, proxy=identity[0] == identity[1])

    def environment(self) -> dict[str, str]:
        """Environment for globus-url-copy children, so they present the same identity."""
        if self.proxy:
            return {"X509_CERT_DIR": self.cert_dir, "X509_USER_PROXY": self.cert}
        return {"X509_CERT_DIR": self.cert_dir, "X509_USER_CERT": self.cert, "X509_USER_KEY": self.key}

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False            # GSI names hosts as CN=host/NAME: checked below
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_verify_locations(capath=self.cert_dir)
            ctx.load_cert_chain(self.cert, self.key)
        except (ssl.SSLError, OSError) as exc:
            raise GsiError(f"cannot use the GSI credentials {self.cert}: {exc}") from None
        return ctx


def _identity(proxy: str | None, cert: str | None, key: str | None, env) -> tuple[str, str]:
    """(certificate file, key file) in the Globus tools' order (see ``Credentials.find``)."""
    if cert or key:
        if not (cert and key):
            raise GsiError("--cert and --key go together")
        return _readable(cert, "certificate"), _readable(key, "key")
    default_proxy = f"/tmp/x509up_u{os.getuid()}"
    chosen = proxy or env.get("X509_USER_PROXY") or (default_proxy if os.path.exists(default_proxy) else None)
    if chosen:
        return _readable(chosen, "proxy"), chosen
    user_cert, user_key = env.get("X509_USER_CERT"), env.get("X509_USER_KEY")
    if user_cert and user_key:
        return _readable(user_cert, "certificate"), _readable(user_key, "key")
    raise GsiError(f"no GSI credentials: no proxy at {default_proxy} and X509_USER_PROXY is not set "
                   f"(make one with grid-proxy-init, or give --proxy, or --cert and --key); "
                   f"anonymous clear-text transfers need --anonymous")


def _readable(path: str, what: str) -> str:
    if not os.access(path, os.R_OK):
        raise GsiError(f"the {what} file {path} does not exist or is not readable")
    return path


def _names_host(peer: dict, host: str) -> bool:
    """True if the host certificate is the one of ``host`` (GSI's CN=host/NAME, or a SAN)."""
    for kind, value in peer.get("subjectAltName", ()):
        if kind in ("DNS", "IP Address") and value.lower() == host.lower():
            return True
    names = [v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"]
    wanted = {host.lower(), f"host/{host}".lower(), f"ftp/{host}".lower()}
    return any(n.lower() in wanted for n in names)


class _ProtectedSocket:
    """The control socket as ftplib sees it after authentication: each command line written
    to it goes out as ``ENC <token>``; everything else is the real socket."""

    def __init__(self, sock, tls: ssl.SSLObject, outgoing: ssl.MemoryBIO):
        self._sock, self._tls, self._out = sock, tls, outgoing
        self._partial = b""

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._partial += data
        wrapped = []
        while b"\r\n" in self._partial:
            line, self._partial = self._partial.split(b"\r\n", 1)
            self._tls.write(line + b"\r\n")
            wrapped.append(b"ENC " + base64.b64encode(self._out.read()) + b"\r\n")
        if wrapped:
            self._sock.sendall(b"".join(wrapped), flags)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class GsiFTP(ftplib.FTP):
    """An ``ftplib.FTP`` whose session is GSI-authenticated and protected (see module doc)."""

    def __init__(self, credentials: Credentials, timeout: float = 10.0):
        super().__init__(timeout=timeout)
        self.encoding = "latin-1"   # bytes pass through; callers re-decode names as UTF-8
        self.credentials = credentials
        self._tls: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._replies: list[str] = []     # decoded reply lines not yet handed to ftplib

    # -- authentication -------------------------------------------------------------------
    def login_gsi(self, host: str) -> str:
        """AUTH GSSAPI, the TLS handshake in ADAT tokens, then the grid-mapfile login."""
        self._tls = self.credentials.context().wrap_bio(self._incoming, self._outgoing)
        self.sendcmd("AUTH GSSAPI")
        done, flags_sent = self._handshake_step(), False
        while True:
            token = self._outgoing.read()
            if done and not token:          # nothing left of the handshake: GSI's flag byte
                token, flags_sent = self._flag_token(), True
            reply = self._adat(token)
            if reply.startswith("235"):
                break
            if done and not flags_sent:     # the server answered our last handshake bytes
                self._drop_padding()
                token, flags_sent = self._flag_token(), True
                reply = self._adat(token)
                if reply.startswith("235"):
                    break
                raise GsiError(f"GSI delegation step refused: {reply}")
            if not done:
                done = self._handshake_step()
        peer = self._tls.getpeercert() or {}
        if not _names_host(peer, host):
            raise GsiError(f"the server's certificate ({_subject(peer)}) is not a host certificate of {host}")
        self.sock = _ProtectedSocket(self.sock, self._tls, self._outgoing)
        reply = self.sendcmd(f"USER {GSI_USER}")
        if reply.startswith("331"):
            reply = self.sendcmd("PASS dummy")
        return reply

    def _handshake_step(self) -> bool:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLError as exc:
            raise GsiError(f"TLS handshake failed: {exc.reason or exc}") from None
        return True

    def _flag_token(self) -> bytes:
        self._tls.write(b"0")               # "0": no delegation (D would ask for a proxy request)
        return self._outgoing.read()

    def _drop_padding(self) -> None:
        try:
            self._tls.read(1)
        except ssl.SSLWantReadError:
            pass

    def _adat(self, token: bytes) -> str:
        reply = self.sendcmd("ADAT " + base64.b64encode(token).decode("ascii"))
        if "ADAT=" in reply:
            self._incoming.write(base64.b64decode(reply.split("ADAT=", 1)[1].strip()))
        return reply

    # -- protected replies ---------------------------------------------------------------
    def getline(self) -> str:
        if self._replies:
            return self._replies.pop(0)
        if not isinstance(self.sock, _ProtectedSocket):   # before authentication: clear text
            return super().getline()
        raw = self.file.readline(_MAX_REPLY_LINE)
        if not raw:
            raise EOFError
        raw = raw.rstrip("\r\n")
        if raw[:3] not in _PROTECTED_REPLIES:
            return raw                       # the server may answer errors unprotected
        self._incoming.write(base64.b64decode(raw[4:]))
        text = b""
        while True:
            try:
                text += self._tls.read(1 << 16)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break
        lines = text.decode("latin-1").split("\r\n")
        if lines and lines[-1] == "":
            lines.pop()
        if not lines:
            return self.getline()
        self._replies.extend(lines[1:])
        return lines[0]

    # -- listing on the control channel ----------------------------------------------------
    def retrlines(self, cmd, callback=None):
        """``MLSD path`` as ``MLSC path``: the listing comes in the (protected) replies, a big
        directory as several preliminary ``150-`` replies and then the final ``250``."""
        if not cmd.startswith("MLSD"):
            return super().retrlines(cmd, callback)
        reply = self.sendcmd("MLSC" + cmd[4:])
        while True:
            if not reply.startswith(("150", "250")):
                raise ftplib.error_reply(reply)
            lines = reply.split("\n")
            for line in lines[1:-1]:
                (callback or print)(line[1:] if line.startswith(" ") else line)
            if reply.startswith("250"):
                return lines[-1]
            reply = self.getresp()


def _subject(peer: dict) -> str:
    return "/".join(f"{k}={v}" for rdn in peer.get("subject", ()) for k, v in rdn) or "no subject"


def connect(node: str, credentials: Credentials | None = None, timeout: float = 10.0) -> GsiFTP:
    """A GSI-authenticated control connection to ``host:port``; raises GsiError with the
    server's reason when the credentials are refused, OSError when it cannot be reached."""
    host, _, port = node.rpartition(":")
    creds = credentials or Credentials.find()
    ftp = GsiFTP(creds, timeout)
    try:
        ftp.connect(host, int(port))
        ftp.login_gsi(host)
    except ftplib.Error as exc:
        ftp.close()
        raise GsiError(f"GridFTP node {node} refused the GSI login: {refusal(str(exc))}") from None
    except GsiError as exc:
        ftp.close()
        raise GsiError(f"GridFTP node {node}: {exc}") from None
    except BaseException:
        ftp.close()
        raise
    return ftp


def refusal(reply: str) -> str:
    """The telling lines of a Globus error reply (it nests a chain of messages)."""
    lines = [line[4:].strip() if line[:3].isdigit() else line.strip() for line in reply.splitlines()]
    noise = ("GSS Major", "OpenSSL Error")
    lines = [line for line in lines if line and line != "End." and not line.startswith(noise)]
    telling = [line for line in lines if any(w in line.lower() for w in (
        "gridmap", "grid-map", "not authorized", "certificate", "issuer", "expired", "verify", "refused",
        "unknown ca", "no local mapping", "permission"))]
    return "; ".join(dict.fromkeys(telling or lines[:2]))[:600]
