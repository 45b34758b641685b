"""The login redirect's return_to: the normalised routing host, its port only
when not the default, and a path that always starts with '/'."""
import time
import urllib.parse

import gwtest

PRIV = "app-priv0002.apps.test"


def return_to(g, request_line, host):
    resp = g.raw(f"{request_line}\r\nHost: {host}\r\nAccept: text/html\r\n"
                 f"Connection: close\r\n\r\n".encode())
    assert gwtest.status_of(resp) == 302, resp[:300]
    head = resp.split(b"\r\n\r\n")[0].decode()
    loc = [l for l in head.split("\r\n") if l.lower().startswith("location:")][0]
    query = urllib.parse.urlsplit(loc.split(":", 1)[1].strip()).query
    return urllib.parse.parse_qs(query)["return_to"][0]


def test_return_to_uses_the_routing_host(rgw, backend):
    rgw.redis.put_route(PRIV, backend.addr, visibility="private")
    gwtest.wait_for(lambda: rgw.request("GET", "/", PRIV)[0].status == 401, timeout=5)
    cases = [
        ("GET /a/b?c=1 HTTP/1.1", "APP-PRIV0002.Apps.Test.", f"http://{PRIV}/a/b?c=1"),
        ("GET /x HTTP/1.1", f"{PRIV}:80", f"http://{PRIV}/x"),
        ("GET /x HTTP/1.1", f"{PRIV.upper()}.:8080", f"http://{PRIV}:8080/x"),
        (f"GET http://{PRIV.upper()}:80?q=1 HTTP/1.1", "ignored.test", f"http://{PRIV}/?q=1"),
        (f"GET http://{PRIV} HTTP/1.1", "ignored.test", f"http://{PRIV}/"),
    ]
    for line, host, want in cases:
        assert return_to(rgw, line, host) == want, (line, host)
