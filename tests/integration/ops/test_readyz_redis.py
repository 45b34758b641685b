"""/readyz and Redis: [admin] readyz_redis = never | startup | always."""
import pytest

import gwtest


def readyz(g):
    status, _, body = g.admin_get("/readyz")
    return status, body


def redis_gateway(make_gateway, port, policy, workers=1):
    return make_gateway({}, workers=workers, config=f"""
[redis]
address = 127.0.0.1:{port}
reconnect_max = 200ms
command_timeout = 300ms
connect_timeout = 200ms
[admin]
readyz_redis = {policy}
listen = 127.0.0.1:{gwtest.free_port()}
""")


@pytest.mark.parametrize("workers", [1, 2])
def test_startup_waits_for_first_route_load_then_survives_outages(tmp_path, make_gateway, workers):
    port = gwtest.free_port()
    g = redis_gateway(make_gateway, port, "startup", workers)
    assert readyz(g) == (503, "not ready: routes not loaded from Redis yet\n")
    r = gwtest.Redis(tmp_path, port=port)
    try:
        gwtest.wait_for(lambda: readyz(g)[0] == 200, timeout=10)
        seen = g.stderr().count("unreachable")
        r.stop()
        gwtest.wait_for(lambda: g.stderr().count("unreachable") > seen, timeout=10)
        # stale-if-error: known routes still serve, so still ready
        assert readyz(g)[0] == 200
    finally:
        r.stop()


def test_always_follows_redis(tmp_path, make_gateway):
    port = gwtest.free_port()
    r = gwtest.Redis(tmp_path, port=port)
    try:
        g = redis_gateway(make_gateway, port, "always")
        gwtest.wait_for(lambda: readyz(g)[0] == 200, timeout=10)
        r.stop()
        gwtest.wait_for(lambda: readyz(g) == (503, "not ready: not in sync with Redis\n"),
                        timeout=10)
        r.start()
        gwtest.wait_for(lambda: readyz(g)[0] == 200, timeout=10)
    finally:
        r.stop()


def test_never_ignores_redis(make_gateway):
    g = redis_gateway(make_gateway, gwtest.free_port(), "never")   # nothing there
    assert readyz(g) == (200, "ready\n")
