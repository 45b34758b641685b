"""Routing by Host: normalisation, absolute-form precedence, errors."""
import json

from gwtest import status_of


def echo_host(gw, raw_request):
    resp = gw.raw(raw_request)
    assert status_of(resp) == 200, resp[:300]
    body = resp.split(b"\r\n\r\n", 1)[1]
    info = json.loads(body)
    return dict((k.lower(), v) for k, v in info["headers"])


def test_host_case_port_and_trailing_dot_are_normalised(gw):
    for host in ("app.test", "APP.Test", "app.test:8080", "app.test.", "App.Test.:80"):
        r, body = gw.request("GET", "/echo", host)
        assert r.status == 200, (host, body)
        info = json.loads(body)
        # The app sees the Host the client sent.
        assert dict((k.lower(), v) for k, v in info["headers"])["host"] == host


def test_unknown_host_is_404_text_or_html(gw):
    r, body = gw.request("GET", "/", "other.test")
    assert r.status == 404
    assert r.getheader("Content-Type").startswith("text/plain")
    r, body = gw.request("GET", "/", "other.test", headers={"Accept": "text/html,*/*"})
    assert r.status == 404
    assert r.getheader("Content-Type").startswith("text/html")
    assert b"<html" in body


def test_absolute_form_target_wins_over_host(gw):
    h = echo_host(gw, b"GET http://app.test/echo?x=1 HTTP/1.1\r\nHost: other.test\r\n"
                      b"Connection: close\r\n\r\n")
    # RFC 9112 3.2.2: the target's authority replaces Host.
    assert h["host"] == "app.test"
    resp = gw.raw(b"GET http://other.test/echo HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    assert status_of(resp) == 404


def test_absolute_form_sends_origin_form_upstream(gw):
    resp = gw.raw(b"GET http://app.test/echo?q=1 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    info = json.loads(resp.split(b"\r\n\r\n", 1)[1])
    assert info["path"] == "/echo?q=1"


def test_missing_host_is_400(gw, backend):
    before = backend.stats()["requests"]
    resp = gw.raw(b"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status_of(resp) == 400
    assert backend.stats()["requests"] == before + 1  # only the stats call


def test_duplicate_host_is_400(gw):
    resp = gw.raw(b"GET /echo HTTP/1.1\r\nHost: app.test\r\nHost: other.test\r\n\r\n")
    assert status_of(resp) == 400
    resp = gw.raw(b"GET /echo HTTP/1.1\r\nHost: app.test\r\nHost: app.test\r\n\r\n")
    assert status_of(resp) == 400


def test_bad_host_values_are_400(gw):
    for host in (b"app.test:0", b"app.test:99999", b"user@app.test", b"app..test", b"ap p.test",
                 b"app.test:", b"[::1"):
        resp = gw.raw(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        assert status_of(resp) == 400, host


def test_asterisk_form_only_for_options(gw, backend):
    before = backend.stats()["requests"]
    for method in (b"GET", b"POST", b"HEAD"):
        resp = gw.raw(method + b" * HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\n\r\n")
        assert status_of(resp) == 400, (method, resp[:200])
    assert backend.stats()["requests"] == before + 1  # only the stats call
    resp = gw.raw(b"OPTIONS * HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    assert status_of(resp) == 200
    assert json.loads(resp.split(b"\r\n\r\n", 1)[1])["path"] == "*"


def test_host_with_an_empty_last_label_is_400(gw):
    for host in (b"app.test..", b"app.test..:80", b"app..test."):
        resp = gw.raw(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        assert status_of(resp) == 400, (host, resp[:200])
