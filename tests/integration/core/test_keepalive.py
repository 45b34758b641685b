"""Keep-alive on both sides and pipelining."""
import json

from gwtest import split_responses


def test_backend_sees_far_fewer_connections_than_requests(gw, backend):
    before = backend.stats()["connections"]
    for i in range(200):
        r, body = gw.request("GET", f"/echo?i={i}", "app.test")  # new client conn each
        assert r.status == 200
    used = backend.stats()["connections"] - before - 1  # minus the stats call
    assert used <= 4, f"{used} upstream connections for 200 requests"


def test_client_keepalive_reuses_one_connection(gw):
    c = gw.connect()
    conns = set()
    for i in range(20):
        c.request("GET", f"/echo?i={i}", headers={"Host": "app.test"})
        r = c.getresponse()
        conns.add(json.loads(r.read())["conn"])
        assert r.status == 200
    c.close()
    assert len(conns) <= 2


def test_pipelined_requests_answered_in_order(gw):
    reqs = b"".join(b"GET /echo?n=%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % i for i in range(5))
    reqs += b"GET /echo?n=last HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
    resps = split_responses(gw.raw(reqs, timeout=10))
    assert [json.loads(b)["path"] for _, _, b in resps] == \
        [f"/echo?n={i}" for i in range(5)] + ["/echo?n=last"]


def test_pipelined_mix_of_local_and_proxied_responses(gw):
    reqs = (b"GET /echo?a HTTP/1.1\r\nHost: app.test\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n"
            b"GET /echo?b HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    resps = split_responses(gw.raw(reqs, timeout=10))
    assert [s for s, _, _ in resps] == [200, 404, 200]
    assert json.loads(resps[2][2])["path"] == "/echo?b"


def _burst(gw, n):
    """n requests in flight at once (each holds an upstream connection)."""
    import threading
    statuses = []

    def one():
        r, _ = gw.request("GET", "/slow/300", "app.test")
        statuses.append(r.status)

    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=20)
    assert statuses == [200] * n


def _app_connections(backend, base):
    """Connections the app accepted since base (a stats() value), not
    counting the stats calls themselves (each is one connection)."""
    _app_connections.calls = getattr(_app_connections, "calls", 0) + 1
    return backend.stats()["connections"] - base - _app_connections.calls


def test_idle_excess_survives_between_bursts_then_is_trimmed(backend, make_gateway):
    # keepalive = 1: a burst of 3 leaves 2 connections over the limit.
    gw = make_gateway({"app.test": [backend.addr]}, config="""
[upstream]
keepalive = 1
keepalive_trim_delay = 1500ms
""")
    _app_connections.calls = 0
    base = backend.stats()["connections"]
    _burst(gw, 3)
    assert _app_connections(backend, base) == 3
    # The next burst, soon after, finds all three still open.
    _burst(gw, 3)
    assert _app_connections(backend, base) == 3
    # After the trim delay only keepalive (1) is left: two new ones.
    import time
    time.sleep(2.5)
    _burst(gw, 3)
    assert _app_connections(backend, base) == 5


def test_trim_delay_zero_closes_the_excess_at_once(backend, make_gateway):
    gw = make_gateway({"app.test": [backend.addr]}, config="""
[upstream]
keepalive = 1
keepalive_trim_delay = 0
""")
    _app_connections.calls = 0
    base = backend.stats()["connections"]
    _burst(gw, 3)
    _burst(gw, 3)
    assert _app_connections(backend, base) == 5
