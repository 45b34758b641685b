"""What the app and the client see of TLS: X-Forwarded-Proto: https to the
app for TLS clients (http for plain ones; a trusted proxy's value is kept),
and the [tls] hsts header on HTTPS responses, the app's and the gateway's
own pages alike, never on plain HTTP."""
import json
import socket
import threading

from tlstest import APPS

HOST = f"a.{APPS}"
HSTS = "max-age=31536000; includeSubDomains"


def headers_seen(body):
    return {k.lower(): v for k, v in json.loads(body)["headers"]}


def test_x_forwarded_proto(tgw):
    r, body, _ = tgw.https("GET", "/echo", HOST, headers={"X-Forwarded-Proto": "http"})
    h = headers_seen(body)
    assert h["x-forwarded-proto"] == "https"  # an untrusted client's value is replaced
    assert h["x-forwarded-host"] == f"{HOST}:{tgw.tls_port}"
    r, body = tgw.request("GET", "/echo", HOST)
    assert headers_seen(body)["x-forwarded-proto"] == "http"


def test_trusted_proxy_keeps_its_proto(backend, make_tls_gateway):
    g = make_tls_gateway({HOST: [backend.addr]},
                         config="[gateway]\ntrusted_proxies = 127.0.0.1/32\n")
    r, body = g.request("GET", "/echo", HOST, headers={"X-Forwarded-Proto": "https"})
    assert headers_seen(body)["x-forwarded-proto"] == "https"


def test_hsts_on_https_only(backend, make_tls_gateway):
    g = make_tls_gateway({HOST: [backend.addr]}, config=f"hsts = {HSTS}\n")
    r, _, _ = g.https("GET", "/echo", HOST)
    assert r.getheader("Strict-Transport-Security") == HSTS
    r, _, _ = g.https("GET", "/", "default.example.net")  # the gateway's 404 page
    assert r.status == 404
    assert r.getheader("Strict-Transport-Security") == HSTS
    r, _ = g.request("GET", "/echo", HOST)
    assert r.getheader("Strict-Transport-Security") is None


def test_app_hsts_is_kept_and_not_doubled(make_tls_gateway):
    """An app that sets its own HSTS knows its host best: its value goes
    out alone."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                c.sendall(b"HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=5\r\n"
                          b"Content-Length: 2\r\nConnection: close\r\n\r\nok")
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        g = make_tls_gateway({HOST: [f"127.0.0.1:{srv.getsockname()[1]}"]},
                             config=f"hsts = {HSTS}\n")
        r, body, _ = g.https("GET", "/", HOST)
        assert body == b"ok"
        assert r.msg.get_all("Strict-Transport-Security") == ["max-age=5"]
    finally:
        srv.close()


def test_no_hsts_by_default(tgw):
    r, _, _ = tgw.https("GET", "/echo", HOST)
    assert r.getheader("Strict-Transport-Security") is None
