"""10,000 idle client connections: held up to max_connections, the rest
left waiting in the listen backlog (not refused, not crashed on), a normal
request served meanwhile, and every idle one closed at header_timeout."""
import resource
import selectors
import socket
import time

import pytest

import gwtest

IDLE = 10000
HEADER_TIMEOUT_S = 20
MAX = IDLE + 10


@pytest.fixture
def nofile():
    """Room for 10,000 sockets here and in the gateway (which inherits the
    limit): raised to the hard limit for the test, restored after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE + 2000
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {want}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def paused(gw):
    m = gw.metrics()
    return next(v for k, v in m.items() if k.startswith("gateway_listener_paused"))


def connect(port):
    s = socket.socket()
    s.setblocking(True)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def test_ten_thousand_idle_connections(nofile, backend, make_gateway):
    gw = make_gateway({"app.test": [backend.addr]}, config=f"""
[gateway]
max_connections = {MAX}
[client]
header_timeout = {HEADER_TIMEOUT_S}s
""")
    r, _ = gw.request("GET", "/echo", "app.test")
    assert r.status == 200
    before = gwtest.rss_kib(gw.proc.pid)
    t0 = time.monotonic()
    idle = []
    opened = {}
    for _ in range(IDLE):
        s = connect(gw.port)
        opened[s.fileno()] = time.monotonic()
        idle.append(s)
    t_open = time.monotonic() - t0
    # All held by the gateway (accepted, each with its header_timeout).
    gwtest.wait_for(lambda: gw.metrics()["gateway_connections_open"] == IDLE, timeout=30,
                    step=0.2)
    after = gwtest.rss_kib(gw.proc.pid)
    assert paused(gw) == 0
    # A normal request is served while they are open.
    t1 = time.monotonic()
    r, body = gw.request("GET", "/echo", "app.test", timeout=10)
    normal_s = time.monotonic() - t1
    assert r.status == 200

    # Past max_connections: 10 more are taken in, the listener pauses,
    # and the other 10 wait in the listen backlog: connected (the kernel
    # completed the handshake) but unanswered. Accepting is FIFO: the last
    # ones opened are the waiting ones.
    extra = [connect(gw.port) for _ in range(20)]
    gwtest.wait_for(lambda: gw.metrics()["gateway_connections_open"] == MAX, timeout=10)
    assert paused(gw) == 1
    time.sleep(0.5)
    assert gw.metrics()["gateway_connections_open"] == MAX  # and no more
    last = extra[-1]
    last.sendall(b"GET /echo HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    last.settimeout(1.5)
    with pytest.raises(socket.timeout):
        last.recv(100)
    # Room again: the waiting ones are taken in, the request is served.
    for s in idle[:10]:
        s.close()
    idle = idle[10:]
    last.settimeout(10)
    assert gwtest.status_of(last.recv(100)) == 200
    for s in extra:
        s.close()
    gwtest.wait_for(lambda: paused(gw) == 0, timeout=10)

    # Every idle connection is closed by the gateway at header_timeout,
    # counted from its own accept; what the client gets is the end of the
    # stream (a 408 would have no request to answer).
    sel = selectors.DefaultSelector()
    for s in idle:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    early, seen, closed_at = [], {}, []
    end = time.monotonic() + HEADER_TIMEOUT_S + 30
    left = len(idle)
    while left and time.monotonic() < end:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                data = b"<reset>"
            if data and data != b"<reset>":
                seen[data[:12]] = seen.get(data[:12], 0) + 1
                continue  # a page first: its end comes next
            age = time.monotonic() - opened[s.fileno()]
            closed_at.append(age)
            if age < HEADER_TIMEOUT_S - 1:
                early.append(age)
            seen[data or b"<eof>"] = seen.get(data or b"<eof>", 0) + 1
            sel.unregister(s)
            s.close()
            left -= 1
    sel.close()
    for s in idle:
        s.close()
    print(f"\n{IDLE} idle connections opened in {t_open:.1f} s; gateway RSS "
          f"{before} -> {after} kB ({(after - before) * 1024 / IDLE:.0f} bytes per "
          f"connection); normal request while they were open: {normal_s * 1000:.0f} ms; "
          f"closed after {min(closed_at):.1f}-{max(closed_at):.1f} s: {seen}")
    assert left == 0, f"{left} idle connections still open {HEADER_TIMEOUT_S + 30}s on"
    assert not early, f"{len(early)} closed before header_timeout, first at {min(early):.1f}s"
    gwtest.wait_for(lambda: gw.metrics()["gateway_connections_open"] == 0, timeout=10)
    r, _ = gw.request("GET", "/echo", "app.test")
    assert r.status == 200


def test_kept_alive_connections_closed_at_keepalive_timeout(backend, make_gateway):
    """After a response, an idle kept-alive connection lives keepalive_timeout,
    counted from the end of its last response, and then just ends."""
    gw = make_gateway({"app.test": [backend.addr]}, config="""
[client]
keepalive_timeout = 3s
header_timeout = 30s
""")
    conns = []
    for _ in range(200):
        s = connect(gw.port)
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: app.test\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        head, _, body = data.partition(b"\r\n\r\n")
        n = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(body) < n:
            body += s.recv(4096)
        assert gwtest.status_of(data) == 200 and b"connection: close" not in head.lower()
        conns.append((s, time.monotonic()))
    sel = selectors.DefaultSelector()
    for s, t in conns:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, t)
    ages, stray = [], 0
    end = time.monotonic() + 20
    while len(ages) < len(conns) and time.monotonic() < end:
        for key, _ in sel.select(timeout=1):
            try:
                data = key.fileobj.recv(4096)
            except ConnectionResetError:
                data = b""
            if data:
                stray += 1  # nothing is owed: no page may come
                continue
            ages.append(time.monotonic() - key.data)
            sel.unregister(key.fileobj)
            key.fileobj.close()
    sel.close()
    for s, _ in conns:
        s.close()
    print(f"\nkeepalive_timeout 3s: 200 connections closed after "
          f"{min(ages):.2f}-{max(ages):.2f} s")
    assert len(ages) == len(conns) and stray == 0
    # The timer starts when the response is queued, a little before the
    # client has read it: a generous lower bound, far from header_timeout.
    assert min(ages) >= 2.0 and max(ages) < 13
