"""Timeouts and broken peers: precise statuses, nobody else hurt."""
import os
import socket
import threading
import time

from gwtest import free_port, status_of


def test_slowloris_cut_with_408_while_others_are_served(gw):
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: app.test\r\n")
    start = time.monotonic()
    served = []

    def normal():
        for _ in range(10):
            r, _ = gw.request("GET", "/echo", "app.test")
            served.append(r.status)
            time.sleep(0.05)

    t = threading.Thread(target=normal)
    t.start()
    # Dribble a header byte now and then: the whole-head deadline still hits.
    got = b""
    try:
        for _ in range(40):
            s.sendall(b"X")
            time.sleep(0.1)
    except OSError:
        pass
    s.settimeout(5)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    elapsed = time.monotonic() - start
    t.join(timeout=20)
    s.close()
    assert status_of(got) == 408, got
    assert elapsed < 6  # header_timeout is 2s in this config
    assert served == [200] * 10


def test_client_vanishing_mid_body_does_not_hurt_others(gw):
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1000000\r\n\r\n")
    s.sendall(os.urandom(500000))
    s.close()
    for _ in range(5):
        r, body = gw.request("GET", "/echo", "app.test")
        assert r.status == 200


def test_upstream_hang_gives_504(gw):
    start = time.monotonic()
    r, body = gw.request("GET", "/hang", "app.test")
    assert r.status == 504
    assert 1.5 < time.monotonic() - start < 6  # first_byte_timeout = 2s


def test_upstream_refused_gives_502(make_gateway):
    dead = free_port()
    gw = make_gateway({"dead.test": [f"127.0.0.1:{dead}"]})
    r, body = gw.request("GET", "/", "dead.test")
    assert r.status == 502
    assert b"127.0.0.1" not in body  # no internals in pages


def test_upstream_connect_timeout_gives_504(make_gateway):
    # A listening socket whose backlog is full never completes new connects.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(8):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    gw = make_gateway({"slow.test": [f"127.0.0.1:{port}"]}, config="[upstream]\nconnect_timeout = 500ms")
    start = time.monotonic()
    r, body = gw.request("GET", "/", "slow.test")
    elapsed = time.monotonic() - start
    for c in fillers:
        c.close()
    srv.close()
    assert r.status == 504
    assert elapsed < 5


def test_malformed_upstream_responses_give_502(gw):
    for name in ("two-cl", "cl-te", "bad-status", "split", "garbage"):
        r, body = gw.request("GET", f"/raw/{name}", "app.test")
        assert r.status == 502, name
    # The gateway and the app are still fine.
    r, body = gw.request("GET", "/echo", "app.test")
    assert r.status == 200


def test_oversized_head_gives_431(gw):
    big = b"X-Big: " + b"a" * 20000 + b"\r\n"
    resp = gw.raw(b"GET /echo HTTP/1.1\r\nHost: app.test\r\n" + big + b"\r\n")
    assert status_of(resp) == 431
    many = b"".join(b"X-%d: v\r\n" % i for i in range(150))
    resp = gw.raw(b"GET /echo HTTP/1.1\r\nHost: app.test\r\n" + many + b"\r\n")
    assert status_of(resp) == 431
