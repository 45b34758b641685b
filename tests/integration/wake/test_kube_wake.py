"""Scale from zero through the Kubernetes API (tests/lib/kubeapi.py stand-in)."""
import concurrent.futures
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402

HOST = "app-kube0001.apps.test"


@pytest.fixture
def kube(tmp_path):
    d = tmp_path / "kube"
    d.mkdir()
    k = gwtest.KubeAPI(d)
    k.control("deployments", {"namespace": "apps", "name": "web"})
    yield k
    k.stop()


@pytest.fixture
def kgw(kube, redis_server, make_gateway):
    g = make_gateway({}, config=f"""
[redis]
address = {redis_server.addr}
[kubernetes]
api_url = {kube.url}
token_file = {kube.token_file}
token_reload = 1s
request_timeout = 2s
watch_timeout = 2s
[activator]
hold_timeout = 8s
idle_timeout = 2s
""")
    gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=5)
    r = redis_server.r
    r.hset(f"gw:route:{HOST}", mapping={"project": "app-kube0001", "visibility": "public",
                                         "namespace": "apps", "deployment": "web"})
    r.sadd("gw:routes", HOST)
    r.publish("gw:events", f"route {HOST}")
    time.sleep(0.2)
    g.kube = kube
    return g


def get(g, path="/echo", timeout=15):
    r, body = g.request("GET", path, HOST, timeout=timeout)
    return r, body


def test_cold_deployment_scaled_and_served(kgw):
    r, body = get(kgw)
    assert r.status == 200 and r.getheader("X-Cold-Start")
    st = kgw.kube.stats()
    assert st["scale_patches"] == {"apps/web": 1}
    assert st["replicas"]["apps/web"] == 1
    r, _ = get(kgw)
    assert r.status == 200 and r.getheader("X-Cold-Start") is None
    assert "ready after" in kgw.stderr()


def test_thousand_concurrent_requests_one_scale_call(kgw):
    gwtest.check_echoes(gwtest.concurrent_gets(kgw.port, HOST, 1000), 1000)
    assert kgw.kube.stats()["scale_patches"] == {"apps/web": 1}


def test_idle_deployment_scaled_to_zero_and_back(kgw):
    assert get(kgw)[0].status == 200
    gwtest.wait_for(lambda: kgw.kube.stats()["replicas"]["apps/web"] == 0, timeout=8)
    # the stand-in applies the PATCH before the gateway reads its answer
    gwtest.wait_for(lambda: "scaled to zero" in kgw.stderr(), timeout=5)
    r, _ = get(kgw)
    assert r.status == 200 and r.getheader("X-Cold-Start")
    assert kgw.kube.stats()["scale_patches"]["apps/web"] == 3   # up, down, up


@pytest.mark.parametrize("code", [500, 503, 429, 0])
def test_transient_api_errors_are_retried(kgw, code):
    kgw.kube.control("faults", {"path_prefix": "/apis/apps", "status": code, "count": 2})
    r, _ = get(kgw)
    assert r.status == 200


@pytest.mark.parametrize("code", [403, 404])
def test_final_api_errors_give_503_fast(kgw, code):
    kgw.kube.control("faults", {"path_prefix": "/apis/apps", "status": code, "count": 1})
    t0 = time.monotonic()
    r, _ = get(kgw)
    assert r.status == 503 and r.getheader("Retry-After")
    assert time.monotonic() - t0 < 5            # not held until hold_timeout
    assert "cannot scale apps/web up" in kgw.stderr()
    assert get(kgw)[0].status == 200             # and it recovers


def test_api_down_then_back(kgw):
    kgw.kube.control("faults", {"path_prefix": "/apis/apps", "status": 503, "count": 1000})
    t0 = time.monotonic()
    r, _ = get(kgw)
    assert r.status == 503 and r.getheader("Retry-After")   # retries exhausted: no hang
    assert time.monotonic() - t0 < 8.5
    kgw.kube.control("faults", {"clear": True})
    r, _ = get(kgw)
    assert r.status == 200                                  # recovery, no restart


def test_token_rotation(kgw):
    kgw.kube.set_token("token-2")               # the old one is refused from now on
    r, _ = get(kgw)
    assert r.status == 200
    assert "Bearer" not in kgw.stderr() and "token-2" not in kgw.stderr()


def test_watch_broken_mid_wake(kgw):
    kgw.kube.control("pod-start-delay", {"seconds": 1.0})
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(get, kgw)
        time.sleep(0.4)
        kgw.kube.control("break-watches", {})
        r, _ = fut.result(timeout=20)
    assert r.status == 200


def test_watch_expired_relists(kgw):
    kgw.kube.control("pod-start-delay", {"seconds": 1.0})
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(get, kgw)
        time.sleep(0.4)
        kgw.kube.control("expire-watches", {})
        r, _ = fut.result(timeout=20)
    assert r.status == 200
    assert "listing again" in kgw.stderr()


def test_over_tls_with_the_cluster_ca(tmp_path, redis_server, make_gateway):
    d = tmp_path / "tlskube"
    d.mkdir()
    k = gwtest.KubeAPI(d, tls=True)
    try:
        k.control("deployments", {"namespace": "apps", "name": "web"})
        g = make_gateway({}, config=f"""
[redis]
address = {redis_server.addr}
[kubernetes]
api_url = {k.url}
token_file = {k.token_file}
ca_file = {k.ca_file}
""")
        gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=5)
        redis_server.put_route(HOST, "", project="app-kube0001")
        r = redis_server.r
        r.hdel(f"gw:route:{HOST}", "upstream")
        r.hset(f"gw:route:{HOST}", mapping={"namespace": "apps", "deployment": "web"})
        r.publish("gw:events", f"route {HOST}")
        time.sleep(0.2)
        resp, _ = g.request("GET", "/echo", HOST, timeout=15)
        assert resp.status == 200
        assert k.stats()["scale_patches"] == {"apps/web": 1}
    finally:
        k.stop()
