"""Process life: drain on SIGTERM, connection limit, workers, IPv6, -t,
access log."""
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from gwtest import GATEWAY_BIN, free_port, wait_port


def test_sigterm_drains_in_flight_request(gw):
    result = {}

    def slow():
        r, body = gw.request("GET", "/slow/1500", "app.test")
        result["status"] = r.status
        result["body"] = body

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.4)
    gw.proc.send_signal(signal.SIGTERM)
    # New connections are refused soon after the signal.
    time.sleep(0.3)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", gw.port), timeout=1)
    t.join(timeout=10)
    assert result.get("status") == 200
    assert result["body"] == b"slow done\n"
    assert gw.proc.wait(timeout=10) == 0


def test_max_connections_pauses_accept_without_crashing(backend, make_gateway):
    gw = make_gateway({"app.test": [backend.addr]}, config="[gateway]\nmax_connections = 2")
    a = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    b = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    time.sleep(0.2)
    c = socket.create_connection(("127.0.0.1", gw.port), timeout=5)  # sits in the backlog
    c.settimeout(1.0)
    c.sendall(b"GET /echo HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    with pytest.raises(socket.timeout):
        c.recv(100)
    a.close()
    c.settimeout(5)
    assert c.recv(100).startswith(b"HTTP/1.1 200")
    b.close()
    c.close()
    assert gw.proc.poll() is None


def test_two_workers_serve(backend, make_gateway):
    gw = make_gateway({"app.test": [backend.addr]}, workers=2)
    for _ in range(20):
        r, _ = gw.request("GET", "/echo", "app.test")
        assert r.status == 200
    out = subprocess.run(["pgrep", "-P", str(gw.proc.pid)], capture_output=True, text=True)
    assert len(out.stdout.split()) == 2


def test_ipv6_listener(backend, make_gateway):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = free_port("::1")
    gw = make_gateway({"app.test": [backend.addr]}, listen=[f"[::1]:{port}", "127.0.0.1:{port}"])
    s = socket.create_connection(("::1", port), timeout=5)
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 200")
    s.close()


def test_config_check_mode(tmp_path):
    good = tmp_path / "good.conf"
    good.write_text("[gateway]\nlisten = 127.0.0.1:9999\n[routes]\na.test = 127.0.0.1:1\n")
    r = subprocess.run([GATEWAY_BIN, "-t", "-c", str(good)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text("[gateway]\nlisten = 127.0.0.1:9999\n\n[client]\nheader_timeout = soon\n")
    r = subprocess.run([GATEWAY_BIN, "-t", "-c", str(bad)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert f"{bad}:5:" in r.stderr and "header_timeout" in r.stderr


def test_access_log_line(gw):
    gw.request("GET", "/echo?q=1", "app.test")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not gw.access_lines():
        time.sleep(0.05)
    line = gw.access_lines()[-1]
    assert re.match(r'^\S+Z 127\.0\.0\.1 app\.test "GET /echo\?q=1 HTTP/1\.1" 200 \d+ \d+ \d+$', line), line


def test_quick_mode_command_line(backend):
    port = free_port()
    p = subprocess.Popen([GATEWAY_BIN, "--listen", f"127.0.0.1:{port}", "--route",
                          f"app-demo.localhost={backend.addr}", "--access-log", "off"],
                         stderr=subprocess.PIPE)
    try:
        wait_port(port, proc=p)
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: app-demo.localhost\r\nConnection: close\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200")
        s.close()
    finally:
        p.terminate()
        assert p.wait(timeout=10) == 0
