"""TLS fixtures: a throwaway CA and certificates made with the openssl CLI,
a gateway with a [tls] listener, and clients that verify against the CA.

Names used throughout (all resolved to 127.0.0.1 by the clients):
  *.apps.example.org        pair "wildcard"  (CN=wildcard)
  app-exact.apps.example.org pair "exact"    (CN=exact)
  default.example.net       pair "default"   (CN=default, the default_cert)
  custom.example.com        pair "custom", as a Kubernetes TLS Secret
                            directory (custom/tls.crt + custom/tls.key)
"""
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "lib"))

import gwtest  # noqa: E402

APPS = "apps.example.org"


class PKI:
    """A CA in a directory; issue() signs leaf certificates with it."""

    def __init__(self, root):
        self.root = str(root)
        self.ca = os.path.join(self.root, "ca.crt")
        self.ca_key = os.path.join(self.root, "ca.key")
        self.serial = 1000
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-days", "3",
                  "-subj", "/CN=gateway test CA")

    def _run(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)

    def issue(self, crt, key, cn, sans, days=2):
        """Write a certificate (leaf + CA chain) and its key. days may be
        negative: the certificate is then already expired."""
        self.serial += 1
        csr = crt + ".csr"
        ext = crt + ".ext"
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join(f"DNS:{n}" for n in sans) + "\n")
        self._run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
        self._run("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                  "-set_serial", str(self.serial), "-days", str(days), "-extfile", ext,
                  "-out", crt)
        os.unlink(csr)
        os.unlink(ext)
        with open(self.ca) as f:
            chain = f.read()
        with open(crt, "a") as f:  # chains included, as ACME clients write them
            f.write(chain)
        return self.serial


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return PKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def certdir(pki, tmp_path):
    """A cert_dir with the four pairs described above."""
    d = tmp_path / "certs"
    d.mkdir()
    pki.issue(str(d / "wildcard.crt"), str(d / "wildcard.key"), "wildcard", [f"*.{APPS}"])
    pki.issue(str(d / "exact.crt"), str(d / "exact.key"), "exact", [f"app-exact.{APPS}"])
    pki.issue(str(d / "default.crt"), str(d / "default.key"), "default",
              ["default.example.net"])
    (d / "custom").mkdir()
    pki.issue(str(d / "custom" / "tls.crt"), str(d / "custom" / "tls.key"), "custom",
              ["custom.example.com"])
    return d


class TLSGateway:
    """A gwtest.Gateway plus its TLS port and the CA its clients trust."""

    def __init__(self, gw, tls_port, ca, certdir):
        self.gw = gw
        self.tls_port = tls_port
        self.ca = ca
        self.certdir = certdir

    def __getattr__(self, name):
        return getattr(self.gw, name)

    def context(self, **kw):
        return client_context(self.ca, **kw)

    def wrap(self, sni, ctx=None, timeout=10, session=None, **kw):
        return tls_connect(self.tls_port, sni, ctx or self.context(**kw), timeout, session)

    def https(self, method, path, sni, host=None, body=None, headers=None, ctx=None,
              timeout=10):
        """One HTTPS request on a fresh connection: (response, body, peer CN)."""
        s = self.wrap(sni, ctx=ctx, timeout=timeout)
        c = http.client.HTTPConnection(host or sni, self.tls_port, timeout=timeout)
        c.sock = s
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        cn = peer_cn(s)
        c.close()
        return r, data, cn

    def reload(self, lines=1, timeout=10):
        """SIGHUP, then wait until `lines` more reload results are logged
        (one per worker)."""
        import signal

        def results():
            err = self.gw.stderr()
            return err.count("reloaded ") + err.count("reload: ")
        n = results()
        self.gw.proc.send_signal(signal.SIGHUP)
        gwtest.wait_for(lambda: results() >= n + lines, timeout=timeout)


def client_context(ca, minimum=None, maximum=None, alpn=None, ciphers=None):
    ctx = ssl.create_default_context(cafile=ca)
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    if ciphers:
        ctx.set_ciphers(ciphers)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_connect(port, sni, ctx, timeout=10, session=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=sni, session=session,
                               suppress_ragged_eofs=False)
    except Exception:
        raw.close()
        raise


def peer_cn(s):
    for rdn in s.getpeercert()["subject"]:
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def read_until_close(s, limit=1 << 26):
    """Read a TLS socket until the server's close_notify. A close without
    close_notify raises ssl.SSLEOFError (suppress_ragged_eofs=False)."""
    out = b""
    while len(out) < limit:
        chunk = s.recv(65536)
        if not chunk:
            return out
        out += chunk
    return out


@pytest.fixture
def make_tls_gateway(make_gateway, pki, certdir):
    """make_tls_gateway(routes, config="", default_cert="default", ...)."""
    def make(routes, config="", default_cert="default", workers=1, cert_dir=None,
             subdir=None):
        tls_port = gwtest.free_port()
        lines = [f"listen = 127.0.0.1:{tls_port}", f"cert_dir = {cert_dir or certdir}"]
        if default_cert:
            lines.append(f"default_cert = {default_cert}")
        # The caller's own [tls] lines go after ours (the parser keeps the
        # last value of a key).
        text = "[tls]\n" + "\n".join(lines) + "\n" + config
        g = make_gateway(routes, config=text, workers=workers, subdir=subdir)
        gwtest.wait_port(tls_port, proc=g.proc)
        return TLSGateway(g, tls_port, pki.ca, str(cert_dir or certdir))
    return make


@pytest.fixture
def tgw(backend, make_tls_gateway):
    """Routes for the wildcard, exact and custom names to one backend."""
    routes = {f"a.{APPS}": [backend.addr], f"app-exact.{APPS}": [backend.addr],
              "custom.example.com": [backend.addr], "default.example.net": [backend.addr]}
    return make_tls_gateway(routes)


def replace_pair(pki, certdir, name, cn, sans, days=2):
    """Write a new pair atomically (rename), as cert-manager and certbot do."""
    tmp = os.path.join(str(certdir), ".new")
    os.makedirs(tmp, exist_ok=True)
    serial = pki.issue(os.path.join(tmp, name + ".crt"), os.path.join(tmp, name + ".key"),
                       cn, sans, days)
    os.replace(os.path.join(tmp, name + ".key"), os.path.join(str(certdir), name + ".key"))
    os.replace(os.path.join(tmp, name + ".crt"), os.path.join(str(certdir), name + ".crt"))
    shutil.rmtree(tmp)
    return serial
