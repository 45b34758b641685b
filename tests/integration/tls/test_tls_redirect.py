"""The plain-HTTP listener redirects routed hosts to https:// (301/302/307/
308 per [tls] redirect; non-GET/HEAD always keeps its method: 308, or 307
when the configured status is temporary). The Location is built from the
normalised routed host, redirect_port and the path+query: no open
redirect. ACME http-01 challenges go to acme_backend, or are routed
normally without one, and are never redirected."""
import json

import pytest

import gwtest
from tlstest import APPS

HOST = f"a.{APPS}"


def redirecting(backend, make_tls_gateway, code="301", port=None, extra=""):
    return make_tls_gateway({HOST: [backend.addr]}, config=(
        f"redirect = {code}\nredirect_port = {port or 8443}\n{extra}"))


@pytest.mark.parametrize("code,method,expect", [
    ("301", "GET", 301), ("301", "HEAD", 301), ("301", "POST", 308), ("301", "PUT", 308),
    ("308", "GET", 308), ("308", "DELETE", 308),
    ("302", "GET", 302), ("302", "POST", 307), ("307", "GET", 307), ("307", "PATCH", 307),
])
def test_status_per_method_and_config(backend, make_tls_gateway, code, method, expect):
    g = redirecting(backend, make_tls_gateway, code)
    r, body = g.request(method, "/p/q?x=1&y=%20z", HOST,
                        body=b"data" if method in ("POST", "PUT", "PATCH") else None)
    assert r.status == expect
    assert r.getheader("Location") == f"https://{HOST}:8443/p/q?x=1&y=%20z"
    assert r.getheader("Strict-Transport-Security") is None  # never over http
    assert backend.stats()["requests"] == 1  # only our stats call: nothing forwarded


def test_location_uses_the_normalised_routed_host(backend, make_tls_gateway):
    g = redirecting(backend, make_tls_gateway, port=443)
    for host in (HOST.upper() + ":80", HOST + ".", "A." + APPS + ":8080"):
        r, _ = g.request("GET", "/x", host)
        assert r.status == 301
        assert r.getheader("Location") == f"https://{HOST}/x"  # port 443 is implied
    # absolute-form target: the authority in it is the host
    out = g.raw(f"GET http://{HOST.upper()}/abs?q HTTP/1.1\r\nHost: {HOST}\r\n"
                "Connection: close\r\n\r\n".encode())
    assert gwtest.status_of(out) == 301
    assert f"Location: https://{HOST}/abs?q\r\n".encode() in out


def test_path_cannot_change_the_authority(backend, make_tls_gateway):
    g = redirecting(backend, make_tls_gateway, port=443)
    for target, loc in (("//evil.example/x", f"https://{HOST}//evil.example/x"),
                        ("/@evil.example", f"https://{HOST}/@evil.example"),
                        ("/%2F%2Fevil.example", f"https://{HOST}/%2F%2Fevil.example")):
        out = g.raw(f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
                    .encode())
        assert gwtest.status_of(out) == 301
        assert f"\r\nLocation: {loc}\r\n".encode() in out
    # a Host that is not a plain name never gets as far as a redirect
    for host in ("evil.example@" + HOST, HOST + "/x", "[::1"):
        out = g.raw(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                    .encode())
        assert gwtest.status_of(out) == 400
        assert b"Location" not in out


def test_unrouted_host_is_not_redirected(backend, make_tls_gateway):
    g = redirecting(backend, make_tls_gateway)
    r, _ = g.request("GET", "/", "evil.example.com")
    assert r.status == 404
    assert r.getheader("Location") is None


def test_redirect_keeps_the_connection(backend, make_tls_gateway):
    g = redirecting(backend, make_tls_gateway)
    out = g.raw(f"GET /1 HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
                f"GET /2 HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    rs = gwtest.split_responses(out)
    assert [(s, h["location"]) for s, h, _ in rs] == [
        (301, f"https://{HOST}:8443/1"), (301, f"https://{HOST}:8443/2")]


def test_https_is_not_redirected(backend, make_tls_gateway):
    g = redirecting(backend, make_tls_gateway)
    r, body, _ = g.https("GET", "/echo", HOST)
    assert r.status == 200


def test_trusted_proxy_that_terminated_tls_is_not_redirected(backend, make_tls_gateway):
    g = redirecting(backend, make_tls_gateway,
                    extra="[gateway]\ntrusted_proxies = 127.0.0.0/8\n")
    r, body = g.request("GET", "/echo", HOST, headers={"X-Forwarded-Proto": "https"})
    assert r.status == 200
    r, _ = g.request("GET", "/echo", HOST, headers={"X-Forwarded-Proto": "http"})
    assert r.status == 301


def test_redirect_off_proxies_plain_http(tgw):
    r, body = tgw.request("GET", "/echo", HOST)
    assert r.status == 200
    assert ["X-Forwarded-Proto", "http"] in json.loads(body)["headers"]


def test_acme_challenge_goes_to_the_solver(backend, make_tls_gateway):
    solver = gwtest.Backend()
    try:
        g = redirecting(backend, make_tls_gateway, extra=f"acme_backend = {solver.addr}\n")
        path = "/.well-known/acme-challenge/tok-123"
        # routed and unrouted names alike: a name is validated before it
        # has a route or a certificate
        for host in (HOST, "new-custom.example.com"):
            r, body = g.request("GET", path, host)
            assert r.status == 200
            assert json.loads(body)["path"] == path
        assert solver.stats()["requests"] == 3
        assert backend.stats()["requests"] == 1
        # other paths on the same host are still redirected
        r, _ = g.request("GET", "/.well-known/other", HOST)
        assert r.status == 301
        # over HTTPS the path is an ordinary one, routed to the app
        r, body, _ = g.https("GET", path, HOST)
        assert r.status == 200
        assert backend.stats()["requests"] == 3
    finally:
        solver.stop()


def test_acme_challenge_without_solver_is_routed_not_redirected(backend, make_tls_gateway):
    g = redirecting(backend, make_tls_gateway)
    path = "/.well-known/acme-challenge/tok-456"
    r, body = g.request("GET", path, HOST)
    assert r.status == 200
    assert json.loads(body)["path"] == path
    r, _ = g.request("GET", path, "unrouted.example.com")
    assert r.status == 404
