"""Private projects: the authorization matrix, cookie hygiene, bypass attempts."""
import json
import os
import sys
import time
import urllib.parse

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402

PRIV = "app-priv0001.apps.test"
PUB = "app-pub00001.apps.test"
PROJECT = "app-priv0001"
SID = "s3cr3t-session-id-7f9a2c"


@pytest.fixture
def world(rgw, backend):
    r = rgw.redis
    r.put_route(PRIV, backend.addr, visibility="private")
    r.put_route(PUB, backend.addr)
    r.r.hset(f"gw:session:{SID}", mapping={"user": "ann", "expires": int(time.time()) + 3600})
    r.r.sadd(f"gw:members:{PROJECT}", "ann")
    r.r.hset("gw:session:bob-sid", mapping={"user": "bob", "expires": int(time.time()) + 3600})
    r.r.hset("gw:session:old-sid", mapping={"user": "ann", "expires": int(time.time()) - 5})
    gwtest.wait_for(lambda: status(rgw, PUB) == 200 and status(rgw, PRIV) == 401)
    return rgw


def status(g, host, cookie=None, path="/echo", headers=None):
    h = dict(headers or {})
    if cookie is not None:
        h["Cookie"] = cookie
    r, _ = g.request("GET", path, host, headers=h, timeout=5)
    return r.status


def test_matrix(world, backend):
    g = world
    assert status(g, PRIV) == 401                                  # no cookie
    assert status(g, PRIV, "gw_session=nonexistent") == 401         # unknown session
    assert status(g, PRIV, "gw_session=old-sid") == 401             # expired
    assert status(g, PRIV, "gw_session=bob-sid") == 403             # not a member
    assert status(g, PRIV, f"gw_session={SID}") == 200              # member
    assert status(g, PRIV, "gw_session=") == 401                    # empty
    assert status(g, PRIV, "gw_session=" + "x" * 5000) == 401       # oversized
    assert status(g, PRIV, 'gw_session="bad;id"') == 401
    assert status(g, PUB) == 200                                    # public needs nothing
    r, _ = g.request("GET", "/echo", PRIV, timeout=5)
    assert r.getheader("WWW-Authenticate")


def test_browser_gets_login_redirect_back_to_us(world):
    r, _ = world.request("GET", "/dash/board?x=1&y=%2F", PRIV,
                         headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.status == 302
    loc = r.getheader("Location")
    assert loc.startswith("https://login.apps.test/login?return_to=")
    back = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)["return_to"][0]
    parts = urllib.parse.urlsplit(back)
    assert parts.hostname == PRIV
    assert parts.path == "/dash/board" and parts.query == "x=1&y=%2F"
    # a navigation per Fetch metadata, too; a POST or an API call is not one
    r, _ = world.request("GET", "/", PRIV, headers={"Sec-Fetch-Mode": "navigate"})
    assert r.status == 302
    r, _ = world.request("POST", "/", PRIV, body=b"x", headers={"Accept": "text/html"})
    assert r.status == 401


def test_no_open_redirect(world):
    # The target cannot smuggle another host into return_to: it is rebuilt
    # from the routed host plus an origin-form path.
    for target in ["//evil.example/x", "/\\evil.example", "/x?return_to=https://evil.example"]:
        resp = world.raw(f"GET {target} HTTP/1.1\r\nHost: {PRIV}\r\nAccept: text/html\r\n"
                         f"Connection: close\r\n\r\n".encode())
        head = resp.split(b"\r\n\r\n")[0].decode()
        assert gwtest.status_of(resp) in (302, 400), head
        if gwtest.status_of(resp) == 302:
            loc = [l for l in head.split("\r\n") if l.lower().startswith("location:")][0]
            back = urllib.parse.parse_qs(urllib.parse.urlsplit(loc.split(":", 1)[1].strip())
                                         .query)["return_to"][0]
            assert urllib.parse.urlsplit(back).hostname == PRIV, back


def test_session_cookie_never_reaches_apps(world, backend):
    g = world
    for host in (PRIV, PUB):
        r, body = g.request("GET", "/echo", host,
                            headers={"Cookie": f"theme=dark; gw_session={SID}; lang=en"})
        assert r.status == 200
        info = json.loads(body)
        cookies = [v for k, v in info["headers"] if k.lower() == "cookie"]
        assert cookies == ["theme=dark; lang=en"], cookies
        assert SID not in body.decode()
    # a Cookie field holding only the session disappears entirely
    r, body = g.request("GET", "/echo", PUB, headers={"Cookie": f"gw_session={SID}"})
    assert not [k for k, _ in json.loads(body)["headers"] if k.lower() == "cookie"]
    # two Cookie fields
    resp = g.raw(f"GET /echo HTTP/1.1\r\nHost: {PRIV}\r\nCookie: a=1\r\n"
                 f"Cookie: gw_session={SID}\r\nConnection: close\r\n\r\n".encode())
    assert gwtest.status_of(resp) == 200 and SID.encode() not in resp
    # and no log line carries it
    assert SID not in g.stderr()
    assert not any(SID in l for l in g.access_lines())


def test_revocation_is_immediate(world):
    g = world
    assert status(g, PRIV, f"gw_session={SID}") == 200   # now cached
    world.redis.r.delete(f"gw:session:{SID}")
    world.redis.r.publish("gw:events", f"session {SID}")
    took = gwtest.wait_for(lambda: status(g, PRIV, f"gw_session={SID}") == 401, timeout=1.5)
    print(f"revocation effective after {took * 1000:.0f} ms")


def test_membership_change_is_immediate(world):
    g = world
    assert status(g, PRIV, "gw_session=bob-sid") == 403  # cached denial
    world.redis.r.sadd(f"gw:members:{PROJECT}", "bob")
    world.redis.r.publish("gw:events", f"members {PROJECT}")
    gwtest.wait_for(lambda: status(g, PRIV, "gw_session=bob-sid") == 200, timeout=1.5)
    world.redis.r.srem(f"gw:members:{PROJECT}", "bob")
    world.redis.r.publish("gw:events", f"members {PROJECT}")
    gwtest.wait_for(lambda: status(g, PRIV, "gw_session=bob-sid") == 403, timeout=1.5)


def test_route_turned_private_applies_at_once(world, backend):
    g = world
    assert status(g, PUB) == 200
    world.redis.put_route(PUB, backend.addr, visibility="private")
    gwtest.wait_for(lambda: status(g, PUB) == 401, timeout=1.5)


@pytest.mark.parametrize("req", [
    # host spelling variants still route to the private project
    f"GET /echo HTTP/1.1\r\nHost: {PRIV.upper()}\r\n\r\n",
    f"GET /echo HTTP/1.1\r\nHost: {PRIV}.\r\n\r\n",
    f"GET /echo HTTP/1.1\r\nHost: {PRIV}:80\r\n\r\n",
    # absolute-form target wins over Host (RFC 9112 3.2.2)
    f"GET http://{PRIV}/echo HTTP/1.1\r\nHost: {PUB}\r\n\r\n",
    # X-Forwarded-Host from an untrusted peer does not route
    f"GET /echo HTTP/1.1\r\nHost: {PRIV}\r\nX-Forwarded-Host: {PUB}\r\n\r\n",
    # another user's cookie name variants are not the session
    f"GET /echo HTTP/1.1\r\nHost: {PRIV}\r\nCookie: GW_SESSION={SID}\r\n\r\n",
    f"GET /echo HTTP/1.1\r\nHost: {PRIV}\r\nCookie: x_gw_session={SID}\r\n\r\n",
])
def test_private_spellings_need_auth(world, req):
    resp = world.raw((req[:-2] + "Connection: close\r\n\r\n").encode())
    assert gwtest.status_of(resp) == 401, resp[:200]


@pytest.mark.parametrize("req", [
    f"GET /echo HTTP/1.1\r\nHost: {PUB}\r\nHost: {PRIV}\r\n\r\n",
    f"GET /echo HTTP/1.1\r\nHost: {PRIV}\r\nHost: {PUB}\r\n\r\n",
    f"GET /echo HTTP/1.1\r\nHost: {PUB}@{PRIV}\r\n\r\n",
    f"GET /echo HTTP/1.1\r\nHost: {PRIV}@{PUB}\r\n\r\n",
    f"GET /echo HTTP/1.1\r\nHost: {PUB} {PRIV}\r\n\r\n",
    f"GET http://{PUB}@{PRIV}/echo HTTP/1.1\r\nHost: {PUB}\r\n\r\n",
])
def test_ambiguous_hosts_rejected(world, req):
    resp = world.raw((req[:-2] + "Connection: close\r\n\r\n").encode())
    assert gwtest.status_of(resp) == 400, resp[:200]


def test_x_forwarded_host_to_public_reaches_only_public(world, backend):
    # Host says public: the public app answers, whatever XFH claims.
    r, body = world.request("GET", "/echo", PUB, headers={"X-Forwarded-Host": PRIV})
    assert r.status == 200
    sent = dict((k.lower(), v) for k, v in json.loads(body)["headers"])
    assert sent["host"] == PUB and sent["x-forwarded-host"] == PUB


def test_refusals_are_rate_limited_in_the_error_log(world):
    """401/403/302 and the 503s of a private project while Redis is down
    are one line each in the access log, a sample in the error log."""
    g = world
    for _ in range(40):
        assert status(g, PRIV) == 401
        assert status(g, PRIV, "gw_session=bob-sid") == 403
    world.redis.stop()
    gwtest.wait_for(lambda: status(g, PRIV, f"gw_session={SID}") == 503, timeout=5)
    for _ in range(40):
        assert status(g, PRIV, f"gw_session={SID}") == 503
        assert status(g, "app-unknown7.apps.test") == 503
    err = [l for l in g.stderr().splitlines() if " proxy[" in l]
    refusals = [l for l in err if any(t in l for t in (
        "not signed in", "not a member", "cannot check authorization",
        "unknown host while Redis"))]
    assert 10 <= len(refusals) <= 25, len(refusals)
    assert sum(1 for l in g.access_lines() if " 401 " in l or " 403 " in l) >= 80
