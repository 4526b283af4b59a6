"""The testbed's X.509 material, made with Debian's GSI tools: a CA, host and user certificates,
a grid-mapfile and a user proxy, all in one private directory.

- ``grid-ca-create`` (globus-simple-ca) makes the CA.  It always installs the CA into
  ``/etc/grid-security/certificates`` as root; it runs in a private mount namespace with
  this directory bound over ``/etc/grid-security``, so the machine's own trust store is
  never touched and the CA lands in ``certificates/`` here.
- ``grid-cert-request`` (pointed here by ``GRID_SECURITY_DIR``/``X509_CERT_DIR``) makes
  host keys and requests (``CN=host/<address>``: GSI's name for a host, which clients
  check against the address they connect to) and the user's; ``grid-ca-sign`` signs them.
- ``grid-mapfile`` maps the user's subject to a local account (``nobody`` by default,
  the account the anonymous servers use), ``grid-proxy-init`` makes a proxy.

Everything is created only when missing (the proxy also when it has less than an hour
left), so ``ensure`` is cheap on a running testbed.  Servers get ``server_environment``
(host certificate, CA directory, grid-mapfile); clients ``client_environment``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

CA_PASS = "testbed-ca"          # the CA key only ever signs for this throwaway testbed
USER_CN = "dtn tester"
ACCOUNT = os.environ.get("DTN_TESTBED_GSI_ACCOUNT", "nobody")
_CONFIGS = ("globus-user-ssl.conf", "globus-host-ssl.conf", "grid-security.conf")


class GsiSetupError(RuntimeError):
    """A GSI tool failed; the message names it and its output."""


def _run(argv: list[str], env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              env={**os.environ, **(env or {})}, timeout=120)
    except FileNotFoundError:
        raise GsiSetupError(f"{argv[0]} not found: install globus-simple-ca, globus-proxy-utils and "
                            f"globus-gsi-cert-utils-progs (make setup)") from None
    if done.returncode != 0:
        raise GsiSetupError(f"{' '.join(argv[:3])}: {(done.stderr or done.stdout).strip()[-800:]}")
    return done.stdout


@dataclass(frozen=True)
class GsiFiles:
    """Where the material lives below ``root`` (one directory per testbed)."""

    root: str
    label: str = "dtnb"      # the CA's and the user's organisational unit

    @property
    def ca_dir(self) -> str:
        return os.path.join(self.root, "ca")

    @property
    def cert_dir(self) -> str:
        return os.path.join(self.root, "certificates")

    @property
    def gridmap(self) -> str:
        return os.path.join(self.root, "grid-mapfile")

    @property
    def user_dir(self) -> str:
        return os.path.join(self.root, "user")

    @property
    def user_cert(self) -> str:
        return os.path.join(self.user_dir, "usercert.pem")

    @property
    def user_key(self) -> str:
        return os.path.join(self.user_dir, "userkey.pem")

    @property
    def proxy(self) -> str:
        return os.path.join(self.user_dir, "proxy.pem")

    def host_dir(self, address: str) -> str:
        return os.path.join(self.root, "hosts", address)

    def host_cert(self, address: str) -> tuple[str, str]:
        d = self.host_dir(address)
        return os.path.join(d, "hostcert.pem"), os.path.join(d, "hostkey.pem")

    def server_environment(self, address: str) -> dict[str, str]:
        cert, key = self.host_cert(address)
        return {"X509_CERT_DIR": self.cert_dir, "X509_USER_CERT": cert, "X509_USER_KEY": key,
                "GRIDMAP": self.gridmap}

    def client_environment(self) -> dict[str, str]:
        return {"X509_CERT_DIR": self.cert_dir, "X509_USER_PROXY": self.proxy}

    def user_subject(self) -> str:
        """The user's DN in the grid-mapfile's (OpenSSL one-line) form."""
        out = _run(["grid-cert-info", "-file", self.user_cert, "-subject"])
        return out.strip()

    def _tools_env(self) -> dict[str, str]:
        return {"GRID_SECURITY_DIR": self.root, "X509_CERT_DIR": self.cert_dir}

    # -- making ---------------------------------------------------------------------------
    def ensure(self, hosts: list[str], account: str = ACCOUNT) -> GsiFiles:
        """CA, host certificates for ``hosts``, user certificate, grid-mapfile, proxy."""
        os.makedirs(self.root, exist_ok=True)
        os.chmod(self.root, 0o755)       # servers read the CA directory after switching user
        if not os.path.exists(os.path.join(self.ca_dir, "cacert.pem")):
            self._make_ca()
        for address in hosts:
            cert, key = self.host_cert(address)
            if not os.path.exists(cert):
                self._certificate(["-host", address], self.host_dir(address), "host", cert)
        if not os.path.exists(self.user_cert):
            self._certificate(["-cn", USER_CN], self.user_dir, "user", self.user_cert)
        self.map_subjects({self.user_subject(): account})
        if not self.proxy_valid():
            self.make_proxy()
        return self

    def _make_ca(self) -> None:
        shutil.rmtree(self.ca_dir, ignore_errors=True)
        shutil.rmtree(self.cert_dir, ignore_errors=True)
        bound = os.path.join(self.root, "grid-security")
        os.makedirs(bound, exist_ok=True)
        create = ["grid-ca-create", "-noint", "-nobuild", "-dir", self.ca_dir, "-bits", "2048",
                  "-days", "365", "-pass", CA_PASS,
                  "-subject", f"cn=DTN Testbed CA {self.label}, ou={self.label}, o=pcp-hpc testbed"]
        script = 'mount --bind "$1" /etc/grid-security && shift && exec "$@"'
        _run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", bound, *create])
        shutil.move(os.path.join(bound, "certificates"), self.cert_dir)
        shutil.rmtree(bound, ignore_errors=True)
        os.chmod(self.cert_dir, 0o755)
        ca_hash = _run(["openssl", "x509", "-in", os.path.join(self.ca_dir, "cacert.pem"),
                        "-noout", "-hash"]).strip()
        for name in _CONFIGS:        # grid-cert-request reads them from GRID_SECURITY_DIR
            shutil.copy(os.path.join(self.cert_dir, f"{name}.{ca_hash}"), os.path.join(self.root, name))

    def _certificate(self, what: list[str], directory: str, kind: str, cert: str) -> None:
        os.makedirs(directory, exist_ok=True)
        os.chmod(directory, 0o700)
        _run(["grid-cert-request", *what, "-dir", directory, "-nopw", "-force"], self._tools_env())
        request = os.path.join(directory, f"{kind}cert_request.pem")
        _run(["grid-ca-sign", "-in", request, "-out", cert, "-dir", self.ca_dir, "-force",
              "-passin", f"pass:{CA_PASS}"])

    def map_subjects(self, subjects: dict[str, str]) -> None:
        """Write the grid-mapfile: ``"subject" account`` per line (replaces it)."""
        text = "".join(f'"{dn}" {account}\n' for dn, account in subjects.items())
        tmp = self.gridmap + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.gridmap)

    def proxy_valid(self, hours: int = 1) -> bool:
        if not os.path.exists(self.proxy):
            return False
        done = subprocess.run(["grid-proxy-info", "-file", self.proxy, "-exists", "-valid", f"{hours}:00"],
                              capture_output=True, env={**os.environ, **self._tools_env()})
        return done.returncode == 0

    def make_proxy(self, hours: int = 24, out: str | None = None, cert: str | None = None,
                   key: str | None = None) -> str:
        """grid-proxy-init from the user certificate (no pass phrase: a testbed key)."""
        target = out or self.proxy
        _run(["grid-proxy-init", "-q", "-cert", cert or self.user_cert, "-key", key or self.user_key,
              "-out", target, "-hours", str(hours), "-bits", "2048"], self._tools_env())
        return target

    def other_user(self, label: str) -> str:
        """A proxy of another user of this CA (``CN=<label>``), not in the grid-mapfile:
        what a valid identity that the site never authorised presents."""
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", label)      # grid-ca-sign breaks on spaces in paths
        directory = os.path.join(self.root, "others", slug)
        cert, key = os.path.join(directory, "usercert.pem"), os.path.join(directory, "userkey.pem")
        if not os.path.exists(cert):
            self._certificate(["-cn", label], directory, "user", cert)
        return self.make_proxy(out=os.path.join(directory, "proxy.pem"), cert=cert, key=key)
