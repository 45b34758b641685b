"""The admin listener: /metrics moves with traffic, /healthz and /readyz,
and its small strict HTTP (methods, limits, timeouts, connection cap)."""
import re
import socket
import subprocess
import time

import pytest

import gwtest
from gwtest import free_port, parse_metrics, raw_exchange, status_of


def accepted(m):
    return sum(v for k, v in m.items()
               if k.startswith("gateway_listener_accepted_connections_total{"))


def test_metrics_count_accepted_connections(gw):
    before = gw.metrics()
    for _ in range(5):
        r, _ = gw.request("GET", "/echo", "app.test")   # one connection each
        assert r.status == 200
    after = gw.metrics()
    assert accepted(after) - accepted(before) == 5
    listener = f'gateway_listener_accepted_connections_total{{listener="127.0.0.1:{gw.port}"}}'
    assert listener in after
    assert after["gateway_connections_open"] == 0
    assert after['process_resident_memory_bytes{worker="0"}'] > 1_000_000
    assert after['process_open_fds{worker="0"}'] >= 4
    assert abs(after['process_start_time_seconds{worker="0"}'] - time.time()) < 600
    assert any(k.startswith("gateway_build_info{version=") for k in after)
    # the scrape itself is counted (before it is rendered)
    assert after['gateway_admin_requests_total{path="/metrics"}'] == 2


def test_exposition_format(gw):
    status, headers, body = gw.admin_get("/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert int(headers["Content-Length"]) == len(body.encode())
    seen_type = {}
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in seen_type, f"family {name} declared twice"
            seen_type[name] = kind
            if kind == "counter":
                assert name.endswith("_total"), name
        elif not line.startswith("#"):
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$', line)
            assert m, line
            name = m.group(1)
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in seen_type or family in seen_type, f"sample before its TYPE: {line}"
            float(m.group(3))
    assert seen_type["gateway_connections_open"] == "gauge"
    assert all(n.startswith(("gateway_", "process_")) for n in seen_type)


def test_open_connections_gauge(gw):
    socks = []
    try:
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: app.test\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 200")   # kept alive
            socks.append(s)
        assert gw.metrics()["gateway_connections_open"] == 3
    finally:
        for s in socks:
            s.close()
    gwtest.wait_for(lambda: gw.metrics()["gateway_connections_open"] == 0, timeout=5)


def test_healthz_and_readyz(gw):
    assert gw.admin_get("/healthz")[::2] == (200, "ok\n")
    assert gw.admin_get("/readyz")[::2] == (200, "ready\n")
    # a query string is fine (some scrapers add one)
    assert gw.admin_get("/metrics?x=1")[0] == 200


@pytest.mark.parametrize("request_bytes,status", [
    (b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 405),
    (b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", 404),
    (b"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"GET /metrics HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"GET /metrics HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"GET /healthz HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 70 + b"\r\n", 431),
])
def test_admin_http_is_strict(gw, request_bytes, status):
    resp = raw_exchange(gw.admin_port, request_bytes)
    assert status_of(resp) == status, resp[:300]
    assert b"Connection: close\r\n" in resp
    if status == 405:
        assert b"Allow: GET, HEAD\r\n" in resp
    # still serving afterwards
    assert gw.admin_get("/healthz")[0] == 200
    m = gw.metrics()
    if status in (404,):
        assert m['gateway_admin_requests_total{path="other"}'] == 1
    else:
        assert m["gateway_admin_rejected_requests_total"] >= 1


def test_head_has_no_body(gw):
    resp = raw_exchange(gw.admin_port, b"HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
    head, _, body = resp.partition(b"\r\n\r\n")
    assert status_of(resp) == 200
    assert int(re.search(rb"Content-Length: (\d+)", head).group(1)) > 100
    assert body == b""


def test_pipelined_extra_bytes_do_not_reset_the_answer(gw):
    # One request per connection; what follows is discarded, and the answer
    # still arrives whole (no RST from closing with unread input).
    resp = raw_exchange(gw.admin_port, b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
                        b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n" * 50)
    head, _, body = resp.partition(b"\r\n\r\n")
    assert status_of(resp) == 200
    assert len(body) == int(re.search(rb"Content-Length: (\d+)", head).group(1))


def test_slow_request_gets_408_and_idle_connection_is_closed(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]}, config="[admin]\ntimeout = 300ms\n"
                     f"listen = 127.0.0.1:{free_port()}")
    t0 = time.monotonic()
    resp = raw_exchange(g.admin_port, b"GET /metrics HTTP/1.1\r\nHost: a\r\n", timeout=5)
    assert status_of(resp) == 408
    assert time.monotonic() - t0 < 4
    s = socket.create_connection(("127.0.0.1", g.admin_port), timeout=5)
    t0 = time.monotonic()
    assert s.recv(100) == b""           # closed, nothing said
    assert time.monotonic() - t0 < 4
    s.close()
    assert g.metrics()["gateway_admin_rejected_requests_total"] == 2


def test_connection_cap_pauses_admin_accept(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]},
                     config=f"[admin]\nmax_connections = 2\nlisten = 127.0.0.1:{free_port()}")
    a = socket.create_connection(("127.0.0.1", g.admin_port), timeout=5)
    b = socket.create_connection(("127.0.0.1", g.admin_port), timeout=5)
    time.sleep(0.2)
    c = socket.create_connection(("127.0.0.1", g.admin_port), timeout=5)  # kernel backlog
    c.settimeout(0.8)
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(socket.timeout):
        c.recv(100)
    a.close()
    c.settimeout(5)
    assert c.recv(100).startswith(b"HTTP/1.1 200")
    b.close()
    c.close()
    # the proxy itself was never affected
    r, _ = g.request("GET", "/echo", "app.test")
    assert r.status == 200


def test_admin_can_be_turned_off(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]}, config="[admin]\nlisten =\n")
    assert g.admin_port is None
    r, _ = g.request("GET", "/echo", "app.test")
    assert r.status == 200
    assert "admin listener" not in g.stderr()


def test_admin_address_in_use_stops_start(tmp_path, backend):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    conf = tmp_path / "g.conf"
    conf.write_text(f"[gateway]\nlisten = 127.0.0.1:{free_port()}\n"
                    f"[admin]\nlisten = 127.0.0.1:{port}\n")
    try:
        for workers in ("1", "2"):
            r = subprocess.run([gwtest.GATEWAY_BIN, "-c", str(conf), "--workers", workers],
                               capture_output=True, text=True, timeout=10)
            assert r.returncode == 1
            assert f"cannot listen on admin address 127.0.0.1:{port}" in r.stderr
    finally:
        busy.close()


def test_readyz_draining_during_shutdown(gw):
    import threading
    done = {}

    def slow():
        r, _ = gw.request("GET", "/slow/1500", "app.test")
        done["status"] = r.status

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.4)
    gw.proc.send_signal(15)
    gwtest.wait_for(lambda: gw.admin_get("/readyz")[0] == 503, timeout=3)
    status, _, body = gw.admin_get("/readyz")
    assert body == "not ready: draining\n"
    assert gw.admin_get("/healthz")[0] == 200       # alive while draining
    assert gw.metrics()["gateway_draining"] == 1
    t.join(timeout=10)
    assert done.get("status") == 200


def test_quick_mode_has_no_admin_port_unless_asked(backend):
    """Quick mode (no -c) binds no admin port by default, so two quick
    gateways on one machine do not collide; --admin turns it on."""
    for admin in (None, f"127.0.0.1:{free_port()}"):
        port = free_port()
        argv = [gwtest.GATEWAY_BIN, "--listen", f"127.0.0.1:{port}", "--route",
                f"app-demo.localhost={backend.addr}", "--access-log", "off"]
        if admin:
            argv += ["--admin", admin]
        p = subprocess.Popen(argv, stderr=subprocess.PIPE)
        try:
            gwtest.wait_port(port, proc=p)
            out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
            mine = [l for l in out.splitlines() if f"pid={p.pid}," in l]
            assert len(mine) == (2 if admin else 1), mine
            if admin:
                host, aport = admin.split(":")
                s = socket.create_connection((host, int(aport)), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert s.recv(100).startswith(b"HTTP/1.1 200")
                s.close()
        finally:
            p.terminate()
            assert p.wait(timeout=10) == 0
