"""A TLS slowloris cannot hold slots: a handshake must complete within
handshake_timeout of the accept, and at most max_handshakes run at once
per worker (a newcomer displaces the oldest). Garbage and plain HTTP on the
TLS port fail the handshake, are logged, and harm nobody else."""
import socket
import ssl
import time

from tlstest import APPS

HOST = f"a.{APPS}"


def client_hello(sni=HOST):
    """The first flight of a real client, as bytes."""
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def closed_after(s, limit):
    """Seconds until the peer closes s (EOF or reset), or None."""
    s.settimeout(limit)
    t0 = time.monotonic()
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return None
    return time.monotonic() - t0


def test_silent_and_half_hello_clients_are_closed_after_the_timeout(backend, make_tls_gateway):
    g = make_tls_gateway({HOST: [backend.addr]}, config="handshake_timeout = 1s\n")
    silent = socket.create_connection(("127.0.0.1", g.tls_port))
    half = socket.create_connection(("127.0.0.1", g.tls_port))
    hello = client_hello()
    half.sendall(hello[:len(hello) // 2])
    t0 = time.monotonic()
    # meanwhile a real client is served
    r, body, cn = g.https("GET", "/echo", HOST)
    assert r.status == 200 and cn == "wildcard"
    for s in (silent, half):
        took = closed_after(s, 15)
        assert took is not None, "a stalled handshake was never closed"
        assert time.monotonic() - t0 >= 0.8  # not before the timeout
        s.close()
    g.gw.stop()
    assert g.stderr().count("handshake failed: timed out") == 2


def test_max_handshakes_oldest_is_displaced(backend, make_tls_gateway):
    g = make_tls_gateway({HOST: [backend.addr]},
                         config="handshake_timeout = 60s\nmax_handshakes = 4\n")
    idle = [socket.create_connection(("127.0.0.1", g.tls_port)) for _ in range(12)]
    # the gateway accepts them in order; all but the last 4 get displaced
    closed = [closed_after(s, 5) for s in idle[:8]]
    assert all(c is not None for c in closed), closed
    # a real client still gets through (displacing one more idle one)
    r, _, _ = g.https("GET", "/echo", HOST)
    assert r.status == 200
    assert closed_after(idle[8], 5) is not None
    for s in idle[9:]:  # the newest ones are still waiting, within their time
        s.setblocking(False)
        try:
            assert s.recv(1) == b"x", "closed too early"
        except BlockingIOError:
            pass
        s.close()
    for s in idle[:9]:
        s.close()
    assert "dropped for a newer one (max_handshakes)" in g.stderr()


def test_plain_http_and_garbage_on_the_tls_port(tgw):
    for data in (f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode(), b"\x16\x03\x01\xff\xff" +
                 b"\x00" * 64, b"\x00" * 300):
        s = socket.create_connection(("127.0.0.1", tgw.tls_port), timeout=10)
        s.sendall(data)
        assert closed_after(s, 10) is not None
        s.close()
    r, _, _ = tgw.https("GET", "/echo", HOST)
    assert r.status == 200
    tgw.gw.stop()
    err = tgw.stderr()
    assert "handshake failed: http request" in err
    assert err.count("handshake failed:") >= 3


def test_handshake_failures_are_rate_limited(tgw):
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", tgw.tls_port), timeout=10)
        s.sendall(b"\x00" * 64)
        closed_after(s, 10)
        s.close()
    tgw.gw.stop()
    lines = tgw.stderr().count("handshake failed:")
    assert 1 <= lines <= 10, lines


def test_handshakes_count_toward_max_connections(backend, make_tls_gateway):
    """Sockets still in their handshake hold descriptors: they count."""
    g = make_tls_gateway({HOST: [backend.addr]},
                         config="handshake_timeout = 2s\n[gateway]\nmax_connections = 3\n")
    idle = [socket.create_connection(("127.0.0.1", g.tls_port)) for _ in range(3)]
    time.sleep(0.3)
    # at the limit the worker stops accepting: the next connect waits in
    # the backlog, and is served once the idle handshakes time out
    t0 = time.monotonic()
    r, _, _ = g.https("GET", "/echo", HOST, timeout=20)
    assert r.status == 200
    assert time.monotonic() - t0 >= 1.0
    for s in idle:
        s.close()
