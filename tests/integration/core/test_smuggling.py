"""Request smuggling defences: each case gets 400 (or 501) and the backend
never sees the request, nor a second one hidden in it."""
import pytest

from gwtest import status_of

CASES = {
    "cl-and-te": (b"POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n", 400),
    "te-space-before-colon": (b"POST /echo HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding : chunked\r\n"
                              b"Content-Length: 40\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n", 400),
    "space-in-name": (b"GET /echo HTTP/1.1\r\nHost: app.test\r\nX Bad: 1\r\n\r\n", 400),
    "obs-fold": (b"GET /echo HTTP/1.1\r\nHost: app.test\r\nX-A: 1\r\n continued\r\n\r\n", 400),
    "bare-cr": (b"GET /echo HTTP/1.1\r\nHost: app.test\r\nX-A: 1\rX-B: 2\r\n\r\n", 400),
    "differing-cl": (b"POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n"
                     b"Content-Length: 6\r\n\r\nhello!", 400),
    "cl-list-differing": (b"POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5, 6\r\n\r\nhello!", 400),
    "cl-plus-sign": (b"POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: +5\r\n\r\nhello", 400),
    "bad-chunk-size": (b"POST /echo HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"zz\r\nhello\r\n0\r\n\r\n", 400),
    "chunk-data-overrun": (b"POST /echo HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"5\r\nhelloXX0\r\n\r\n", 400),
    "chunk-ext-bare-lf": (b"POST /echo HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"5;a\nhello\r\n0\r\n\r\n", 400),
    "te-gzip-chunked": (b"POST /echo HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                        b"0\r\n\r\n", 501),
    "te-chunked-twice": (b"POST /echo HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
                         b"0\r\n\r\n", 400),
    "te-http10": (b"POST /echo HTTP/1.0\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "connect": (b"CONNECT app.test:443 HTTP/1.1\r\nHost: app.test:443\r\n\r\n", 501),
    "http2-version": (b"GET /echo HTTP/2.0\r\nHost: app.test\r\n\r\n", 505),
    "nul-in-value": (b"GET /echo HTTP/1.1\r\nHost: app.test\r\nX-A: a\x00b\r\n\r\n", 400),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_smuggling_rejected(gw, backend, name):
    data, expected = CASES[name]
    before = backend.stats()["requests"]
    resp = gw.raw(data)
    assert status_of(resp) == expected, resp[:200]
    # Nothing reached the app: only our own stats calls are counted.
    assert backend.stats()["requests"] == before + 1
    # And the connection was closed after the error (no second request).
    assert resp.count(b"HTTP/1.1 ") == 1


def test_chunked_body_is_rechunked_upstream(gw):
    # Valid chunked body with an extension: the app gets canonical framing
    # and the same payload.
    resp = gw.raw(b"POST /echo HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n"
                  b"Connection: close\r\n\r\n5;name=\"v\"\r\nhello\r\n0\r\n\r\n")
    assert status_of(resp) == 200
    assert b'"length": 5' in resp
