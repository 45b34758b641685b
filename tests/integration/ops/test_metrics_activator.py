"""The activator's metric families move with wakes, holds and idle stops:
activations by result and their duration, scale-downs, holds queued, held
now, timed out and refused at the limit, projects by state."""
import socket
import time

import gwtest

HOST = "app-metric01.localhost"


def exec_gateway(make_gateway, tmp_path, command=None, **activator):
    port = gwtest.free_port()
    if command is None:
        script = tmp_path / "app.sh"
        script.write_text(f"exec {gwtest.PYTHON} {gwtest.BACKEND} --port $PORT\n")
        command = f"exec sh {script}"
    act = "\n".join(f"{k} = {v}" for k, v in activator.items())
    return make_gateway({}, config=f"""
[activator]
{act}
stop_grace = 2s
[exec]
{HOST} = 127.0.0.1:{port} {command}
""")


def act(m, result):
    return m.get(f'gateway_activations_total{{result="{result}"}}', 0)


def projects(m, state):
    return m.get(f'gateway_projects{{state="{state}"}}', 0)


def test_wake_hold_and_idle_stop(make_gateway, tmp_path):
    g = exec_gateway(make_gateway, tmp_path, idle_timeout="1s")
    m = g.metrics()
    assert m["gateway_activations_started_total"] == 0
    assert m["gateway_activation_duration_seconds_count"] == 0
    assert g.request("GET", "/echo", HOST, timeout=10)[0].status == 200
    m = g.metrics()
    assert m["gateway_activations_started_total"] == 1
    assert act(m, "ready") == 1 and act(m, "failed") == 0
    assert m["gateway_activation_duration_seconds_count"] == 1
    assert 0 < m["gateway_activation_duration_seconds_sum"] < 30
    assert m['gateway_activation_duration_seconds_bucket{le="+Inf"}'] == 1
    assert m["gateway_holds_total"] == 1
    assert m["gateway_held_requests"] == 0
    assert projects(m, "warm") == 1
    # warm: the next request is not held
    assert g.request("GET", "/echo", HOST)[0].status == 200
    assert g.metrics()["gateway_holds_total"] == 1
    # idle for 1s: stopped by this process
    gwtest.wait_for(lambda: g.metrics()["gateway_scale_downs_total"] == 1, timeout=8)
    m = g.metrics()
    assert projects(m, "cold") == 1 and projects(m, "warm") == 0
    assert m["gateway_scale_down_failures_total"] == 0


def test_held_gauge_timeouts_and_rejections(make_gateway, tmp_path):
    g = exec_gateway(make_gateway, tmp_path, command="exec sleep 30",
                     hold_timeout="2s", hold_max_per_project="2")
    held = []
    try:
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
            s.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            held.append(s)
        gwtest.wait_for(lambda: g.metrics()["gateway_held_requests"] == 2, timeout=1.5)
        m = g.metrics()
        assert projects(m, "waking") == 1
        assert m["gateway_requests_in_flight"] == 2    # held ones included
        assert g.request("GET", "/", HOST)[0].status == 503   # the queue is full
        assert g.metrics()["gateway_hold_rejections_total"] == 1
        for s in held:
            assert gwtest.status_of(s.recv(4096)) == 503
    finally:
        for s in held:
            s.close()
    m = g.metrics()
    assert m["gateway_hold_timeouts_total"] == 2
    assert m["gateway_holds_total"] == 2
    assert m["gateway_held_requests"] == 0
    assert act(m, "ready") == 0


def test_failed_wake(make_gateway, tmp_path):
    g = exec_gateway(make_gateway, tmp_path, command="exit 3", hold_timeout="5s")
    assert g.request("GET", "/", HOST, timeout=10)[0].status == 503
    gwtest.wait_for(lambda: act(g.metrics(), "failed") == 1, timeout=5)
    m = g.metrics()
    assert m["gateway_activations_started_total"] == 1
    assert m["gateway_activation_duration_seconds_count"] == 0
    assert m["gateway_hold_timeouts_total"] == 0
