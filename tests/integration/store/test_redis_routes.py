"""Routes from Redis: live changes, Redis outages, resync."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402


def get(g, host, path="/echo", headers=None):
    try:
        r, body = g.request("GET", path, host, headers=headers, timeout=5)
        return r.status, body
    except OSError as e:
        return None, str(e).encode()


def test_route_added_changed_removed_live(rgw, backend):
    other = gwtest.Backend()
    try:
        host = "app-live0001.apps.test"
        assert get(rgw, host)[0] == 404
        rgw.redis.put_route(host, backend.addr)
        took = gwtest.wait_for(lambda: get(rgw, host)[0] == 200)
        print(f"route add served after {took * 1000:.0f} ms")
        assert backend.stats()["requests"] >= 1

        before = other.stats()["requests"]
        rgw.redis.put_route(host, other.addr)   # the app moved
        gwtest.wait_for(lambda: other.stats()["requests"] > before + 1 and
                        get(rgw, host)[0] == 200)

        rgw.redis.rm_route(host)
        gwtest.wait_for(lambda: get(rgw, host)[0] == 404)
    finally:
        other.stop()


def test_every_worker_follows(redis_server, make_gateway, backend):
    g = make_gateway({}, workers=2, config=f"[redis]\naddress = {redis_server.addr}\n")
    gwtest.wait_for(lambda: g.stderr().count("in sync with Redis") >= 2, timeout=5)
    host = "app-workers1.apps.test"
    redis_server.put_route(host, backend.addr)
    time.sleep(0.3)
    # Many fresh connections land on both workers (SO_REUSEPORT spreads them).
    assert all(get(g, host)[0] == 200 for _ in range(30))
    redis_server.rm_route(host)
    time.sleep(0.3)
    assert all(get(g, host)[0] == 404 for _ in range(30))


def test_routes_present_before_start_are_loaded(redis_server, make_gateway, backend):
    host = "app-preload1.apps.test"
    redis_server.put_route(host, backend.addr)
    g = make_gateway({}, config=f"[redis]\naddress = {redis_server.addr}\n")
    gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=5)
    assert get(g, host)[0] == 200


def test_config_routes_still_work_with_redis(redis_server, make_gateway, backend):
    g = make_gateway({"static.test": [backend.addr]},
                     config=f"[redis]\naddress = {redis_server.addr}\n")
    assert get(g, "static.test")[0] == 200


def test_redis_down_at_start(tmp_path, make_gateway, backend):
    port = gwtest.free_port()
    g = make_gateway({"static.test": [backend.addr]},
                     config=f"[redis]\naddress = 127.0.0.1:{port}\nreconnect_max = 200ms\n")
    assert get(g, "static.test")[0] == 200           # config routes serve
    assert get(g, "app-unknown1.apps.test")[0] == 503  # may exist: not 404
    d = tmp_path / "late"
    d.mkdir()
    r = gwtest.Redis(d, port=port)
    try:
        host = "app-latecome.apps.test"
        r.put_route(host, backend.addr)
        gwtest.wait_for(lambda: get(g, host)[0] == 200, timeout=5)
        assert get(g, "app-unknown1.apps.test")[0] == 404
        # one line per state change (commands, events), not one per attempt
        assert g.stderr().count("retrying with backoff") == 2
    finally:
        r.stop()


def test_redis_restart_under_traffic(rgw, backend, tmp_path):
    r = rgw.redis
    pub, priv = "app-public01.apps.test", "app-private1.apps.test"
    r.put_route(pub, backend.addr)
    r.put_route(priv, backend.addr, visibility="private")
    r.r.hset("gw:session:s1", mapping={"user": "ann", "expires": int(time.time()) + 600})
    r.r.sadd("gw:members:app-private1", "ann")
    cookie = {"Cookie": "gw_session=s1"}
    gwtest.wait_for(lambda: get(rgw, pub)[0] == 200 and get(rgw, priv, headers=cookie)[0] == 200)

    stop = threading.Event()
    statuses = []

    def hammer():
        while not stop.is_set():
            statuses.append(get(rgw, pub)[0])
            time.sleep(0.005)

    t = threading.Thread(target=hammer)
    t.start()
    try:
        time.sleep(0.2)
        r.stop()
        time.sleep(0.3)
        assert get(rgw, priv, headers=cookie)[0] == 503   # fail closed
        assert get(rgw, "app-unknown1.apps.test")[0] == 503
        r.start()                                         # same port, empty
        r.put_route(pub, backend.addr)
        r.put_route(priv, backend.addr, visibility="private")
        r.r.hset("gw:session:s1", mapping={"user": "ann", "expires": int(time.time()) + 600})
        r.r.sadd("gw:members:app-private1", "ann")
        gwtest.wait_for(lambda: get(rgw, priv, headers=cookie)[0] == 200, timeout=5)
        time.sleep(0.2)
    finally:
        stop.set()
        t.join(timeout=10)
    assert len(statuses) > 20
    assert set(statuses) == {200}, f"public route answered {set(statuses)} during the outage"
    assert get(rgw, "app-unknown1.apps.test")[0] == 404
    err = rgw.stderr()
    assert "Redis lost" in err and err.count("in sync with Redis") >= 2


def test_route_without_visibility_is_private(rgw, backend):
    host = "app-novis001.apps.test"
    r = rgw.redis.r
    r.hset(f"gw:route:{host}", mapping={"project": "app-novis001", "upstream": backend.addr})
    r.sadd("gw:routes", host)
    r.publish("gw:events", f"route {host}")
    gwtest.wait_for(lambda: get(rgw, host)[0] == 401)
