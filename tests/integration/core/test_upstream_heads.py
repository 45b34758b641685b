"""Response heads from untrusted apps: a stream of 1xx interim responses is
capped and paced by the client, and first_byte_timeout is a deadline for the
whole final head (neither dribbled bytes nor 1xx heads extend it)."""
import socket
import time

import pytest

import gwtest
from gwtest import status_of
from rawapp import RawApp

EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"


@pytest.fixture
def app_gw(make_gateway):
    apps = []

    def make(handler, config=""):
        app = RawApp(handler)
        apps.append(app)
        gw = make_gateway({"app.test": [app.addr]}, config=config or """
[upstream]
first_byte_timeout = 2s
""")
        return app, gw

    yield make
    for a in apps:
        a.stop()


def read_all(s, timeout=10):
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    return out


def test_interim_flood_is_capped_while_the_client_does_not_read(app_gw):
    sent = []

    def flood(app, conn):
        conn.read_head()
        n = 0
        try:
            while n < 200 * 1024 * 1024 and not app.stopped:
                conn.send(EARLY_HINTS * 256)
                n += len(EARLY_HINTS) * 256
        finally:
            sent.append(n)

    app, gw = app_gw(flood)
    before = gwtest.rss_kib(gw.proc.pid)
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
    time.sleep(3)  # not reading
    grown = gwtest.rss_kib(gw.proc.pid) - before
    assert grown < 20 * 1024, f"gateway grew by {grown} KiB"
    got = read_all(s)
    s.close()
    # Some early hints got through, then the exchange failed cleanly.
    assert got.startswith(b"HTTP/1.1 103 Early Hints\r\n")
    last = got.rsplit(b"HTTP/1.1 ", 1)[1]
    assert last.startswith(b"502 "), got[-300:]
    assert got.count(b"HTTP/1.1 103") * len(EARLY_HINTS) <= 64 * 1024
    # The app was cut off long before it had sent everything.
    for _ in range(50):
        if sent:
            break
        time.sleep(0.1)
    assert sent and sent[0] < 32 * 1024 * 1024, sent
    assert "interim (1xx) responses over header_max_bytes" in gw.stderr()


def test_dribbled_status_line_gets_504_at_the_deadline(app_gw):
    def dribble(app, conn):
        conn.read_head()
        for b in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
            if app.stopped:
                return
            conn.send(bytes([b]))
            time.sleep(0.25)

    app, gw = app_gw(dribble)
    start = time.monotonic()
    r, body = gw.request("GET", "/", "app.test", timeout=20)
    elapsed = time.monotonic() - start
    assert r.status == 504
    assert 1.5 < elapsed < 7  # first_byte_timeout = 2s; the dribble takes 10s


def test_interim_responses_do_not_extend_the_deadline(app_gw):
    def slow_hints(app, conn):
        conn.read_head()
        for _ in range(40):
            if app.stopped:
                return
            conn.send(EARLY_HINTS)
            time.sleep(0.5)

    app, gw = app_gw(slow_hints)
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=20)
    start = time.monotonic()
    s.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    got = read_all(s, timeout=20)
    elapsed = time.monotonic() - start
    s.close()
    assert got.startswith(b"HTTP/1.1 103")
    assert got.rsplit(b"HTTP/1.1 ", 1)[1].startswith(b"504 "), got[-200:]
    assert elapsed < 7


def test_stale_pooled_connection_retry_only_for_idempotent_requests(app_gw):
    """The app closes its first connection after reading a second request
    on it, without answering: the keep-alive race, or a crash after acting
    on the request; the gateway cannot tell which."""
    def racy(app, conn):
        while True:
            head = conn.read_head()
            if head is None:
                return
            line = head.split(b"\r\n", 1)[0].decode()
            with app.lock:
                app.log.append((conn.number, line))
                nth = sum(1 for c, _ in app.log if c == conn.number)
            if conn.number == 1 and nth == 2:
                return  # read it, then drop the connection
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    for method, want_status, want_seen in (("GET", 200, 2), ("DELETE", 200, 2),
                                           ("POST", 502, 1), ("PATCH", 502, 1)):
        app, gw = app_gw(racy)
        c = gw.connect()
        c.request("GET", "/first", headers={"Host": "app.test"})
        assert c.getresponse().read() == b"ok"
        c.request(method, "/second", body=b"" if method in ("POST", "PATCH") else None,
                  headers={"Host": "app.test"})
        r = c.getresponse()
        r.read()
        c.close()
        seen = [line for _, line in app.log if "/second" in line]
        assert r.status == want_status, (method, r.status)
        assert len(seen) == want_seen, (method, app.log)


def test_request_trailers_never_reach_the_app(app_gw):
    def record(app, conn):
        head = conn.read_head()
        body = conn.read_until(b"\r\n0\r\n")
        while True:  # trailer lines, up to the empty one
            line = conn.read_until(b"\r\n")
            body += line
            if line in (b"\r\n", b""):
                break
        with app.lock:
            app.log.append(head + body)
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    app, gw = app_gw(record)
    resp = gw.raw(b"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n"
                  b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 40\r\n"
                  b"X-Trailer: t\r\n\r\n")
    assert status_of(resp) == 200, resp
    seen = app.log[0]
    assert seen.endswith(b"5\r\nhello\r\n0\r\n\r\n"), seen
    assert b"Content-Length: 40" not in seen and b"X-Trailer" not in seen
