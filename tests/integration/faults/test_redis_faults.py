"""Redis restarted (killed, back from its dump on the same port) and Redis
hung (SIGSTOP: connections accepted, nothing answered), each under
concurrent kept-alive load on a public and a private project, with a SIGHUP
to the gateway in the middle of the outage. Public known routes keep
serving every request; the private project fails closed (503, never a stale
200 or a wrong 401) within a bound and opens again once Redis is back.
tests/integration/store/ has the single-client versions and the log-line
accounting; this adds the concurrency, the restart with data, the signal."""
import os
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402
from faultload import Load  # noqa: E402

PUB = "app-fltpub01.apps.test"
PRIV = "app-fltpri01.apps.test"
COOKIE = {"Cookie": "gw_session=flt-sid-1"}
CONF = """
[gateway]
domain = apps.test
[redis]
address = {addr}
command_timeout = 300ms
ping_interval = 200ms
reconnect_max = 500ms
[auth]
cache_ttl = 30s
"""
FAIL_CLOSED_BOUND = 3.0
OUTAGE = 3.0


def first_after(load, t, want):
    """Seconds from t to the first outcome `want` at or after t, or None."""
    with load.lock:
        for when, o in load.outcomes:
            if when >= t and o == want:
                return when - t
    return None


@pytest.mark.parametrize("fault", ["restart", "stall"])
def test_redis_fault_under_load(redis_server, make_gateway, backend, fault):
    r = redis_server
    r.put_route(PUB, backend.addr)
    r.put_route(PRIV, backend.addr, visibility="private")
    r.r.hset("gw:session:flt-sid-1", mapping={"user": "ann", "expires": int(time.time()) + 600})
    r.r.sadd("gw:members:app-fltpri01", "ann")
    r.r.save()          # what a restart comes back with
    g = make_gateway({}, config=CONF.format(addr=r.addr))
    gwtest.wait_for(lambda: g.request("GET", "/echo", PRIV, headers=COOKIE)[0].status == 200,
                    timeout=5)
    pub = Load(g.port, PUB, threads=6)
    priv = Load(g.port, PRIV, threads=2, headers=COOKIE)
    with pub, priv:
        pub.wait_count(50)
        priv.wait_count(20)
        t_fault = time.monotonic()
        if fault == "restart":
            r.stop()
        else:
            os.kill(r.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(OUTAGE / 2)
            g.proc.send_signal(signal.SIGHUP)
            time.sleep(OUTAGE / 2)
        finally:
            if fault == "restart":
                r.start()                      # same port, loads dump.rdb
            else:
                os.kill(r.proc.pid, signal.SIGCONT)
        t_back = time.monotonic()
        gwtest.wait_for(lambda: first_after(priv, t_back, 200) is not None, timeout=8)
        time.sleep(0.3)
    closed = first_after(priv, t_fault, 503)
    reopened = first_after(priv, t_back, 200)
    assert g.proc.poll() is None
    assert pub.count() > 100
    assert pub.bad() == [] and pub.reconnects == 0, (set(pub.bad()), pub.reconnects)
    # Private: 200 before, 503 during, 200 after; nothing else, no hang.
    assert set(priv.statuses()) <= {200, 503}, set(priv.statuses())
    assert priv.reconnects == 0
    assert closed is not None and closed < FAIL_CLOSED_BOUND, closed
    # No 200 from a cached decision after the fail-closed point (a 100 ms
    # margin for an exchange decided just before it and finished after).
    t_closed = t_fault + closed + 0.1
    assert 200 not in [o for t, o in priv.outcomes if t_closed <= t < t_back]
    assert reopened < 6, reopened
    assert g.request("GET", "/echo", "app-unknown9.apps.test")[0].status == 404
    print(f"{fault}: private closed {closed * 1000:.0f} ms after the fault, open again "
          f"{reopened * 1000:.0f} ms after Redis came back; {pub.count()} public "
          f"requests all 200")
