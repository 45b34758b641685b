"""TLS fixtures: a throwaway CA and certificates made with the openssl CLI,
a gateway with a [tls] listener, and clients that verify against the CA.

Names used throughout (all resolved to 127.0.0.1 by the clients):
  *.apps.example.org        pair "wildcard"  (CN=wildcard)
  app-exact.apps.example.org pair "exact"    (CN=exact)
  default.example.net       pair "default"   (CN=default, the default_cert)
  custom.example.com        pair "custom", as a Kubernetes TLS Secret
                            directory (custom/tls.crt + custom/tls.key)
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "lib"))

import gwtest  # noqa: E402
from tlstest import APPS, PKI, TLSGateway  # noqa: E402


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
