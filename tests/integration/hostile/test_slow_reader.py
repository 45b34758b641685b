"""Clients that do not read their responses: the gateway's memory stays
near buffer_size per connection (backpressure reaches the app), and a
client silent for send_timeout is cut off, its app connection with it."""
import os
import socket
import threading
import time

import pytest

import gwtest

BODY = 50 * 1024 * 1024  # what each response would be
PIECE = b"s" * 65536


class StreamingApp:
    """An app streaming BODY bytes to every request, as fast as the gateway
    takes them; counts what each connection managed to send."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sent = {}     # connection number -> bytes of body sent
        self.closed = {}   # connection number -> how its sending ended
        self.lock = threading.Lock()
        self.stop = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        n = 0
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            n += 1
            threading.Thread(target=self.serve, args=(c, n), daemon=True).start()

    def serve(self, c, n):
        c.settimeout(1.0)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                got = c.recv(4096)
                if not got:
                    return
                head += got
            with self.lock:
                self.sent[n] = 0
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BODY)
            left = BODY
            while left and not self.stop.is_set():
                try:
                    k = c.send(PIECE[:min(left, len(PIECE))])
                except socket.timeout:
                    continue  # the gateway does not read: wait
                left -= k
                with self.lock:
                    self.sent[n] += k
            end = "complete" if not left else "stopped"
        except OSError as e:
            end = type(e).__name__
        finally:
            c.close()
        with self.lock:
            self.closed[n] = end

    def total(self):
        with self.lock:
            return sum(self.sent.values())

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.fixture
def app():
    a = StreamingApp()
    yield a
    a.close()


def tcp_max(name):
    with open(f"/proc/sys/net/ipv4/{name}") as f:
        return int(f.read().split()[2])


def slow_reader(port):
    """A client that asks for the stream and never reads (small receive
    buffer, so the kernel holds little on its side)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /stream HTTP/1.1\r\nHost: app.test\r\n\r\n")
    return s


def wait_still(app, quiet=1.5, timeout=30):
    """Until the app has sent nothing more for quiet seconds."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = app.total()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
        time.sleep(0.1)
    raise AssertionError("the app never stopped sending: no backpressure")


N = 50


def test_fifty_slow_readers_pin_about_a_buffer_each(app, make_gateway):
    # Under ASan, freed memory sits in its quarantine (256 MB by default)
    # and would count as growth: a small one here, so RSS measures what
    # the gateway holds (no effect on other builds).
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4"
    gw = make_gateway({"app.test": [app.addr]}, env=env, config="""
[client]
send_timeout = 60s
buffer_size = 64k
[upstream]
read_timeout = 60s
""")
    # Warm the gateway (allocator, pools, first-request paths) first.
    warm = slow_reader(gw.port)
    warm.settimeout(10)
    got = 0
    while got < 1024 * 1024:
        got += len(warm.recv(65536))
    warm.close()
    time.sleep(0.5)
    before = gwtest.rss_kib(gw.proc.pid, children=True)
    clients = [slow_reader(gw.port) for _ in range(N)]
    try:
        check_bounded(gw, app, before)
    finally:
        for c in clients:
            c.close()
    gwtest.wait_for(lambda: gw.metrics()["gateway_connections_open"] == 0, timeout=10)


def check_bounded(gw, app, before):
    gwtest.wait_for(lambda: len(app.sent) == N + 1, timeout=20)
    sent = wait_still(app)
    after = gwtest.rss_kib(gw.proc.pid, children=True)
    growth_mb = (after - before) / 1024
    per_conn_sent = [app.sent[k] for k in app.sent if k != 1]
    print(f"\nslow readers: {N}, gateway RSS {before} kB -> {after} kB "
          f"(+{growth_mb:.1f} MB, {(after - before) / N:.0f} kB per connection); "
          f"app sent {sent / 2**20:.1f} MB in all, at most "
          f"{max(per_conn_sent) / 2**20:.2f} MB on one connection, of {BODY / 2**20:.0f} MB")
    # Without backpressure the gateway would hold up to 50 x 50 MB. What it
    # holds per connection is its buffers (about 2 x buffer_size); the rest
    # of what the app sent sits in kernel socket buffers, not in the
    # gateway. 1 MB per connection is a generous bound on both.
    assert growth_mb < N * 1.0, f"gateway grew {growth_mb:.1f} MB for {N} slow readers"
    # And the app is held back: what one connection got out is at most what
    # the kernel buffers on the way hold (the gateway's receive buffer and
    # the app's send buffer, autotuned up to their maxima) plus the
    # gateway's own buffers.
    kernel = tcp_max("tcp_rmem") + tcp_max("tcp_wmem")
    assert max(per_conn_sent) <= kernel + 4 * 65536, (max(per_conn_sent), kernel)
    assert max(per_conn_sent) < BODY
    # Others are served meanwhile.
    r, body = gw.request("GET", "/stream", "app.test", timeout=20)
    assert r.status == 200 and len(body) == BODY


def test_slow_reader_is_cut_at_send_timeout_with_its_app_connection(app, make_gateway):
    gw = make_gateway({"app.test": [app.addr]}, config="""
[client]
send_timeout = 2s
[upstream]
read_timeout = 60s
""")
    clients = [slow_reader(gw.port) for _ in range(5)]
    gwtest.wait_for(lambda: len(app.sent) == 5, timeout=10)
    start = time.monotonic()
    # The gateway gives up on each client after 2 s of no progress, and
    # closes the app's connection: the app's send fails.
    gwtest.wait_for(lambda: len(app.closed) == 5, timeout=15)
    took = time.monotonic() - start
    assert all(v != "complete" for v in app.closed.values()), app.closed
    # What each client then sees: the bytes that were in flight, and the end
    # of the connection (EOF or a reset), well short of the body.
    for c in clients:
        got, end = 0, None
        c.settimeout(5)
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    end = "eof"
                    break
                got += len(b)
        except ConnectionResetError:
            end = "reset"
        c.close()
        assert end in ("eof", "reset") and got < BODY, (end, got)
    print(f"\nsend_timeout 2s: app connections closed {took:.1f} s after the stall")
    assert gw.metrics()["gateway_connections_open"] == 0
    assert "Traceback" not in gw.stderr()


def test_pipelining_client_that_never_reads_pins_no_memory(backend, make_gateway):
    """The same for the gateway's own answers: a client pipelining requests
    for an unknown host without reading a single 404 is stopped being read
    once buffer_size of pages waits, and is answered in full, in order,
    once it reads."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4"
    # keepalive_requests would end the connection after 1000 answers.
    gw = make_gateway({"app.test": [backend.addr]}, env=env, config="""
[client]
send_timeout = 30s
keepalive_requests = 1000000
[log]
level = warn
""")
    req = b"GET /x HTTP/1.1\r\nHost: nobody.test\r\n\r\n"
    before = gwtest.rss_kib(gw.proc.pid, children=True)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", gw.port))
    s.setblocking(False)
    data = req * 1000
    sent, stalled_since = 0, None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            sent += s.send(data[sent % len(data):])  # the stream stays whole
            stalled_since = None
        except BlockingIOError:
            if stalled_since is None:
                stalled_since = time.monotonic()
            elif time.monotonic() - stalled_since > 1.5:
                break  # the gateway stopped reading us
            time.sleep(0.05)
    assert stalled_since is not None, "the gateway read everything: no backpressure"
    after = gwtest.rss_kib(gw.proc.pid, children=True)
    print(f"\npipelined without reading: {sent // len(req)} requests "
          f"({sent / 2**20:.1f} MB) taken before the gateway stopped reading; RSS "
          f"{before} -> {after} kB")
    assert (after - before) / 1024 < 16
    # Reading now: every complete request sent is answered with its 404.
    s.setblocking(True)
    s.settimeout(10)
    s.shutdown(socket.SHUT_WR)
    got = bytearray()
    while True:
        try:
            b = s.recv(1 << 20)
        except socket.timeout:
            break
        if not b:
            break
        got += b
    s.close()
    assert bytes(got).count(b"HTTP/1.1 404 ") == sent // len(req), bytes(got[-300:])
