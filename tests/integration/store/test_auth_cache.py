"""The decision cache: bounded in time without events, never filled by a
decision that raced a revocation, and no session is good without a valid
`expires`."""
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import gwtest  # noqa: E402
from redisproxy import RedisProxy  # noqa: E402

PRIV = "app-cachepr1.apps.test"
PROJECT = "app-cachepr1"
SID = "cache-sid-0001"
COOKIE = {"Cookie": f"gw_session={SID}"}


def get(g, host, headers=None, timeout=5):
    r, _ = g.request("GET", "/echo", host, headers=headers, timeout=timeout)
    return r.status


def setup_world(r, backend, expires=True):
    r.put_route(PRIV, backend.addr, visibility="private")
    fields = {"user": "ann"}
    if expires:
        fields["expires"] = int(time.time()) + 600
    r.r.hset(f"gw:session:{SID}", mapping=fields)
    r.r.sadd(f"gw:members:{PROJECT}", "ann")


def conf(addr, ttl, extra=""):
    return f"""
[gateway]
domain = apps.test
[redis]
address = {addr}
reconnect_max = 300ms
{extra}
[auth]
cache_ttl = {ttl}
"""


def test_cached_decision_expires_without_event(redis_server, make_gateway, backend):
    setup_world(redis_server, backend)
    g = make_gateway({}, config=conf(redis_server.addr, "1500ms"))
    gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=5)
    assert get(g, PRIV, COOKIE) == 200
    t0 = time.monotonic()
    # Membership withdrawn and nobody says so: the cache may answer from
    # the old decision for at most cache_ttl.
    redis_server.r.srem(f"gw:members:{PROJECT}", "ann")
    assert get(g, PRIV, COOKIE) == 200, "decision not cached at all"
    took = gwtest.wait_for(lambda: get(g, PRIV, COOKIE) == 403, timeout=4, step=0.05)
    elapsed = time.monotonic() - t0
    print(f"cached decision expired after {elapsed * 1000:.0f} ms (ttl 1500)")
    assert elapsed >= 1.0, "the cache forgot before its ttl"   # timing slack
    assert took < 3.5


def test_no_cache_with_ttl_zero(redis_server, make_gateway, backend):
    setup_world(redis_server, backend)
    g = make_gateway({}, config=conf(redis_server.addr, "0"))
    gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=5)
    assert get(g, PRIV, COOKIE) == 200
    redis_server.r.srem(f"gw:members:{PROJECT}", "ann")
    assert get(g, PRIV, COOKIE) == 403


@pytest.mark.parametrize("expires", [None, "", "soon", "-1", "1e12", "0x10", " 99999999999"])
def test_session_needs_valid_expires(redis_server, make_gateway, backend, expires):
    setup_world(redis_server, backend, expires=False)
    if expires is not None:
        redis_server.r.hset(f"gw:session:{SID}", "expires", expires)
    g = make_gateway({}, config=conf(redis_server.addr, "2s"))
    gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=5)
    assert get(g, PRIV, COOKIE) == 401
    assert "without a valid 'expires'" in g.stderr()
    assert SID not in g.stderr()


def test_revocation_racing_a_check_is_not_cached(redis_server, make_gateway, backend):
    """The session lookup has been answered by Redis (session valid) but the
    answer is still on its way when the revocation event arrives. The
    request in flight may be let through (it was decided before), but its
    decision must not be cached: the next request is refused at once."""
    setup_world(redis_server, backend)
    proxy = RedisProxy(redis_server.port)
    try:
        g = make_gateway({}, config=conf(proxy.addr, "30s",
                                         "command_timeout = 10s\nping_interval = 60s"))
        gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=5)
        proxy.hold()
        result = {}
        t = threading.Thread(target=lambda: result.update(
            status=get(g, PRIV, COOKIE, timeout=15)), daemon=True)
        t.start()
        # Redis has answered the session lookup; the gateway has not seen it.
        gwtest.wait_for(lambda: proxy.held_bytes() > 0, timeout=5)
        redis_server.r.delete(f"gw:session:{SID}")
        assert redis_server.r.publish("gw:events", f"session {SID}") == 1
        gwtest.wait_for(lambda: "session event" in g.stderr(), timeout=5)
        proxy.release()
        t.join(timeout=15)
        assert result.get("status") == 200, result   # the race happened as built
        assert get(g, PRIV, COOKIE) == 401, "a decision that raced a revocation was cached"
    finally:
        proxy.stop()
