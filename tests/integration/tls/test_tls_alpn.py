"""ALPN: http/1.1 when offered; a client that offers only h2 gets no ALPN
(and speaks HTTP/1.1), not a failed handshake."""
import subprocess

from tlstest import APPS

SNI = f"a.{APPS}"


def test_h2_and_http11_offered_selects_http11(tgw):
    s = tgw.wrap(SNI, alpn=["h2", "http/1.1"])
    assert s.selected_alpn_protocol() == "http/1.1"
    s.close()


def test_only_h2_offered_gets_no_alpn_and_http11_works(tgw):
    ctx = tgw.context(alpn=["h2"])
    r, body, _ = tgw.https("GET", "/echo", SNI, ctx=ctx)
    assert r.status == 200 and r.version == 11
    s = tgw.wrap(SNI, ctx=ctx)
    assert s.selected_alpn_protocol() is None
    s.close()


def test_no_alpn_offered(tgw):
    s = tgw.wrap(SNI)
    assert s.selected_alpn_protocol() is None
    s.close()


def test_curl_http2_falls_back_to_http11(tgw):
    r = subprocess.run(["curl", "-sS", "--http2", "--cacert", tgw.ca, "--resolve",
                        f"{SNI}:{tgw.tls_port}:127.0.0.1", "-o", "/dev/null",
                        "-w", "%{http_version} %{http_code}",
                        f"https://{SNI}:{tgw.tls_port}/echo"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1.1 200"
