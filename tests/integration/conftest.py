"""Shared fixtures: every test gets its own backend and gateway processes on
free loopback ports, torn down afterwards whatever happened."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

import gwtest  # noqa: E402


@pytest.fixture
def backend():
    b = gwtest.Backend()
    yield b
    b.stop()


@pytest.fixture
def make_gateway(tmp_path):
    """make_gateway(routes={host: [addr...]}, config="...") -> Gateway."""
    started = []

    def make(routes, config="", workers=1, listen=None, subdir=None, env=None):
        d = tmp_path / (subdir or f"gw{len(started)}")
        d.mkdir()
        g = gwtest.Gateway(d, routes, config, workers, listen, env=env)
        started.append(g)
        return g

    yield make
    failures = []
    for g in started:
        try:
            rc = g.stop()
            if rc not in (0, -15):
                failures.append(f"gateway exited with {rc}\n{g.stderr()[-3000:]}")
            g.check_clean()
        except AssertionError as e:
            failures.append(str(e))
    if failures:
        pytest.fail("\n".join(failures))


@pytest.fixture
def gw(backend, make_gateway):
    """A gateway routing app.test to one backend, with short timeouts."""
    return make_gateway({"app.test": [backend.addr]}, config="""
[client]
header_timeout = 2s
body_timeout = 3s
[upstream]
first_byte_timeout = 2s
connect_timeout = 1s
""")


@pytest.fixture
def redis_server(tmp_path):
    d = tmp_path / "redis"
    d.mkdir()
    r = gwtest.Redis(d)
    yield r
    r.stop()


@pytest.fixture
def rgw(redis_server, make_gateway):
    """A gateway on Redis (domain apps.test, login page configured), no
    static routes, waiting until it is in sync."""
    g = make_gateway({}, config=f"""
[gateway]
domain = apps.test
[redis]
address = {redis_server.addr}
reconnect_max = 300ms
command_timeout = 500ms
[auth]
login_url = https://login.apps.test/login
[upstream]
connect_timeout = 1s
""")
    g.redis = redis_server
    gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=5)
    return g
