"""Host and authority abuse: every case one precise status, and nothing
but an exact routing key ever reaches an app. The cases of
tests/integration/core/test_routing.py (ports 0 and 99999, userinfo, a..b,
a space, an empty port, an unclosed bracket, empty labels, missing and
duplicate Host) are not repeated here."""
import pytest

from gwtest import status_of

LABEL63 = b"a" * 63

CASES = [
    # length: a label of 63 bytes and a name of 253 are the most DNS allows
    (b"a" * 63 + b".test", 404, None),
    (b"a" * 64 + b".test", 400, "host label too long"),
    ((LABEL63 + b".") * 3 + b"a" * 61, 404, None),                 # 253 bytes
    ((LABEL63 + b".") * 3 + b"a" * 62, 400, "host name too long"),  # 254
    (b"a" * 300 + b".test", 400, "host name too long"),
    (b"a." * 120 + b"test", 404, None),                            # 124 labels
    (b"h" * 4000, 400, "host name too long"),
    # encodings that must not alias a route
    (b"app%2etest", 400, "invalid character in host"),
    (b"%61pp.test", 400, "invalid character in host"),
    (b"\xc3\xa4pp.test", 400, "invalid character in host"),
    (b"xn--pp-via.test", 404, None),
    (b"ap\tp.test", 400, "invalid character in host"),
    (b"app.test/x", 400, "invalid character in host"),
    (b"app.test?x", 400, "invalid character in host"),
    (b"app.test#x", 400, "invalid character in host"),
    (b"app.test\x00.evil", 400, "invalid byte in a field value"),
    (b"app.test\x7f", 400, None),
    # userinfo, with and without a port or password
    (b"a@app.test:80", 400, "userinfo in the authority"),
    (b"user:pw@app.test", 400, "userinfo in the authority"),
    # ports
    (b":80", 400, "empty host"),
    (b"", 400, "empty host"),
    (b"app.test:80:80", 400, "invalid port"),
    (b"app.test:+80", 400, "invalid port"),
    (b"app.test:0080", 200, None),
    # IP literals: only the exact route key matches; other spellings of
    # the same address are just unknown names
    (b"127.0.0.1", 200, None),
    (b"127.0.0.1:8080", 200, None),
    (b"127.1", 404, None),
    (b"0x7f.0.0.1", 404, None),
    (b"2130706433", 404, None),
    (b"1.2.3.4.5", 404, None),
    (b"[::1]", 404, None),
    (b"[::1]:8080", 404, None),
    (b"[::g]", 400, None),
    (b"[fe80::1%25eth0]", 400, None),
    (b"[v1.x]", 400, None),
    (b"::1", 400, None),
    (b"[::1]x", 400, "garbage after IPv6 literal"),
    # case, trailing dot and surrounding whitespace are normalised away
    (b"APP.TEST.", 200, None),
    (b"app.test   ", 200, None),
    (b"app.test\t", 200, None),
]


@pytest.fixture
def hgw(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr], "127.0.0.1": [backend.addr]})
    return g


def test_host_values(hgw):
    """One gateway for every case (a gateway per case would cost 40 s);
    every mismatch is listed, not just the first."""
    wrong = []
    for host, status, why in CASES:
        resp = hgw.raw(b"GET /echo HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        got = status_of(resp)
        if got != status:
            wrong.append((host[:60], status, got, resp[:120]))
        elif status == 200:
            # the app got the client's own Host value, trimmed
            sent = b'["Host", "' + host.strip() + b'"]'
            if sent not in resp:
                wrong.append((host[:60], "Host as sent", resp[-300:]))
        elif why:
            n = hgw.stderr().count(f"bad request: {why} (400)")
            if n == 0:
                wrong.append((host[:60], why, hgw.stderr()[-300:]))
    assert not wrong, "\n".join(map(repr, wrong))


@pytest.mark.parametrize("target,status", [
    (b"http://user@app.test/", 400),
    (b"http://app.test:99999/", 400),
    (b"http://app%2etest/", 400),
    (b"http://" + b"a" * 300 + b"/", 400),
    (b"http:/app.test/", 400),
    (b"http://[::1]/", 404),
    (b"http://127.1/", 404),
])
def test_absolute_form_authority(hgw, target, status):
    resp = hgw.raw(b"GET " + target + b" HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    assert status_of(resp) == status, resp[:200]


def test_abuse_leaves_the_gateway_serving(hgw, backend):
    before = backend.stats()["requests"]
    for host, _, _ in CASES:
        hgw.raw(b"GET /echo HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    # the app saw only the cases that route to it (200), and the stats call
    served = sum(1 for _, status, _ in CASES if status == 200)
    assert backend.stats()["requests"] == before + served + 1
    r, _ = hgw.request("GET", "/echo", "app.test")
    assert r.status == 200
