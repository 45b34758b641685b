"""TLS test helpers (tests/integration/tls): names, the throwaway CA,
clients that verify against it. Fixtures are in that folder's conftest.py."""
import http.client
import os
import shutil
import socket
import ssl
import subprocess

import gwtest
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
