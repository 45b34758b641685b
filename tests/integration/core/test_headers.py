"""Header rewriting: hop-by-hop, X-Forwarded-*, 100-continue, 1xx."""
import json
import socket

from gwtest import status_of


def app_headers(gw, extra=b""):
    resp = gw.raw(b"GET /echo HTTP/1.1\r\nHost: app.test\r\n" + extra + b"Connection: close\r\n\r\n")
    assert status_of(resp) == 200, resp[:300]
    info = json.loads(resp.split(b"\r\n\r\n", 1)[1])
    return info["headers"]


def names(headers):
    return [k.lower() for k, _ in headers]


def test_hop_by_hop_and_connection_listed_removed(gw):
    h = app_headers(gw, b"Connection: X-Secret, keep-alive\r\nX-Secret: s\r\nKeep-Alive: 5\r\n"
                        b"TE: trailers\r\nProxy-Authorization: Basic x\r\nUpgrade: foo\r\nX-Kept: k\r\n")
    n = names(h)
    for gone in ("x-secret", "keep-alive", "te", "proxy-authorization", "upgrade", "connection"):
        assert gone not in n, gone
    assert "x-kept" in n


def test_x_forwarded_from_untrusted_peer_replaced(gw):
    h = dict((k.lower(), v) for k, v in app_headers(
        gw, b"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\n"))
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-host"] == "app.test"


def test_x_forwarded_from_trusted_peer_appended(backend, make_gateway):
    gw = make_gateway({"app.test": [backend.addr]}, config="[gateway]\ntrusted_proxies = 127.0.0.0/8")
    h = dict((k.lower(), v) for k, v in app_headers(
        gw, b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n"))
    assert h["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert h["x-forwarded-proto"] == "https"


def test_response_hop_by_hop_stripped(gw):
    resp = gw.raw(b"GET /chunked/10 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    head = resp.split(b"\r\n\r\n", 1)[0].lower()
    assert b"trailer:" not in head  # hop-by-hop from the app
    assert head.count(b"transfer-encoding") == 1


def test_expect_100_continue(gw):
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
    first = s.recv(4096)
    assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first
    s.sendall(b"hello")
    rest = first[25:]
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    s.close()
    assert status_of(rest) == 200
    info = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert info["length"] == 5
    assert "expect" not in names(info["headers"])


def test_early_hints_then_final_response(gw):
    resp = gw.raw(b"GET /hints HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 103")
    assert b"HTTP/1.1 200" in resp
    assert resp.endswith(b"after hints\n")


def test_rfc7239_forwarded_dropped_from_untrusted_peer(gw):
    h = app_headers(gw, b"Forwarded: for=6.6.6.6;proto=https;host=evil.test\r\n")
    assert "forwarded" not in names(h)


def test_rfc7239_forwarded_kept_from_trusted_peer(backend, make_gateway):
    gw = make_gateway({"app.test": [backend.addr]}, config="[gateway]\ntrusted_proxies = 127.0.0.0/8")
    h = dict((k.lower(), v) for k, v in app_headers(gw, b"Forwarded: for=192.0.2.60\r\n"))
    assert h["forwarded"] == "for=192.0.2.60"


def test_expectation_other_than_100_continue_is_417(gw, backend):
    before = backend.stats()["requests"]
    for expect in (b"200-ok", b"100-continue, foo", b"nothing"):
        resp = gw.raw(b"POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n"
                      b"Expect: " + expect + b"\r\n\r\nhello")
        assert status_of(resp) == 417, (expect, resp[:200])
        assert resp.count(b"HTTP/1.1 ") == 1  # closed: the body was not read
    assert backend.stats()["requests"] == before + 1  # only the stats call
