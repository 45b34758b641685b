"""Several gateway processes in front of the same Deployment: scale-down is
decided once, and never while any of them has a request or a stream open."""
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402

HOST = "app-fleet001.apps.test"


@pytest.fixture
def fleet(tmp_path, redis_server, make_gateway):
    d = tmp_path / "kube"
    d.mkdir()
    k = gwtest.KubeAPI(d, pod_start_delay=0.2)
    k.control("deployments", {"namespace": "apps", "name": "web"})
    gws = []
    for i in range(2):
        g = make_gateway({}, config=f"""
[redis]
address = {redis_server.addr}
[kubernetes]
api_url = {k.url}
token_file = {k.token_file}
[activator]
idle_timeout = 2s
""")
        gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=5)
        gws.append(g)
    r = redis_server.r
    r.hset(f"gw:route:{HOST}", mapping={"project": "app-fleet001", "visibility": "public",
                                         "namespace": "apps", "deployment": "web"})
    r.sadd("gw:routes", HOST)
    r.publish("gw:events", f"route {HOST}")
    time.sleep(0.2)
    yield k, gws
    k.stop()


def replicas(k):
    return k.stats()["replicas"]["apps/web"]


def downs(k):
    return k.stats().get("scale_to_zero", {}).get("apps/web", 0)


def test_busy_replica_keeps_the_app_up_and_scale_down_happens_once(fleet):
    k, (a, b) = fleet
    assert a.request("GET", "/echo", HOST, timeout=15)[0].status == 200
    assert b.request("GET", "/echo", HOST, timeout=15)[0].status == 200
    stop = threading.Event()
    statuses = []

    def busy():                      # only B is used from now on
        while not stop.is_set():
            statuses.append(b.request("GET", "/echo", HOST, timeout=15)[0].status)
            time.sleep(0.2)
    t = threading.Thread(target=busy)
    t.start()
    try:
        time.sleep(5)                # A is idle for 2.5 idle timeouts
        assert replicas(k) == 1 and downs(k) == 0
    finally:
        stop.set()
        t.join(timeout=20)
    assert set(statuses) == {200}
    gwtest.wait_for(lambda: replicas(k) == 0, timeout=10)
    time.sleep(2.5)                  # both had their chance to decide
    assert downs(k) == 1


def test_open_websocket_on_one_replica_blocks_scale_down(fleet):
    websocket = pytest.importorskip("websocket")
    k, (a, b) = fleet
    assert b.request("GET", "/echo", HOST, timeout=15)[0].status == 200
    ws = websocket.create_connection(f"ws://127.0.0.1:{a.port}/ws", host=HOST, timeout=15)
    try:
        ws.send("x")
        assert ws.recv() == "x"
        time.sleep(5)                # B idle, A has only the stream
        assert replicas(k) == 1 and downs(k) == 0
        ws.send("still")
        assert ws.recv() == "still"  # the stream was not cut
    finally:
        ws.close()
    gwtest.wait_for(lambda: replicas(k) == 0, timeout=10)
    assert downs(k) == 1


def test_one_scale_call_across_replicas(fleet):
    k, gws = fleet
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(60) as ex:
        futs = [ex.submit(gws[i % 2].request, "GET", f"/echo?i={i}", HOST, None, None, 20)
                for i in range(120)]
        statuses = [f.result()[0].status for f in futs]
    assert statuses.count(200) == 120
    assert k.stats()["scale_patches"] == {"apps/web": 1}
    assert any("another gateway is waking it" in g.stderr() for g in gws)
