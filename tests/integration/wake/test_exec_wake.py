"""Scale to zero with the exec provider: wake on demand, hold, limits, idle stop."""
import os
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402

HOST = "app-cold0001.localhost"


def app_gateway(make_gateway, tmp_path, command=None, **activator):
    """A gateway whose only app is started on demand; returns (gw, starts_file, port)."""
    port = gwtest.free_port()
    starts = tmp_path / "starts.log"
    if command is None:
        # a script, so that the config line stays short whatever the paths
        script = tmp_path / "app.sh"
        script.write_text(f"echo start >> {starts}\n"
                          f"exec {gwtest.PYTHON} {gwtest.BACKEND} --port $PORT\n")
        command = f"exec sh {script}"
    act = "\n".join(f"{k} = {v}" for k, v in activator.items())
    g = make_gateway({}, config=f"""
[activator]
{act}
stop_grace = 2s
[exec]
{HOST} = 127.0.0.1:{port} {command}
""")
    return g, starts, port


def starts_of(path):
    try:
        return path.read_text().count("start")
    except FileNotFoundError:
        return 0


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def test_cold_request_is_served_after_wake(make_gateway, tmp_path):
    g, starts, port = app_gateway(make_gateway, tmp_path)
    assert not listening(port)                 # asleep until someone comes
    r, body = g.request("GET", "/echo", HOST, timeout=10)
    assert r.status == 200
    assert r.getheader("X-Cold-Start", "").endswith("ms")
    r, body = g.request("GET", "/echo", HOST)
    assert r.status == 200 and r.getheader("X-Cold-Start") is None  # warm now
    assert starts_of(starts) == 1
    assert "ready after" in g.stderr()


def test_thousand_concurrent_cold_requests_one_start(make_gateway, tmp_path):
    g, starts, port = app_gateway(make_gateway, tmp_path)
    gwtest.check_echoes(gwtest.concurrent_gets(g.port, HOST, 1000), 1000)
    assert starts_of(starts) == 1              # single flight


def test_hold_timeout_gives_503_retry_after(make_gateway, tmp_path):
    g, starts, port = app_gateway(make_gateway, tmp_path, command="exec sleep 30",
                                  hold_timeout="500ms")
    t0 = time.monotonic()
    r, body = g.request("GET", "/", HOST, timeout=10)
    waited = time.monotonic() - t0
    assert r.status == 503 and r.getheader("Retry-After")
    assert waited < 5                          # bounded by hold_timeout, not a hang


def test_queue_full_gives_503_at_once(make_gateway, tmp_path):
    g, starts, port = app_gateway(make_gateway, tmp_path, command="exec sleep 30",
                                  hold_timeout="3s", hold_max_per_project="2")
    held = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
        s.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        held.append(s)
    time.sleep(0.3)
    t0 = time.monotonic()
    r, _ = g.request("GET", "/", HOST, timeout=10)
    assert r.status == 503 and r.getheader("Retry-After")
    assert time.monotonic() - t0 < 1.5        # not held: rejected at once
    for s in held:                            # the held ones time out cleanly
        s.settimeout(10)
        assert gwtest.status_of(s.recv(4096)) == 503
        s.close()


def test_app_that_fails_to_start(make_gateway, tmp_path):
    g, starts, port = app_gateway(make_gateway, tmp_path, command="exit 3",
                                  hold_timeout="5s")
    t0 = time.monotonic()
    r, _ = g.request("GET", "/", HOST, timeout=10)
    assert r.status == 503
    assert time.monotonic() - t0 < 3          # no need to wait for the timeout
    assert "app exited" in g.stderr()


def test_idle_app_is_stopped_and_woken_again(make_gateway, tmp_path):
    g, starts, port = app_gateway(make_gateway, tmp_path, idle_timeout="1s")
    assert g.request("GET", "/echo", HOST)[0].status == 200
    assert listening(port)
    gwtest.wait_for(lambda: not listening(port), timeout=6)
    r, _ = g.request("GET", "/echo", HOST, timeout=10)
    assert r.status == 200 and r.getheader("X-Cold-Start")
    assert starts_of(starts) == 2


def test_post_body_survives_the_hold(make_gateway, tmp_path):
    g, starts, port = app_gateway(make_gateway, tmp_path)
    data = os.urandom(300_000)
    r, body = g.request("POST", "/upload", HOST, body=data, timeout=10)
    import hashlib
    import json
    assert r.status == 200
    assert json.loads(body)["sha256"] == hashlib.sha256(data).hexdigest()


def test_websocket_to_cold_app_keeps_it_awake(make_gateway, tmp_path):
    websocket = pytest.importorskip("websocket")
    g, starts, port = app_gateway(make_gateway, tmp_path, idle_timeout="1s")
    ws = websocket.create_connection(f"ws://127.0.0.1:{g.port}/ws", host=HOST, timeout=10)
    try:
        ws.send("hello")
        assert ws.recv() == "hello"
        time.sleep(2.5)                       # > idle_timeout, the stream is open
        ws.send("still here")
        assert ws.recv() == "still here"
        assert listening(port)
    finally:
        ws.close()
    gwtest.wait_for(lambda: not listening(port), timeout=6)  # now it may sleep
    assert starts_of(starts) == 1


def test_app_killed_behind_our_back_is_woken_again(make_gateway, tmp_path):
    g, starts, port = app_gateway(make_gateway, tmp_path)
    assert g.request("GET", "/echo", HOST)[0].status == 200
    subprocess.run(["pkill", "-f", f"backend.py --port {port}"], check=False)
    gwtest.wait_for(lambda: not listening(port), timeout=5)
    r, _ = g.request("GET", "/echo", HOST, timeout=10)
    assert r.status == 200
    assert starts_of(starts) == 2


def test_exec_needs_one_worker(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text(f"[gateway]\nworkers = 2\n[exec]\n{HOST} = 127.0.0.1:9 sleep 1\n")
    r = subprocess.run([gwtest.GATEWAY_BIN, "-t", "-c", str(conf)], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode != 0 and "workers = 1" in r.stderr


def test_global_hold_limit(make_gateway, tmp_path):
    a, b = gwtest.free_port(), gwtest.free_port()
    g = make_gateway({}, config=f"""
[activator]
hold_max = 2
hold_max_per_project = 100
hold_timeout = 3s
[exec]
app-cold0001.localhost = 127.0.0.1:{a} exec sleep 30
app-cold0002.localhost = 127.0.0.1:{b} exec sleep 30
""")
    held = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: app-cold0001.localhost\r\n\r\n")
        held.append(s)
    time.sleep(0.3)
    t0 = time.monotonic()
    r, _ = g.request("GET", "/", "app-cold0002.localhost", timeout=10)
    assert r.status == 503 and r.getheader("Retry-After")
    assert time.monotonic() - t0 < 1.5          # the other project's holds count
    assert "2 in all" in g.stderr()
    for s in held:
        s.close()


def test_wake_timeout_stops_an_app_that_never_listens(make_gateway, tmp_path):
    pidfile = tmp_path / "pid"
    script = tmp_path / "never.sh"
    script.write_text(f"echo start >> {tmp_path}/starts.log\necho $$ > {pidfile}\n"
                      "exec sleep 30\n")
    g, starts, port = app_gateway(make_gateway, tmp_path, command=f"exec sh {script}",
                                  wake_timeout="1s", hold_timeout="10s")
    t0 = time.monotonic()
    r, _ = g.request("GET", "/", HOST, timeout=15)
    assert r.status == 503 and r.getheader("Retry-After")
    assert time.monotonic() - t0 < 5            # wake_timeout, not hold_timeout
    assert "cold start failed: not ready after 1000ms" in g.stderr()
    pid = int(pidfile.read_text())
    gwtest.wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=5)
    g.request("GET", "/", HOST, timeout=15)     # cold again: a new start
    assert starts_of(starts) == 2


def test_abandoned_holds_free_their_slots(make_gateway, tmp_path):
    script = tmp_path / "app.sh"
    script.write_text(f"sleep 1.5\nexec {gwtest.PYTHON} {gwtest.BACKEND} --port $PORT\n")
    g, starts, port = app_gateway(make_gateway, tmp_path, command=f"exec sh {script}",
                                  hold_max_per_project="5", hold_timeout="10s")
    for i in range(5):                         # fill the queue, then leave
        s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
        s.sendall(f"GET /gone/{i} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        time.sleep(0.05)
        s.close()
    time.sleep(0.3)
    r, _ = g.request("GET", "/echo", HOST, timeout=10)   # room again at once
    assert r.status == 200
    c = gwtest.raw_exchange(port, b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    import json
    st = json.loads(c.split(b"\r\n\r\n", 1)[1])
    assert st["requests"] == 2                 # ours and /stats: none of the 5
    assert g.stderr().count("client left while held") == 5


def test_sigkill_after_stop_grace(make_gateway, tmp_path):
    script = tmp_path / "app.sh"
    # SIGTERM ignored, across the exec: only SIGKILL stops it.
    script.write_text(f"trap '' TERM\nexec {gwtest.PYTHON} {gwtest.BACKEND} --port $PORT\n")
    port = gwtest.free_port()
    g = make_gateway({}, config=f"""
[activator]
idle_timeout = 1s
stop_grace = 1s
[exec]
{HOST} = 127.0.0.1:{port} exec sh {script}
""")
    assert g.request("GET", "/echo", HOST, timeout=10)[0].status == 200
    gwtest.wait_for(lambda: "SIGKILL" in g.stderr(), timeout=8)
    gwtest.wait_for(lambda: not listening(port), timeout=5)
    r, _ = g.request("GET", "/echo", HOST, timeout=10)   # and it wakes again
    assert r.status == 200


def test_shutdown_stops_all_apps_at_once(make_gateway, tmp_path):
    script = tmp_path / "app.sh"
    script.write_text(f"trap '' TERM\nexec {gwtest.PYTHON} {gwtest.BACKEND} --port $PORT\n")
    ports = [gwtest.free_port() for _ in range(3)]
    lines = "\n".join(f"app-cold000{i}.localhost = 127.0.0.1:{p} exec sh {script}"
                      for i, p in enumerate(ports))
    g = make_gateway({}, config=f"""
[activator]
stop_grace = 2s
[exec]
{lines}
""")
    for i in range(3):
        assert g.request("GET", "/echo", f"app-cold000{i}.localhost",
                         timeout=10)[0].status == 200
    t0 = time.monotonic()
    assert g.stop() in (0, -15)
    took = time.monotonic() - t0
    assert took < 4.5, took          # one grace for all three, not one each
    assert not any(listening(p) for p in ports)
