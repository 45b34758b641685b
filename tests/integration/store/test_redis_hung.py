"""A hung Redis (SIGSTOP: the kernel still accepts TCP connections, nothing
answers) must look like a down one: private projects fail closed within a
bound, public known routes keep serving, the log gets one line per state
change and not one per attempt, and everything recovers after SIGCONT."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402

PUB = "app-hungpub1.apps.test"
PRIV = "app-hungpri1.apps.test"
COOKIE = {"Cookie": "gw_session=hung-sid-1"}
# ping_interval + command_timeout is when a hung Redis is noticed; the
# bound below leaves a wide margin for a loaded machine.
CONF = """
[gateway]
domain = apps.test
[redis]
address = {addr}
command_timeout = 300ms
ping_interval = 200ms
reconnect_max = 1s
[auth]
cache_ttl = 30s
"""
FAIL_CLOSED_BOUND = 3.0


def get(g, host, headers=None, timeout=5):
    try:
        r, _ = g.request("GET", "/echo", host, headers=headers, timeout=timeout)
        return r.status
    except OSError:
        return None


def redis_lines(text):
    return [l for l in text.splitlines() if " redis[" in l or " routes[" in l]


def test_hung_redis(redis_server, make_gateway, backend):
    r = redis_server
    r.put_route(PUB, backend.addr)
    r.put_route(PRIV, backend.addr, visibility="private")
    r.r.hset("gw:session:hung-sid-1", mapping={"user": "ann", "expires": int(time.time()) + 600})
    r.r.sadd("gw:members:app-hungpri1", "ann")
    g = make_gateway({}, config=CONF.format(addr=r.addr))
    gwtest.wait_for(lambda: get(g, PUB) == 200 and get(g, PRIV, COOKIE) == 200, timeout=5)
    assert get(g, PRIV, COOKIE) == 200   # and now the decision is cached (30 s)

    stop = threading.Event()
    pub_statuses = []

    def hammer():
        while not stop.is_set():
            pub_statuses.append(get(g, PUB))
            time.sleep(0.01)

    t = threading.Thread(target=hammer, daemon=True)
    t.start()
    before = len(g.stderr())
    os.kill(r.proc.pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        try:
            # Fail closed: the cached "allow" must not outlive the lost
            # connection (a revocation published now would be missed).
            took = gwtest.wait_for(lambda: get(g, PRIV, COOKIE) == 503,
                                   timeout=FAIL_CLOSED_BOUND, step=0.05)
            print(f"private project failed closed {took * 1000:.0f} ms after SIGSTOP")
            # Stay stopped for 8 s in all; private stays closed throughout.
            while time.monotonic() - stopped_at < 8:
                assert get(g, PRIV, COOKIE) in (503, None)
                time.sleep(0.25)
            during = redis_lines(g.stderr()[before:])
        finally:
            os.kill(r.proc.pid, signal.SIGCONT)
        took = gwtest.wait_for(lambda: get(g, PRIV, COOKIE) == 200, timeout=6, step=0.05)
        print(f"recovered {took * 1000:.0f} ms after SIGCONT")
        time.sleep(0.3)
    finally:
        stop.set()
        t.join(timeout=10)
    # Per connection (commands, events) one "unreachable" line, plus the
    # routing table's "Redis lost": not one line per reconnect attempt.
    assert len(during) <= 4, "\n".join(during)
    assert sum("unreachable" in l for l in during) == 2, "\n".join(during)
    after = redis_lines(g.stderr()[before:])[len(during):]
    assert sum("connected to" in l for l in after) == 2, "\n".join(after)
    assert sum("in sync with Redis" in l for l in after) == 1, "\n".join(after)
    assert len(pub_statuses) > 50
    assert set(pub_statuses) == {200}, f"public route answered {set(pub_statuses)}"
    assert get(g, "app-unknown9.apps.test") == 404


def test_connection_up_needs_an_answer(redis_server, make_gateway, backend):
    """A Redis stopped before the gateway starts: TCP connects, nothing
    answers. The gateway must not call that "connected" (no AUTH or SELECT
    configured: it used to), and must back off instead of flapping."""
    r = redis_server
    r.put_route(PUB, backend.addr)
    os.kill(r.proc.pid, signal.SIGSTOP)
    try:
        g = make_gateway({"static.test": [backend.addr]},
                         config=CONF.format(addr=r.addr))
        time.sleep(4)
        assert get(g, "static.test") == 200
        assert get(g, PUB, timeout=5) == 503       # unknown while not in sync
        lines = redis_lines(g.stderr())
        assert not any("connected to" in l for l in lines), "\n".join(lines)
        assert len(lines) <= 2, "\n".join(lines)
    finally:
        os.kill(r.proc.pid, signal.SIGCONT)
    gwtest.wait_for(lambda: get(g, PUB) == 200, timeout=5)


def test_silent_subscriber_turns_the_cache_off(redis_server, make_gateway, backend):
    """Only the subscriber goes silent (the command connection still
    works): invalidations are lost, so the cache must go off, and a
    revocation published meanwhile must take effect through a live read."""
    sys.path.insert(0, os.path.dirname(__file__))
    from redisproxy import RedisProxy
    r = redis_server
    r.put_route(PRIV, backend.addr, visibility="private")
    r.r.hset("gw:session:hung-sid-1", mapping={"user": "ann", "expires": int(time.time()) + 600})
    r.r.sadd("gw:members:app-hungpri1", "ann")
    proxy = RedisProxy(r.port)
    try:
        g = make_gateway({}, config=CONF.format(addr=proxy.addr))
        gwtest.wait_for(lambda: get(g, PRIV, COOKIE) == 200, timeout=5)
        assert get(g, PRIV, COOKIE) == 200          # cached for 30 s
        proxy.hold_subscriber()
        r.r.delete("gw:session:hung-sid-1")
        r.r.publish("gw:events", "session hung-sid-1")   # never arrives
        took = gwtest.wait_for(lambda: get(g, PRIV, COOKIE) == 401,
                               timeout=FAIL_CLOSED_BOUND, step=0.05)
        print(f"revocation effective {took * 1000:.0f} ms after the subscriber went silent")
        assert "events:" in g.stderr() and "unreachable" in g.stderr()
    finally:
        proxy.stop()
