"""The Kubernetes API misbehaving: every error the gateway must survive,
answered with 503 + Retry-After (never a hang) or retried as the API's
semantics say, and scale-down racing a wake."""
import concurrent.futures
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from kubefix import kget  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402

ROUTE = {"namespace": "apps", "deployment": "web"}
SCALE = "/apis/apps/v1/namespaces/apps/deployments/web/scale"


def fault(k, **f):
    k.control("faults", f)


def test_401_reads_the_token_again_and_retries(kenv):
    k = kenv.api()
    g = kenv.gateway(k.url, k.token_file, route=ROUTE)
    fault(k, path_prefix=SCALE, status=401, count=1)
    assert kget(g)[0].status == 200
    assert k.stats()["faults_hit"] == 1


def test_409_reads_again_instead_of_resending(kenv):
    k = kenv.api()
    g = kenv.gateway(k.url, k.token_file, route=ROUTE)
    fault(k, path_prefix=SCALE, method="PATCH", status=409, count=1)
    assert kget(g)[0].status == 200
    st = k.stats()
    assert st["scale_gets"]["apps/web"] == 2          # read, conflict, read again
    assert st["scale_patches"] == {"apps/web": 1}
    assert "conflict" in g.stderr()


def test_a_stalled_api_request_times_out_and_is_retried(kenv):
    k = kenv.api()
    g = kenv.gateway(k.url, k.token_file, route=ROUTE,
                     kubernetes={"request_timeout": "1s"})
    fault(k, path_prefix=SCALE, method="GET", stall=10, count=1)
    t0 = time.monotonic()
    assert kget(g)[0].status == 200
    assert time.monotonic() - t0 < 7
    assert "retrying" in g.stderr()


def test_an_api_that_never_answers_gives_503_not_a_hang(kenv):
    k = kenv.api()
    g = kenv.gateway(k.url, k.token_file, route=ROUTE,
                     kubernetes={"request_timeout": "1s"})
    fault(k, path_prefix=SCALE, stall=10, count=100)
    t0 = time.monotonic()
    r, _ = kget(g)
    assert r.status == 503 and r.getheader("Retry-After")
    assert time.monotonic() - t0 < 6               # 3 x request_timeout, then 503
    assert "cannot scale apps/web up" in g.stderr()


def test_429_waits_for_retry_after(kenv):
    k = kenv.api()
    g = kenv.gateway(k.url, k.token_file, route=ROUTE)
    fault(k, path_prefix=SCALE, method="GET", status=429, retry_after=2, count=1)
    t0 = time.monotonic()
    assert kget(g)[0].status == 200
    assert time.monotonic() - t0 >= 1.9            # not before the server said
    assert "retrying in 2000ms" in g.stderr()


def test_an_api_that_refuses_connections_backs_off_then_recovers(kenv):
    port = gwtest.free_port()
    token = kenv.tmp / "token"
    token.write_text("token-1\n")
    g = kenv.gateway(f"http://127.0.0.1:{port}", str(token), route=ROUTE,
                     kubernetes={"request_timeout": "1s"})
    t0 = time.monotonic()
    r, _ = kget(g)
    took = time.monotonic() - t0
    assert r.status == 503 and r.getheader("Retry-After")
    assert 0.5 <= took < 6, took            # backed off, within 3 x request_timeout
    retries = g.stderr().count("retrying in")
    assert 1 <= retries < 8, retries
    # The API comes up on that address (same token): the app wakes.
    kenv.api(port=port)
    assert kget(g)[0].status == 200


def test_watch_forbidden_falls_back_to_polling(kenv):
    k = kenv.api()
    g = kenv.gateway(k.url, k.token_file, route=ROUTE,
                     kubernetes={"poll_interval": "200ms"})
    fault(k, path_prefix="/apis/discovery.k8s.io", query="watch=1", status=403,
          count=1000)
    r, _ = kget(g)
    assert r.status == 200
    assert "polling every 200ms" in g.stderr()
    assert k.stats()["lists"] >= 2


def test_410_on_the_watch_request_relists(kenv):
    k = kenv.api(pod_start_delay=1.0)
    g = kenv.gateway(k.url, k.token_file, route=ROUTE)
    fault(k, path_prefix="/apis/discovery.k8s.io", query="watch=1", status=410, count=2)
    assert kget(g)[0].status == 200
    assert "too old (410); listing again" in g.stderr()
    assert k.stats()["lists"] >= 3


def test_service_address_without_endpointslice_access(kenv):
    # RBAC forbids reading EndpointSlices; the route has the Service's
    # address, which is probed directly.
    port = gwtest.free_port()
    k = kenv.api(deployments=[{"namespace": "apps", "name": "web", "pod_port": port}])
    fault(k, path_prefix="/apis/discovery.k8s.io", status=403, count=1000)
    g = kenv.gateway(k.url, k.token_file, route={**ROUTE, "upstream": f"127.0.0.1:{port}"})
    r, _ = kget(g)
    assert r.status == 200 and r.getheader("X-Cold-Start")
    assert k.stats()["scale_patches"] == {"apps/web": 1}


def test_request_during_scale_down_is_held_and_wakes_it_again(kenv):
    k = kenv.api()
    g = kenv.gateway(k.url, k.token_file, route=ROUTE, activator={"idle_timeout": "1s"})
    assert kget(g)[0].status == 200
    # The scale-down PATCH takes 2 s to land (a slow API server).
    fault(k, path_prefix=SCALE, method="PATCH", body='"replicas":0', delay=2, **{"pass": True})
    gwtest.wait_for(lambda: "stopping" in g.stderr() or "scaling down" in g.stderr(),
                    timeout=10)
    t0 = time.monotonic()
    r, _ = kget(g)                       # arrives while the scale-down is in flight
    assert r.status == 200
    gwtest.wait_for(lambda: k.stats()["faults_hit"] == 1, timeout=5)
    # Whatever landed last, the app is up for the request that woke it.
    time.sleep(max(0, 2.5 - (time.monotonic() - t0)))
    assert k.stats()["replicas"]["apps/web"] == 1
    assert k.stats()["scale_history"]["apps/web"][:3] == [1, 0, 1]


def test_wake_timeout_when_pods_never_listen(kenv):
    k = kenv.api(deployments=[{"namespace": "apps", "name": "web", "broken": [0]}])
    g = kenv.gateway(k.url, k.token_file, route=ROUTE, activator={"wake_timeout": "2s"})
    t0 = time.monotonic()
    r, _ = kget(g)
    assert r.status == 503 and r.getheader("Retry-After")
    assert time.monotonic() - t0 < 6                 # the wake timeout, not hold_timeout
    assert "cold start failed: not ready after 2000ms" in g.stderr()
    # Cold again: the next request starts a new wake (and fails the same way).
    wakes = g.stderr().count(": waking (")
    assert kget(g)[0].status == 503
    assert g.stderr().count(": waking (") == wakes + 1


def test_deployment_scaled_to_zero_elsewhere_mid_wake_is_scaled_again(kenv):
    k = kenv.api(pod_start_delay=1.5)
    g = kenv.gateway(k.url, k.token_file, route=ROUTE, activator={"wake_timeout": "3s"})
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(kget, g)
        gwtest.wait_for(lambda: k.stats()["replicas"]["apps/web"] == 1, timeout=5)
        k.control("scale", {"namespace": "apps", "name": "web", "replicas": 0})
        r, _ = fut.result(timeout=20)
    assert r.status == 503                           # that wake failed, visibly
    r, _ = kget(g)
    assert r.status == 200                           # the next one scales it again
    assert k.stats()["scale_patches"] == {"apps/web": 2}


def test_keepalive_connection_in_step_after_a_fault(kenv):
    # The stand-in reads a faulted request's body before answering: the
    # gateway's next request on the same connection is parsed correctly.
    k = kenv.api()
    g = kenv.gateway(k.url, k.token_file, route=ROUTE)
    fault(k, path_prefix=SCALE, method="PATCH", status=500, count=1)
    assert kget(g)[0].status == 200
    st = k.stats()
    assert st["scale_patches"] == {"apps/web": 1} and st["faults_hit"] == 1
