"""TLS 1.2 and 1.3 only; min_version = 1.3 refuses 1.2; the cipher keys are
applied. A TLS 1.1 client is allowed to try (its own OpenSSL would refuse
at SECLEVEL 2, so the tests lower the client's level) and the gateway
refuses it."""
import ssl
import subprocess

import pytest

from tlstest import APPS

SNI = f"a.{APPS}"


def version_of(g, **kw):
    s = g.wrap(SNI, **kw)
    v = s.version()
    s.close()
    return v


def test_tls13_and_tls12_accepted(tgw):
    assert version_of(tgw) == "TLSv1.3"
    assert version_of(tgw, maximum=ssl.TLSVersion.TLSv1_2) == "TLSv1.2"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls11_refused_python(tgw):
    with pytest.raises(ssl.SSLError) as e:
        version_of(tgw, minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1,
                   ciphers="DEFAULT:@SECLEVEL=0")
    assert "VERSION" in str(e.value).upper()
    tgw.gw.stop()
    assert "handshake failed: unsupported protocol" in tgw.stderr()


def test_tls11_refused_openssl_cli(tgw):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{tgw.tls_port}",
                        "-servername", SNI, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
                       input=b"", capture_output=True, timeout=20)
    assert r.returncode != 0
    assert b"alert protocol version" in r.stdout + r.stderr
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{tgw.tls_port}",
                        "-servername", SNI, "-tls1_2", "-CAfile", tgw.ca,
                        "-verify_return_error"],
                       input=b"", capture_output=True, timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    assert b"Protocol  : TLSv1.2" in r.stdout


def test_min_version_13(backend, make_tls_gateway):
    g = make_tls_gateway({SNI: [backend.addr]}, config="min_version = 1.3\n")
    assert version_of(g) == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        version_of(g, maximum=ssl.TLSVersion.TLSv1_2)


def test_cipher_settings_are_applied(backend, make_tls_gateway):
    g = make_tls_gateway({SNI: [backend.addr]}, config=(
        "ciphers = ECDHE-ECDSA-CHACHA20-POLY1305\n"
        "ciphersuites = TLS_CHACHA20_POLY1305_SHA256\n"))
    s = g.wrap(SNI)
    assert s.cipher()[0] == "TLS_CHACHA20_POLY1305_SHA256"
    s.close()
    s = g.wrap(SNI, maximum=ssl.TLSVersion.TLSv1_2)
    assert s.cipher()[0] == "ECDHE-ECDSA-CHACHA20-POLY1305"
    s.close()
    # A TLS 1.2 client without that cipher has nothing in common.
    with pytest.raises(ssl.SSLError):
        g.wrap(SNI, maximum=ssl.TLSVersion.TLSv1_2,
               ciphers="ECDHE-ECDSA-AES128-GCM-SHA256").close()


def test_cbc_and_rsa_kx_not_offered_by_default(tgw):
    for cipher in ("ECDHE-ECDSA-AES128-SHA", "AES128-GCM-SHA256"):
        with pytest.raises(ssl.SSLError):
            tgw.wrap(SNI, maximum=ssl.TLSVersion.TLSv1_2, ciphers=cipher).close()
