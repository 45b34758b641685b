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


def _raw(world, req):
    return world.raw((req + "Connection: close\r\n\r\n").encode())


@pytest.mark.parametrize("target", [
    "/../echo", "/./echo", "//echo", "///echo", "/%2e%2e/echo", "/%2E%2E%2Fecho",
    "/%2F%2Fecho", "/echo%2F..%2F..%2F", "/.%2e/echo", "/..%5cecho", "/echo/..;/",
    "/_gateway/wake", "/_gateway/wake?x=1", "/%5f%67ateway/wake", "*",
    f"http://{PRIV}/../echo", f"HTTP://{PRIV.upper()}//echo", f"https://{PRIV}/echo",
    f"http://{PRIV}:80/echo", f"http://{PRIV}.:80/echo",
])
@pytest.mark.parametrize("who", ["no cookie", "non-member"])
def test_path_tricks_never_open_a_private_project(world, backend, target, who):
    before = backend.stats()["requests"]
    cookie = "" if who == "no cookie" else "Cookie: gw_session=bob-sid\r\n"
    for method in ("GET", "OPTIONS", "HEAD", "POST"):
        body = "Content-Length: 0\r\n" if method == "POST" else ""
        resp = _raw(world, f"{method} {target} HTTP/1.1\r\nHost: {PRIV}\r\n{cookie}{body}")
        st = gwtest.status_of(resp)
        assert st in (400, 401, 403), (method, target, resp[:300])
    # + 1: the /stats request itself
    assert backend.stats()["requests"] == before + 1, "a refused request reached the app"


def test_absolute_form_with_another_host_goes_there_not_to_private(world, backend):
    # The target's authority wins over Host: PUB answers, as PUB; PRIV is
    # neither opened nor told anything.
    resp = _raw(world, f"GET http://{PUB}/echo HTTP/1.1\r\nHost: {PRIV}\r\n")
    assert gwtest.status_of(resp) == 200
    body = json.loads(resp.split(b"\r\n\r\n", 1)[1])
    assert dict((k.lower(), v) for k, v in body["headers"])["host"] == PUB
    # and the other way round, a private target behind a public Host
    for t in (f"http://{PRIV}/echo", f"http://{PRIV.upper()}:80/echo"):
        resp = _raw(world, f"GET {t} HTTP/1.1\r\nHost: {PUB}\r\n")
        assert gwtest.status_of(resp) == 401, resp[:200]
    resp = _raw(world, f"OPTIONS * HTTP/1.1\r\nHost: {PRIV}\r\n")
    assert gwtest.status_of(resp) in (400, 401), resp[:200]


def _location(resp):
    head = resp.split(b"\r\n\r\n")[0].decode("latin-1")
    locs = [l.split(":", 1)[1].strip() for l in head.split("\r\n")[1:]
            if l.lower().startswith("location:")]
    assert len(locs) == 1, head
    return locs[0]


@pytest.mark.parametrize("target", [
    "//evil.example/x", "/\\evil.example", "/%2F%2Fevil.example", "/%5C%5Cevil.example",
    "/@evil.example", "/x@evil.example/", "/%40evil.example", "/x?return_to=https://evil.example",
    "/x?next=//evil.example&return_to=%2F%2Fevil.example", "/%0d%0aLocation:%20https://evil.example",
    "/%0aSet-Cookie:%20a=b", "/x#@evil.example", "/.evil.example", "/:@evil.example",
    "/javascript:alert(1)", "/" + "a" * 3000, f"http://{PRIV}//evil.example/",
    f"http://{PRIV}:80/x?y=//evil.example",
])
@pytest.mark.parametrize("extra", [
    "", "X-Forwarded-Host: evil.example\r\n", "X-Forwarded-Proto: javascript\r\n",
    "Forwarded: host=evil.example;proto=https\r\n", "X-Original-URL: //evil.example/\r\n",
])
def test_return_to_only_points_back_here(world, target, extra):
    resp = _raw(world, f"GET {target} HTTP/1.1\r\nHost: {PRIV}\r\nAccept: text/html\r\n{extra}")
    st = gwtest.status_of(resp)
    assert st in (302, 400, 431), resp[:300]
    if st != 302:
        return
    loc = _location(resp)
    assert not any(ch in loc for ch in "\r\n\t "), loc
    assert loc.startswith("https://login.apps.test/login?return_to="), loc
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
    assert list(q) == ["return_to"] and len(q["return_to"]) == 1, q
    back = urllib.parse.urlsplit(q["return_to"][0])
    assert back.scheme in ("http", "https"), back
    assert back.hostname.rstrip(".") == PRIV, back
    assert back.username is None and back.password is None, back
    assert back.netloc.lower().split(":")[0].rstrip(".") == PRIV, back
    # a browser resolving it against our origin lands on our host too
    joined = urllib.parse.urljoin(f"http://{PRIV}/", q["return_to"][0])
    assert urllib.parse.urlsplit(joined).hostname.rstrip(".") == PRIV, joined


@pytest.mark.parametrize("host", [f"{PRIV}:80", PRIV.upper(), f"{PRIV}.", f"{PRIV}.:8080"])
def test_return_to_keeps_the_host_as_asked(world, host):
    resp = _raw(world, f"GET /a?b=c HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\n")
    assert gwtest.status_of(resp) == 302
    back = urllib.parse.urlsplit(urllib.parse.parse_qs(
        urllib.parse.urlsplit(_location(resp)).query)["return_to"][0])
    assert back.hostname.rstrip(".") == PRIV and back.path == "/a" and back.query == "b=c"
