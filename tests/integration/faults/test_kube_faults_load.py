"""The Kubernetes API misbehaving while many requests wait for one wake and
other clients use a warm route: stalled, slow, answering 5xx, dropping
connections, dropping the watch. wake/test_kube_faults.py has each fault
with one request; here 12 requests share the wake, and 6 kept-alive clients
of an app that needs no wake must see nothing at all.

A passing fault (slow but within request_timeout, a few 5xx, a dropped watch): every held request gets
its 200 and the Deployment is scaled once. A lasting one (stalled, 5xx or
dropped on every call): every held request gets 503 + Retry-After within a
bound, none hangs, and the app wakes on the first request after the API
heals."""
import concurrent.futures
import time

import pytest

import gwtest
from faultload import Load
from kubefix import KHOST, kget

ROUTE = {"namespace": "apps", "deployment": "web"}
SCALE = "/apis/apps/v1/namespaces/apps/deployments/web/scale"
WARM = "app-warm0001.apps.test"
HELD = 12


def start(kenv, backend, **kw):
    k = kenv.api(**kw)
    g = kenv.gateway(k.url, k.token_file, route=ROUTE,
                     kubernetes={"request_timeout": "1s"})
    kenv.route({"upstream": backend.addr}, host=WARM)
    gwtest.wait_for(lambda: g.request("GET", "/echo", WARM)[0].status == 200, timeout=5)
    return k, g


def held_requests(g, n=HELD):
    """n concurrent requests to the cold app -> [(status, Retry-After, seconds)]."""
    def one(_):
        t0 = time.monotonic()
        try:
            r, _ = kget(g, timeout=20)
            return r.status, r.getheader("Retry-After"), time.monotonic() - t0
        except OSError as e:
            return type(e).__name__, None, time.monotonic() - t0
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        return list(ex.map(one, range(n)))


def check_load(load):
    assert load.count() > 50
    assert load.bad() == [] and load.reconnects == 0, (set(load.bad()), load.reconnects)


PASSING = {
    "slow": dict(path_prefix=SCALE, delay=0.7, count=100, **{"pass": True}),
    "500-twice": dict(path_prefix=SCALE, status=500, count=2),
    "503-once": dict(path_prefix=SCALE, method="PATCH", status=503, count=1),
    "dropped-once": dict(path_prefix=SCALE, status=0, count=1),
}


@pytest.mark.parametrize("name", list(PASSING))
def test_passing_api_fault_under_load(kenv, backend, name):
    k, g = start(kenv, backend)
    k.control("faults", PASSING[name])
    with Load(g.port, WARM, threads=6) as load:
        load.wait_count(30)
        got = held_requests(g)
    assert [s for s, _, _ in got] == [200] * HELD, got
    check_load(load)
    st = k.stats()
    assert st["faults_hit"] >= 1
    assert st["scale_patches"] == {"apps/web": 1}, st["scale_patches"]
    print(f"{name}: {HELD} x 200 in {max(t for _, _, t in got):.2f} s, one scale-up; "
          f"{load.count()} warm requests all 200")


LASTING = {
    "stalled": dict(path_prefix=SCALE, stall=30, count=1000),
    "500": dict(path_prefix=SCALE, status=500, count=1000),
    "dropped": dict(path_prefix=SCALE, status=0, count=1000),
}


@pytest.mark.parametrize("name", list(LASTING))
def test_lasting_api_fault_under_load(kenv, backend, name):
    k, g = start(kenv, backend)
    k.control("faults", LASTING[name])
    with Load(g.port, WARM, threads=6) as load:
        load.wait_count(30)
        got = held_requests(g)
        k.control("faults", {"clear": True})
        t_heal = time.monotonic()
        r, _ = kget(g, timeout=20)
        healed = time.monotonic() - t_heal
    assert [s for s, _, _ in got] == [503] * HELD, got
    assert all(ra for _, ra, _ in got), got                 # Retry-After on each
    assert max(t for _, _, t in got) < 8, got              # 3 x request_timeout, then 503
    assert r.status == 200 and r.getheader("X-Cold-Start")
    assert healed < 8, healed
    check_load(load)
    print(f"{name}: {HELD} x 503 in {max(t for _, _, t in got):.2f} s; after the API healed "
          f"the next request woke the app in {healed * 1000:.0f} ms; "
          f"{load.count()} warm requests all 200")


def test_watch_dropped_mid_wake_and_while_warm(kenv, backend):
    # Pods take 1 s: the watch is dropped twice while 12 requests wait for
    # the endpoint to turn ready, then twice more (and expired, forcing a
    # relist) while 6 clients use the woken app.
    k, g = start(kenv, backend, pod_start_delay=1.0)
    with Load(g.port, WARM, threads=6) as load:
        load.wait_count(30)
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            fut = ex.submit(held_requests, g)
            for _ in range(2):
                time.sleep(0.4)
                k.control("break-watches", {})
            got = fut.result(timeout=30)
        check_load(load)
    assert [s for s, _, _ in got] == [200] * HELD, got
    watches = k.stats()["watches"]
    with Load(g.port, KHOST, threads=6) as woken:
        woken.wait_count(30)
        for ctl in ("break-watches", "expire-watches", "break-watches"):
            k.control(ctl, {})
            time.sleep(0.5)
        woken.wait_count(woken.count() + 30)
    assert woken.bad() == [] and woken.reconnects == 0, (set(woken.bad()), woken.reconnects)
    st = k.stats()
    assert st["watches"] >= watches + 2, (watches, st["watches"])   # re-established
    assert st["scale_patches"] == {"apps/web": 1}
    print(f"watch dropped 5 times: {HELD} held x 200, {woken.count()} requests to the "
          f"woken app all 200, {st['watches'] - watches} watches re-opened")
