"""Clients resetting their connection (RST, SO_LINGER 0) in the middle of an
upload, a download or a wait for the app, while other clients keep going:
the others see nothing, and the gateway lets go of everything the dead
exchange held (its upstream connection included), so its descriptor count
comes back to where it was."""
import os
import socket
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402
from faultload import Load, conns_from_clients, conns_to, read_until_close, rst_close  # noqa: E402

CONF = """
[client]
header_timeout = 2s
body_timeout = 3s
[upstream]
first_byte_timeout = 3s
connect_timeout = 1s
"""
ROUNDS = 10


def upload(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: victim.test\r\nContent-Length: 20000000\r\n\r\n")
    s.sendall(os.urandom(2_000_000))
    rst_close(s)


def download(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /bytes/30000000 HTTP/1.1\r\nHost: victim.test\r\n\r\n")
    _, how = read_until_close(s, limit=1_000_000)
    assert how == "limit", how
    rst_close(s)


def waiting(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /slow/1000 HTTP/1.1\r\nHost: victim.test\r\n\r\n")
    time.sleep(0.1)
    rst_close(s)


@pytest.mark.parametrize("reset", [upload, download, waiting])
def test_client_reset(backend, make_gateway, reset):
    victim = gwtest.Backend()
    try:
        g = make_gateway({"app.test": [backend.addr], "victim.test": [victim.addr]},
                         config=CONF)
        with Load(g.port, "app.test", threads=6) as load:
            load.wait_count(50)
            for _ in range(ROUNDS):
                reset(g.port)
            # The victim's app is served again at once, on a new exchange.
            r, body = g.request("GET", "/echo", "victim.test")
            assert r.status == 200
            # Left: the load's 6 client connections, and at most the one
            # pooled upstream connection of that last exchange.
            pid = g.proc.pid
            took = gwtest.wait_for(lambda: conns_to(pid, victim.port) <= 1
                                   and conns_from_clients(pid, g.port) <= 6,
                                   timeout=8, step=0.05)
            n_during = load.count()
        if reset is upload:
            # The app never saw a complete request: /echo and /stats only.
            assert victim.stats()["requests"] == 2
        assert n_during > 100
        assert load.bad() == [] and load.reconnects == 0, (load.bad()[:5], load.reconnects)
        print(f"{reset.__name__}: {ROUNDS} resets, dead exchanges' connections closed "
              f"within {took * 1000:.0f} ms; {n_during} load requests all 200")
        assert g.proc.poll() is None
    finally:
        victim.stop()
