"""What Redis holds or sends that the gateway must survive: malformed
events, keys of the wrong type, route hashes with fields it must not act
on. None of it may stall the resync, cost the table its authority, or reach
the Kubernetes API; each is logged (rate-limited) and skipped."""
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402

PRIV = "app-datapri1.apps.test"
GOOD = "app-datagood.apps.test"
BAD = "app-databad1.apps.test"
UNKNOWN = "app-nothere1.apps.test"
COOKIE = {"Cookie": "gw_session=data-sid-1"}


def get(g, host, headers=None):
    try:
        r, _ = g.request("GET", "/echo", host, headers=headers, timeout=5)
        return r.status
    except OSError:
        return None


def conf(addr, extra=""):
    return f"""
[gateway]
domain = apps.test
[redis]
address = {addr}
reconnect_max = 300ms
command_timeout = 500ms
[auth]
cache_ttl = 30s
{extra}"""


@pytest.mark.parametrize("event", [
    "route bad host!", "route ", "route", "route a..b", "route " + "x" * 5000,
    "frobnicate app-x", "session", "members", "", " ", "session ",
])
def test_malformed_event_costs_nothing(redis_server, make_gateway, backend, event):
    r = redis_server
    r.put_route(PRIV, backend.addr, visibility="private")
    r.r.hset("gw:session:data-sid-1", mapping={"user": "ann", "expires": int(time.time()) + 600})
    r.r.sadd("gw:members:app-datapri1", "ann")
    g = make_gateway({}, config=conf(r.addr))
    gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=5)
    assert get(g, PRIV, COOKIE) == 200          # the decision is cached now
    assert r.r.publish("gw:events", event) == 1
    # Any later event on the same connection is handled after this one.
    r.r.publish("gw:events", f"route {UNKNOWN}")
    time.sleep(0.2)
    assert get(g, UNKNOWN) == 404, "a malformed event took the table's authority"
    # The cache is still on: a change nobody announced is not seen yet.
    r.r.srem("gw:members:app-datapri1", "ann")
    assert get(g, PRIV, COOKIE) == 200, "a malformed event switched the cache off"
    assert "ignored" in g.stderr()
    assert "Redis lost" not in g.stderr()


def test_event_flood_is_rate_limited(rgw):
    for i in range(300):
        rgw.redis.r.publish("gw:events", f"route bad host {i}!")
    rgw.redis.r.publish("gw:events", "session")
    time.sleep(0.5)
    lines = [l for l in rgw.stderr().splitlines() if " routes[" in l and "ignored" in l]
    assert 1 <= len(lines) <= 12, len(lines)
    assert get(rgw, UNKNOWN) == 404


def test_wrong_type_route_key_does_not_stall_resync(redis_server, make_gateway, backend):
    r = redis_server
    r.put_route(GOOD, backend.addr)
    r.r.set(f"gw:route:{BAD}", "notahash")
    r.r.sadd("gw:routes", BAD)
    r.r.sadd("gw:routes", "not a host!")
    g = make_gateway({}, config=conf(r.addr))
    gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=5)
    assert "2 refused" in g.stderr()
    assert get(g, GOOD) == 200
    assert get(g, BAD) == 404
    assert get(g, UNKNOWN) == 404


def test_route_key_turned_wrong_type_stops_serving(rgw, backend):
    r = rgw.redis
    r.put_route(GOOD, backend.addr)
    gwtest.wait_for(lambda: get(rgw, GOOD) == 200)
    r.r.delete(f"gw:route:{GOOD}")
    r.r.set(f"gw:route:{GOOD}", "notahash")
    r.r.publish("gw:events", f"route {GOOD}")
    gwtest.wait_for(lambda: get(rgw, GOOD) == 404, timeout=2)
    assert "is not a hash" in rgw.stderr()


def test_routes_set_of_wrong_type_is_retried(redis_server, make_gateway, backend):
    r = redis_server
    r.r.set("gw:routes", "notaset")
    g = make_gateway({}, config=conf(r.addr))
    gwtest.wait_for(lambda: "SMEMBERS gw:routes" in g.stderr(), timeout=5)
    assert get(g, UNKNOWN) == 503        # no table: unknown hosts may exist
    r.r.delete("gw:routes")
    r.put_route(GOOD, backend.addr)
    gwtest.wait_for(lambda: get(g, GOOD) == 200 and get(g, UNKNOWN) == 404, timeout=5)
    assert "in sync with Redis" in g.stderr()


@pytest.mark.parametrize("field,value", [
    ("namespace", "../.."), ("namespace", "a/b"), ("namespace", "Team1"),
    ("namespace", "-team"), ("namespace", "team-"), ("namespace", "a" * 64),
    ("namespace", ""), ("namespace", "a%2Fb"),
    ("deployment", "web/../../secrets"), ("deployment", "web?x=1"),
    ("deployment", "web..v2"), ("deployment", ".web"), ("deployment", "Web"),
    ("service", "svc#frag"), ("service", ".."), ("service", "web.v2"),
    ("port", "0"), ("port", "65536"), ("port", "80x"), ("port", "-1"),
    ("port", " 80"), ("port", ""),
    ("idle_timeout", "10s"), ("idle_timeout", "-5"), ("idle_timeout", "99999999999"),
    ("idle_timeout", "2592001"),
    ("project", "a" * 64), ("project", "a/b"), ("project", ""), ("project", "App"),
    ("upstream", "not-an-address"), ("upstream", "127.0.0.1:1, bogus"),
    ("upstream", ",".join(f"127.0.0.1:{1000 + i}" for i in range(65))),
], ids=lambda v: v if len(v) < 40 else v[:20] + "...")
def test_invalid_route_field_is_refused(rgw, backend, field, value):
    r = rgw.redis
    r.put_route(GOOD, backend.addr)
    gwtest.wait_for(lambda: get(rgw, GOOD) == 200)
    r.r.hset(f"gw:route:{GOOD}", field, value)
    r.r.publish("gw:events", f"route {GOOD}")
    gwtest.wait_for(lambda: get(rgw, GOOD) == 404, timeout=2)
    assert f"route {GOOD} refused" in rgw.stderr()
    # fixed again: served again
    if field == "upstream":
        r.r.hset(f"gw:route:{GOOD}", field, backend.addr)
    else:
        r.r.hdel(f"gw:route:{GOOD}", field)
    r.r.publish("gw:events", f"route {GOOD}")
    gwtest.wait_for(lambda: get(rgw, GOOD) == 200, timeout=2)


@pytest.mark.parametrize("field,value", [
    ("namespace", "team-1"), ("deployment", "web2"), ("service", "s"),
    ("port", "1"), ("port", "65535"), ("idle_timeout", "0"), ("idle_timeout", "2592000"),
    ("project", "a" * 63), ("project", "app_x-1"), ("colour", "blue"),
])
def test_valid_route_fields_are_accepted(rgw, backend, field, value):
    r = rgw.redis
    r.put_route(GOOD, backend.addr, **{field: value})
    gwtest.wait_for(lambda: get(rgw, GOOD) == 200, timeout=2)


def test_deployment_subdomain_needs_a_service_name(rgw, backend):
    # Deployments may have dots (DNS-1123 subdomains); Services may not,
    # so such a Deployment needs its service field.
    r = rgw.redis
    r.put_route(GOOD, backend.addr, deployment="web.v2", service="web-v2")
    gwtest.wait_for(lambda: get(rgw, GOOD) == 200, timeout=2)
    r.r.hdel(f"gw:route:{GOOD}", "service")
    r.r.publish("gw:events", f"route {GOOD}")
    gwtest.wait_for(lambda: get(rgw, GOOD) == 404, timeout=2)
    assert "cannot name the Service" in rgw.stderr()


def test_refused_at_resync_is_503_while_not_in_sync(redis_server, make_gateway, backend):
    # A refused route is exactly a missing one: 404 in sync, 503 without Redis.
    r = redis_server
    r.put_route(BAD, backend.addr, namespace="../..")
    g = make_gateway({}, config=conf(r.addr))
    gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=5)
    assert "1 refused" in g.stderr()
    assert get(g, BAD) == 404
    r.stop()
    gwtest.wait_for(lambda: get(g, BAD) == 503, timeout=5)
