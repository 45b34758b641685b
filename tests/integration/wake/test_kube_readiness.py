"""Kubernetes readiness and routing: pods probed before the kubelet says
ready, every candidate probed, refused connects re-entering wake, release
over several pods, WebSockets, replicas never lowered, route changes."""
import concurrent.futures
import http.client
import json
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from kubefix import KHOST, kget  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402

ROUTE = {"namespace": "apps", "deployment": "web"}


def pod_requests(port):
    """Requests a pod's backend has seen (not counting this /stats call)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/stats", headers={"Connection": "close"})
    n = json.loads(c.getresponse().read())["requests"]
    c.close()
    return n - 1


def test_pod_probed_before_the_kubelet_says_ready(kenv):
    # Two pods; the first never listens. Both are ready:false until the
    # readiness delay (10 s): only a probe of every candidate finds the
    # second one listening well before that.
    k = kenv.api(deployments=[{"namespace": "apps", "name": "web", "broken": [0]}],
                 readiness_delay=10)
    g = kenv.gateway(k.url, k.token_file, route=ROUTE,
                     kubernetes={"wake_replicas": 2, "max_replicas": 2})
    t0 = time.monotonic()
    r, _ = kget(g)
    assert r.status == 200 and r.getheader("X-Cold-Start")
    assert time.monotonic() - t0 < 6
    assert k.stats()["ready_pods"]["apps/web"] == []     # the kubelet has not caught up


def test_pod_killed_and_back_on_the_same_address(kenv):
    k = kenv.api()
    g = kenv.gateway(k.url, k.token_file, route=ROUTE,
                     activator={"idle_timeout": "60s"})
    assert kget(g)[0].status == 200
    # The container dies; the EndpointSlice still says ready. It comes back
    # on the same address a second later, and the watch reports nothing new.
    k.control("kill-pods", {"namespace": "apps", "name": "web"})
    threading.Timer(1.0, k.control, ("restart-pods", {"namespace": "apps",
                                                      "name": "web"})).start()
    r, _ = kget(g)
    assert r.status == 200
    assert "refused while believed warm" in g.stderr()
    assert k.stats()["scale_patches"] == {"apps/web": 1}  # it was never at 0
    assert kget(g)[0].status == 200


def test_websocket_to_a_cold_deployment(kenv):
    websocket = pytest.importorskip("websocket")
    k = kenv.api()
    g = kenv.gateway(k.url, k.token_file, route=ROUTE)
    ws = websocket.create_connection(f"ws://127.0.0.1:{g.port}/ws", host=KHOST, timeout=15)
    try:
        ws.send("hello")
        assert ws.recv() == "hello"
        time.sleep(3)                       # > idle_timeout: the stream is activity
        ws.send("still")
        assert ws.recv() == "still"
        assert k.stats()["replicas"]["apps/web"] == 1
    finally:
        ws.close()
    assert k.stats()["scale_patches"] == {"apps/web": 1}
    gwtest.wait_for(lambda: k.stats()["replicas"]["apps/web"] == 0, timeout=10)


def test_held_requests_spread_over_ready_pods_within_concurrency(kenv):
    # Two running pods, a gateway that has not seen them yet: 8 held
    # requests of 1 s each, one at a time per pod, take four rounds of two;
    # one at a time per project would take eight.
    k = kenv.api(deployments=[{"namespace": "apps", "name": "web", "replicas": 2}])
    gwtest.wait_for(lambda: len(k.stats()["ready_pods"]["apps/web"]) == 2, timeout=10)
    g = kenv.gateway(k.url, k.token_file, route=ROUTE,
                     activator={"release_concurrency": 1, "hold_timeout": "30s"})
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        futs = [ex.submit(kget, g, "/slow/1000", KHOST, 30) for _ in range(8)]
        statuses = [f.result()[0].status for f in futs]
    took = time.monotonic() - t0
    assert statuses == [200] * 8
    ports = k.stats()["pods"]["apps/web"]
    served = [pod_requests(p) for p in ports]
    assert all(n >= 2 for n in served), served   # both pods took part
    assert took < 7.5, took                       # not one at a time
    assert k.stats()["scale_patches"] == {}       # running: never touched


def test_max_replicas_from_the_route(kenv):
    k = kenv.api()
    g = kenv.gateway(k.url, k.token_file, route={**ROUTE, "max_replicas": "2"},
                     kubernetes={"wake_replicas": 3})
    assert kget(g)[0].status == 200
    assert k.stats()["scale_history"] == {"apps/web": [2]}


def test_a_running_deployment_is_never_lowered(kenv):
    k = kenv.api(deployments=[{"namespace": "apps", "name": "web", "replicas": 3}])
    gwtest.wait_for(lambda: len(k.stats()["ready_pods"]["apps/web"]) == 3, timeout=15)
    # A gateway that just started sees the project as cold.
    g = kenv.gateway(k.url, k.token_file, route=ROUTE)
    assert kget(g)[0].status == 200
    st = k.stats()
    assert st["scale_patches"] == {} and st["replicas"]["apps/web"] == 3
    assert st["scale_gets"]["apps/web"] >= 1


def test_route_change_restarts_the_watch(kenv):
    k = kenv.api(deployments=[{"namespace": "apps", "name": "web"},
                              {"namespace": "apps", "name": "web2"}])
    g = kenv.gateway(k.url, k.token_file, route=ROUTE,
                     activator={"idle_timeout": "60s"})
    assert kget(g)[0].status == 200
    kenv.route({"namespace": "apps", "deployment": "web2"})
    r, _ = kget(g)
    assert r.status == 200
    st = k.stats()
    assert st["scale_patches"].get("apps/web2") == 1
    web2 = st["pods"]["apps/web2"]
    assert web2 and pod_requests(web2[0]) == 1      # it went to the new app
    gwtest.wait_for(lambda: k.stats()["open_watches_by"].get("apps/web", 0) == 0
                    and k.stats()["open_watches_by"].get("apps/web2") == 1, timeout=5)
    assert "now apps/web2" in g.stderr()


def test_removed_route_leaves_nothing_behind(kenv):
    k = kenv.api()
    g = kenv.gateway(k.url, k.token_file, route=ROUTE, activator={"idle_timeout": "1s"})
    assert kget(g)[0].status == 200
    assert k.stats()["open_watches"] == 1
    kenv.redis.rm_route(KHOST)
    gwtest.wait_for(lambda: "app-kube0001: forgotten" in g.stderr(), timeout=10)
    assert k.stats()["replicas"]["apps/web"] == 0
    gwtest.wait_for(lambda: k.stats()["open_watches"] == 0, timeout=5)


def test_namespace_from_the_service_account_file(kenv, tmp_path):
    k = kenv.api()
    nsfile = tmp_path / "namespace"
    nsfile.write_text("apps\n")
    g = kenv.gateway(k.url, k.token_file, route={"deployment": "web"},
                     kubernetes={"namespace_file": str(nsfile)})
    assert kget(g)[0].status == 200
    assert k.stats()["scale_patches"] == {"apps/web": 1}
    assert "default namespace apps" in g.stderr()


def test_invalid_names_never_reach_the_api(kenv):
    k = kenv.api()
    g = kenv.gateway(k.url, k.token_file, route={"namespace": "apps",
                                                 "deployment": "web/../../x"})
    r, _ = kget(g, timeout=5)
    # refused when read from Redis (a refused route is a missing one); the
    # Kubernetes provider checks again before any URL is built
    assert r.status == 404
    assert "is not a DNS-1123 subdomain" in g.stderr()
    assert json.dumps(k.stats()["scale_gets"]) == "{}"
