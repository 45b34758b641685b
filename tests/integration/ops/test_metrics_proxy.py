"""The proxy's metric families move as traffic flows: requests by project
and status class, upstream latency, in-flight exchanges, connect failures,
tunnels; and the project label stays within [admin] metrics_max_projects."""
import socket
import threading

import gwtest
from gwtest import free_port


def req(m, project, code):
    return m.get(f'gateway_requests_total{{project="{project}",code="{code}"}}', 0)


def test_requests_by_project_and_class(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr], "other.test": [backend.addr]})
    before = g.metrics()
    for _ in range(3):
        assert g.request("GET", "/echo", "app.test")[0].status == 200
    assert g.request("GET", "/status/404", "app.test")[0].status == 404
    assert g.request("GET", "/status/503", "other.test")[0].status == 503
    assert g.request("GET", "/", "unknown.test")[0].status == 404
    after = g.metrics()
    assert req(after, "app", "2xx") - req(before, "app", "2xx") == 3
    assert req(after, "app", "4xx") - req(before, "app", "4xx") == 1
    assert req(after, "other", "5xx") - req(before, "other", "5xx") == 1
    assert req(after, "_none", "4xx") - req(before, "_none", "4xx") == 1
    # five exchanges reached an app: five latency observations, both
    # aggregated and per project, each with a +Inf bucket equal to count
    assert after["gateway_upstream_latency_seconds_count"] == 5
    assert after['gateway_upstream_latency_seconds_bucket{le="+Inf"}'] == 5
    assert after['gateway_project_upstream_latency_seconds_count{project="app"}'] == 4
    assert after['gateway_project_upstream_latency_seconds_count{project="other"}'] == 1
    assert after["gateway_upstream_latency_seconds_sum"] >= 0


def test_latency_histogram_buckets(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]})
    assert g.request("GET", "/slow/300", "app.test")[0].status == 200
    m = g.metrics()
    assert m["gateway_upstream_latency_seconds_count"] == 1
    assert 0.25 <= m["gateway_upstream_latency_seconds_sum"] < 30
    # 300 ms is above the 0.1 s bucket and within the 60 s one
    assert m['gateway_upstream_latency_seconds_bucket{le="0.1"}'] == 0
    assert m['gateway_upstream_latency_seconds_bucket{le="60"}'] == 1


def test_in_flight_gauge(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]})
    socks = []
    try:
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
            s.sendall(b"GET /slow/2500 HTTP/1.1\r\nHost: app.test\r\n\r\n")
            socks.append(s)
        gwtest.wait_for(lambda: g.metrics()["gateway_requests_in_flight"] == 3, timeout=2)
        for s in socks:
            assert s.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        for s in socks:
            s.close()
    m = g.metrics()
    assert m["gateway_requests_in_flight"] == 0
    assert req(m, "app", "2xx") == 3


def test_connect_failures_by_reason(make_gateway):
    dead = f"127.0.0.1:{free_port()}"    # nothing listens: refused
    g = make_gateway({"dead.test": [dead]}, config="""
[upstream]
connect_timeout = 1s
""")
    before = g.metrics()
    for _ in range(2):
        assert g.request("GET", "/", "dead.test")[0].status == 502
    after = g.metrics()
    key = 'gateway_upstream_connect_failures_total{reason="refused"}'
    assert after[key] - before[key] == 2
    assert req(after, "dead", "5xx") == 2
    assert after["gateway_upstream_latency_seconds_count"] == 0


def test_tunnels(backend, make_gateway):
    import websocket
    g = make_gateway({"app.test": [backend.addr]})
    ws = websocket.create_connection(f"ws://127.0.0.1:{g.port}/ws",
                                     host="app.test", timeout=10)
    try:
        ws.send("hi")
        assert ws.recv() == "hi"
        m = g.metrics()
        assert m["gateway_tunnels_total"] == 1
        assert m["gateway_tunnels_open"] == 1
    finally:
        ws.close()
    gwtest.wait_for(lambda: g.metrics()["gateway_tunnels_open"] == 0, timeout=5)


def test_project_cardinality_capped(backend, make_gateway):
    routes = {f"p{i}.test": [backend.addr] for i in range(5)}
    g = make_gateway(routes, config="""
[admin]
metrics_max_projects = 2
""")
    for i in range(5):
        assert g.request("GET", "/echo", f"p{i}.test")[0].status == 200
    m = g.metrics()
    projects = {k.split('project="')[1].split('"')[0]
                for k in m if k.startswith("gateway_requests_total{")}
    # "_none" is taken first, one more project gets its own series, the
    # rest add up in "_other"
    assert len(projects) <= 3, projects
    assert "_other" in projects
    total = sum(v for k, v in m.items()
                if k.startswith("gateway_requests_total{") and 'code="2xx"' in k)
    assert total == 5


def test_workers_add_up(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]}, workers=2)
    gwtest.wait_for(lambda: g.admin_get("/readyz")[0] == 200, timeout=10)
    n = 20
    errs = []

    def one():
        try:
            assert g.request("GET", "/echo", "app.test")[0].status == 200
        except Exception as e:      # noqa: BLE001 - reported below
            errs.append(e)
    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs
    m = g.metrics()
    assert req(m, "app", "2xx") == n
    assert m["gateway_upstream_latency_seconds_count"] == n
