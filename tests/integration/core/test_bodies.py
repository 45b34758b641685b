"""Bodies stream through intact in both directions, with every framing."""
import hashlib
import json
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
from backend import payload  # noqa: E402
from gwtest import status_of  # noqa: E402


def test_20mb_response_intact(gw):
    n = 20 * 1024 * 1024
    r, body = gw.request("GET", f"/bytes/{n}", "app.test", timeout=30)
    assert r.status == 200
    assert len(body) == n
    assert hashlib.sha256(body).digest() == hashlib.sha256(payload(n)).digest()


def test_5mb_chunked_upload_intact(gw):
    data = os.urandom(5 * 1024 * 1024)
    c = gw.connect(timeout=30)
    c.putrequest("POST", "/upload", skip_host=True)
    c.putheader("Host", "app.test")
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    for i in range(0, len(data), 100000):
        piece = data[i:i + 100000]
        c.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    info = json.loads(r.read())
    c.close()
    assert r.status == 200
    assert info["length"] == len(data)
    assert info["sha256"] == hashlib.sha256(data).hexdigest()


def test_content_length_upload_intact(gw):
    data = os.urandom(3 * 1024 * 1024 + 7)
    r, body = gw.request("POST", "/upload", "app.test", body=data, timeout=30)
    info = json.loads(body)
    assert info["sha256"] == hashlib.sha256(data).hexdigest()


def test_chunked_response_with_trailers(gw):
    n = 1_000_000
    resp = gw.raw(b"GET /chunked/%d HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n" % n,
                  timeout=20)
    head, _, rest = resp.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    body, trailers = b"", b""
    while True:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line, 16)
        if size == 0:
            trailers = rest
            break
        body += rest[:size]
        rest = rest[size + 2:]
    assert body == payload(n)
    assert b"X-Checksum: " + hashlib.sha256(body).hexdigest().encode() in trailers


def test_close_delimited_response(gw):
    n = 300_000
    resp = gw.raw(b"GET /close/%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % n, timeout=20)
    head, _, body = resp.partition(b"\r\n\r\n")
    assert status_of(resp) == 200
    assert b"connection: close" in head.lower()
    assert body == payload(n)


def test_head_has_no_body_and_keeps_connection(gw):
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    s.sendall(b"HEAD /bytes/1000 HTTP/1.1\r\nHost: app.test\r\n\r\n"
              b"GET /bytes/10 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    first, _, rest = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 1000" in first
    # The next response starts right after the HEAD response's head.
    assert rest.startswith(b"HTTP/1.1 200"), rest[:100]
    assert rest.endswith(payload(10))


def test_204_and_304_have_no_body(gw):
    resp = gw.raw(b"GET /status/204 HTTP/1.1\r\nHost: app.test\r\n\r\n"
                  b"GET /status/304 HTTP/1.1\r\nHost: app.test\r\n\r\n"
                  b"GET /bytes/5 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    assert resp.count(b"HTTP/1.1 ") == 3
    assert resp.startswith(b"HTTP/1.1 204")
    assert b"HTTP/1.1 304" in resp
    assert resp.endswith(payload(5))
