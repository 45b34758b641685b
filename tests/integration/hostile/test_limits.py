"""Header and body limits at their exact boundaries: one byte under is
served, one byte over gets 431 or 413, and nothing of a refused request
reaches the app. (tests/integration/core/test_failures.py has the coarse
431 cases: a 20 kB field, 150 fields at the defaults.)"""
import socket

import pytest

from gwtest import status_of

CONFIG = """
[client]
header_max_bytes = 4k
header_max_count = 20
body_max_bytes = 1k
header_timeout = 3s
body_timeout = 3s
"""


@pytest.fixture
def lgw(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]}, config=CONFIG)
    g.app_requests = AppRequests(backend)
    return g


def head_of(size, fields=()):
    """A GET head of exactly size bytes (padding in one X-Pad field)."""
    start = b"GET /echo HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n"
    start += b"".join(b"%s: v\r\n" % f for f in fields)
    pad = size - len(start) - len(b"X-Pad: \r\n\r\n")
    assert pad >= 0
    return start + b"X-Pad: " + b"p" * pad + b"\r\n\r\n"


class AppRequests:
    """Requests the app read whole, not counting the /stats calls made to
    ask it (each counts itself)."""

    def __init__(self, backend):
        self.backend = backend
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.backend.stats()["requests"] - self.calls


def test_head_of_exactly_header_max_bytes_is_served_one_more_is_431(lgw):
    before = lgw.app_requests()
    assert status_of(lgw.raw(head_of(4096))) == 200
    assert status_of(lgw.raw(head_of(4097))) == 431
    # A request line alone past the limit is the same 431 (not 414).
    long_target = b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: app.test\r\n\r\n"
    assert status_of(lgw.raw(long_target)) == 431
    # A head that never ends and grows past the limit: 431 as soon as the
    # limit is crossed, without waiting for the end of the head.
    s = socket.create_connection(("127.0.0.1", lgw.port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Endless: " + b"e" * 5000)
    assert status_of(s.recv(4096)) == 431
    s.close()
    assert lgw.app_requests() == before + 1


def test_exactly_header_max_count_fields_served_one_more_is_431(lgw):
    # Host, Connection, X-Pad and 17 more: 20 fields.
    fields = [b"X-F%d" % i for i in range(17)]
    assert status_of(lgw.raw(head_of(1000, fields))) == 200
    assert status_of(lgw.raw(head_of(1000, fields + [b"X-One-More"]))) == 431


def post(length_field, body, extra=b""):
    return (b"POST /echo HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n" + extra +
            length_field + b"\r\n\r\n" + body)


def chunked(payload, size=300):
    out = b""
    for i in range(0, len(payload), size):
        piece = payload[i:i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def test_content_length_at_body_max_bytes_served_one_more_is_413(lgw):
    before = lgw.app_requests()
    resp = lgw.raw(post(b"Content-Length: 1024", b"b" * 1024))
    assert status_of(resp) == 200
    assert b'"length": 1024' in resp
    resp = lgw.raw(post(b"Content-Length: 1025", b"b" * 1025))
    assert status_of(resp) == 413
    assert b"Connection: close" in resp.split(b"\r\n\r\n")[0]
    # Refused from the head alone: a client announcing 10 GB sends nothing.
    resp = lgw.raw(post(b"Content-Length: 10000000000", b""))
    assert status_of(resp) == 413
    assert lgw.app_requests() == before + 1
    assert "request body larger than body_max_bytes (413)" in lgw.stderr()


def test_expect_100_continue_past_the_limit_gets_413_and_no_100(lgw):
    s = socket.create_connection(("127.0.0.1", lgw.port), timeout=5)
    s.sendall(post(b"Content-Length: 4096", b"", b"Expect: 100-continue\r\n"))
    data = b""
    while True:
        got = s.recv(4096)
        if not got:
            break
        data += got
    s.close()
    assert status_of(data) == 413
    assert b"100 Continue" not in data


def test_chunked_body_at_the_limit_served_one_more_is_413(lgw):
    before = lgw.app_requests()
    resp = lgw.raw(post(b"Transfer-Encoding: chunked", chunked(b"c" * 1024)))
    assert status_of(resp) == 200
    assert b'"length": 1024' in resp
    resp = lgw.raw(post(b"Transfer-Encoding: chunked", chunked(b"c" * 1025)))
    assert status_of(resp) == 413
    # The app got the head and at most the allowed bytes, then a closed
    # connection: never a complete request.
    assert lgw.app_requests() == before + 1
    # The gateway is fine, and the next request is served.
    assert status_of(lgw.raw(post(b"Content-Length: 2", b"ok"))) == 200


def test_no_body_limit_by_default(gw):
    # body_max_bytes = 0 (the default): 3 MB go through.
    resp = gw.raw(post(b"Content-Length: 3000000", b"x" * 3000000), timeout=20)
    assert status_of(resp) == 200
    assert b'"length": 3000000' in resp
