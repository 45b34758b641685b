"""Backends failing under concurrent load: killed mid-response, accepting
and never answering. The client aimed at gets a clean, bounded answer (a
504, or a truncated body followed by a close: never a hang and never a
body that looks complete); the clients of the healthy route see nothing."""
import os
import signal
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402
from faultload import Load, Silent, read_until_close  # noqa: E402

CONF = """
[client]
header_timeout = 2s
body_timeout = 3s
[upstream]
first_byte_timeout = 1s
connect_timeout = 1s
"""
BIG = 30_000_000


def dechunk(data):
    """-> (payload, complete) of a chunked body that may be cut short."""
    out, pos = bytearray(), 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return bytes(out), False
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return bytes(out), data.endswith(b"\r\n\r\n")
        out += data[end + 2:end + 2 + size]
        if len(data) < end + 2 + size + 2:
            return bytes(out), False
        pos = end + 2 + size + 2


@pytest.fixture
def victim():
    b = gwtest.Backend()
    yield b
    b.stop()


@pytest.mark.parametrize("path", [f"/bytes/{BIG}", f"/chunked/{BIG}"])
def test_backend_killed_mid_response(backend, victim, make_gateway, path):
    g = make_gateway({"app.test": [backend.addr], "victim.test": [victim.addr]}, config=CONF)
    with Load(g.port, "app.test", threads=6) as load:
        load.wait_count(30)
        s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: victim.test\r\n\r\n".encode())
        first, how = read_until_close(s, limit=1_000_000)
        assert how == "limit", how
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=5)
        t0 = time.monotonic()
        rest, how = read_until_close(s, timeout=10)
        took = time.monotonic() - t0
        s.close()
        time.sleep(0.3)
    data = first + rest
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert how in ("eof", "reset"), f"client left hanging ({how})"
    assert took < 8
    if b"Content-Length" in head:
        assert len(body) < BIG                      # visibly short, then closed
    else:
        payload, complete = dechunk(body)
        assert not complete, "a cut chunked body must not get its last chunk"
        assert len(payload) < BIG
    assert load.count() > 50
    assert load.bad() == [] and load.reconnects == 0, (load.bad()[:5], load.reconnects)
    print(f"{path}: {len(data)} bytes then {how} {took * 1000:.0f} ms after the kill; "
          f"{load.count()} load requests all 200")
    # The gateway forgot the dead exchange: nothing left open for it.
    gwtest.wait_for(lambda: g.request("GET", "/echo", "app.test")[0].status == 200)


def concurrent(n, fn):
    out = [None] * n

    def one(i):
        t0 = time.monotonic()
        try:
            out[i] = (fn(), time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - recorded, asserted below
            out[i] = (type(e).__name__, time.monotonic() - t0)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=30)
    return out


def test_backend_accepts_and_never_answers(backend, make_gateway):
    silent = Silent()
    try:
        g = make_gateway({"app.test": [backend.addr], "silent.test": [silent.addr]},
                         config=CONF)
        with Load(g.port, "app.test", threads=6) as load:
            load.wait_count(30)
            got = concurrent(8, lambda: g.request("GET", "/", "silent.test", timeout=15)[0].status)
        assert [s for s, _ in got] == [504] * 8, got
        assert max(t for _, t in got) < 5, got      # first_byte_timeout = 1s
        assert load.bad() == [] and load.reconnects == 0, (load.bad()[:5], load.reconnects)
        # Every upstream connection given up on is closed, none kept or leaked.
        gwtest.wait_for(lambda: silent.peers_closed() == len(silent.held) >= 8, timeout=5)
        print(f"8 x 504 after {min(t for _, t in got):.2f}-{max(t for _, t in got):.2f} s; "
              f"{load.count()} load requests all 200")
    finally:
        silent.stop()


def test_same_backend_hangs_some_requests_serves_others(backend, make_gateway):
    # /hang reads the request and never answers; /echo on the very same
    # backend keeps being served on the gateway's other pooled connections.
    g = make_gateway({"app.test": [backend.addr]}, config=CONF)
    with Load(g.port, "app.test", threads=6) as load:
        load.wait_count(30)
        got = concurrent(8, lambda: g.request("GET", "/hang", "app.test", timeout=15)[0].status)
    assert [s for s, _ in got] == [504] * 8, got
    assert max(t for _, t in got) < 5, got
    assert load.bad() == [] and load.reconnects == 0, (load.bad()[:5], load.reconnects)
