"""SNI chooses the certificate: exact name, then the wildcard one label up,
then default_cert; without a default an unknown name is refused. Checked by
real clients verifying against the test CA."""
import ssl
import subprocess

import pytest

from tlstest import APPS


@pytest.mark.parametrize("sni,cn", [
    (f"app-exact.{APPS}", "exact"),          # exact beats the wildcard
    (f"a.{APPS}", "wildcard"),               # one label under the wildcard
    (f"APP-Exact.{APPS.upper()}", "exact"),  # names are case-insensitive
    ("custom.example.com", "custom"),        # Kubernetes Secret layout
    ("default.example.net", "default"),
])
def test_python_client_gets_the_right_certificate(tgw, sni, cn):
    r, body, peer = tgw.https("GET", "/echo", sni)
    assert r.status == 200
    assert peer == cn


@pytest.mark.parametrize("sni", ["unknown.example.com", f"x.y.{APPS}", APPS])
def test_unknown_names_get_the_default(tgw, sni):
    """The wildcard covers exactly one label: not the bare domain, not two
    labels. Those get the default certificate, which a verifying client
    rejects for the name."""
    ctx = tgw.context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = tgw.wrap(sni, ctx=ctx)
    der = s.getpeercert(binary_form=True)
    s.close()
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
                         input=der, capture_output=True, timeout=10).stdout
    assert b"CN = default" in out
    with pytest.raises(ssl.SSLCertVerificationError):
        tgw.wrap(sni).close()


def test_no_sni_gets_the_default(tgw):
    ctx = tgw.context()
    ctx.check_hostname = False
    s = tgw.wrap(None, ctx=ctx)
    from tlstest import peer_cn
    assert peer_cn(s) == "default"
    s.close()


def test_curl_verifies_exact_and_wildcard(tgw):
    for name, cn in ((f"app-exact.{APPS}", "exact"), (f"b.{APPS}", "wildcard")):
        r = subprocess.run(
            ["curl", "-sS", "-v", "--cacert", tgw.ca, "--resolve",
             f"{name}:{tgw.tls_port}:127.0.0.1", f"https://{name}:{tgw.tls_port}/echo",
             "-H", f"Host: a.{APPS}"],
            capture_output=True, timeout=20, text=True)
        assert r.returncode == 0, r.stderr
        assert f"CN={cn}" in r.stderr
        assert '"path": "/echo"' in r.stdout


def test_without_default_unknown_names_are_refused(backend, make_tls_gateway):
    g = make_tls_gateway({f"a.{APPS}": [backend.addr]}, default_cert=None)
    r, _, cn = g.https("GET", "/echo", f"a.{APPS}")
    assert r.status == 200 and cn == "wildcard"
    with pytest.raises(ssl.SSLError) as e:
        g.wrap("unknown.example.com").close()
    assert "UNRECOGNIZED_NAME" in str(e.value).upper()
    ctx = g.context()
    ctx.check_hostname = False
    with pytest.raises(ssl.SSLError):
        g.wrap(None, ctx=ctx).close()
    g.gw.stop()
    err = g.stderr()
    assert "handshake failed: no certificate for 'unknown.example.com'" in err
    assert "no SNI and no default_cert" in err
