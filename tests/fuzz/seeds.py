#!/usr/bin/python3
"""Write the seed corpus of each fuzz target (tests/fuzz/corpus/<name>/seed-*)
and the config dictionary, from the cases listed here, the smuggling cases of
tests/integration/core/test_smuggling.py and the configs in conf/.

Run it again after changing a case: it rewrites seed-* files only and never
touches the findings kept beside them (crash-*, the inputs that once failed).
Each target's input starts with control bytes (see the comment at the top of
tests/fuzz/fuzz_<name>.c); the seeds use a few delivery patterns each."""
import ast
import hashlib
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def smuggling_cases():
    src = open(os.path.join(ROOT, "tests/integration/core/test_smuggling.py")).read()
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "CASES":
            return {k: v[0] for k, v in ast.literal_eval(node.value).items()}
    raise SystemExit("CASES not found in test_smuggling.py")


H = b"Host: app.test\r\n"
REQUESTS = {
    "get": b"GET / HTTP/1.1\r\n" + H + b"\r\n",
    "get-lf-only": b"GET /a?b=c HTTP/1.1\nHost: App.Test:8080\n\n",
    "post-length": b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello",
    "post-chunked": b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                    b"5;name=\"v\"\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
    "pipelined": b"GET /1 HTTP/1.1\r\n" + H + b"\r\n\r\nPOST /2 HTTP/1.1\r\n" + H +
                 b"Content-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\n" + H + b"\r\n",
    "absolute-form": b"GET http://App.Test.:8080?q=1 HTTP/1.1\r\nHost: other\r\n\r\n",
    "http10": b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n" + H + b"\r\n",
    "websocket": b"GET /ws HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "expect": b"PUT /up HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    "cookies": b"GET / HTTP/1.1\r\n" + H + b"Cookie: a=1; gw_session=secret; b=2\r\n"
               b"Cookie: gw_session=x\r\nCookie: s=1;a=2\r\n\r\n",
    "forwarded": b"GET / HTTP/1.1\r\n" + H + b"X-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n"
                 b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\n\r\n",
    "connection-listed": b"GET / HTTP/1.1\r\n" + H + b"Connection: keep-alive, X-Secret, TE\r\n"
                         b"X-Secret: 1\r\nTE: trailers\r\nKeep-Alive: 5\r\nProxy-Authorization: x\r\n\r\n",
    "ipv6-host": b"OPTIONS * HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
    "cl-list-same": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc",
}
REQUESTS.update({"smuggle-" + k: v for k, v in smuggling_cases().items()})

RESPONSES = {
    "200-length": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
    "200-chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "200-close": b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody",
    "204": b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
    "304": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\nETag: \"x\"\r\n\r\n",
    "100-then-200": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "103-then-200": b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                    b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    "101": b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "te-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
    "cl-and-te": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    "no-reason": b"HTTP/1.1 404\r\nContent-Length: 0\r\nConnection: close, X-Internal\r\n"
                 b"X-Internal: 1\r\nKeep-Alive: timeout=5\r\n\r\n",
}

CHUNKED = {
    "simple": b"5\r\nhello\r\n0\r\n\r\n",
    "ext-trailers": b"5;a=b;c=\"q\\\"x\"\r\nhello\r\n6 ; z\r\n world\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nNEXT",
    "upper-hex": b"A\r\n0123456789\r\n00\r\n\r\n",
    "empty": b"0\r\n\r\n",
    "pipelined": b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    "big-size": b"1000000000000000\r\n",
    "overflow": b"10000000000000001\r\nx",
    "bare-lf": b"5;a\nhello\r\n0\r\n\r\n",
    "overrun": b"5\r\nhelloXX0\r\n\r\n",
    "bad-size": b"zz\r\nhello\r\n0\r\n\r\n",
    "lf-after-data": b"1\r\nx\n0\r\n\r\n",
    "trailer-fold": b"0\r\nA: 1\r\n B\r\n\r\n",
    "trailer-bare-lf-end": b"0\r\nA: 1\r\n\n",
}

HOSTNAMES = [
    b"/\napp.test", b"http://App.Test.:8080/p?q\nignored", b"https://[::1]:443\n[::1]",
    b"http://h?q=1\nh", b"*\nexample.com:80", b"http://a@b/\na@b", b"ftp://x/\nx",
    b"http:///\n", b"/x\n[::ffff:192.0.2.1]", b"/x\nA..B", b"/x\nexample.com:0",
    b"/x\nexample.com:65536", b"/x\n" + b"a" * 64 + b".test", b"/x\n.",
    b"/x\nxn--bcher-kva.example:08080",
]


def write(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.remove(os.path.join(d, f))
    for label, data in seeds:
        label = re.sub(r"[^a-z0-9.-]+", "-", label.lower())
        tag = hashlib.sha1(data).hexdigest()[:8]
        with open(os.path.join(d, "seed-%s-%s" % (label, tag)), "wb") as f:
            f.write(data)


def main():
    # delivery: all at once, 1 byte at a time, 1 then 17 bytes (scale 16)
    deliveries = [b"\x00\x00", b"\x01\x01", b"\x01\x02"]
    write("http1_request", [(k, d + v) for k, v in REQUESTS.items() for d in deliveries])
    # control: method GET/HEAD, 1.0 client, close
    write("http1_response", [(k + "-%d" % c, bytes([c]) + v)
                             for k, v in RESPONSES.items() for c in (0, 1, 8, 16, 32)])
    reqs = [(k + "-%d" % c, bytes([c, 0x04]) + v) for k, v in REQUESTS.items()
            for c in (0x00, 0xc7)]
    resps = [(k + "-%d" % c, bytes([c | 8, 0x10]) + v) for k, v in RESPONSES.items()
             for c in (0x00, 0x50)]
    write("rewrite", reqs + resps)
    # control: flags (proxy limits / dechunk / small limits), pieces 1,2,3
    write("chunked", [(k + "-%d" % c, bytes([c, 0, 1, 2]) + v)
                      for k, v in CHUNKED.items() for c in (0x00, 0x01, 0x1e)])
    write("hostname", [(h.decode("latin-1"), h) for h in HOSTNAMES])
    conf = open(os.path.join(ROOT, "conf/gateway.conf"), "rb").read()
    # the shipped file, and the same with every key set to its default
    uncommented = re.sub(rb"(?m)^#(\w+ =)", rb"\1", conf)
    configs = [("gateway.conf", conf), ("gateway.conf-defaults", uncommented),
               ("routes", b"[gateway]\nlisten = 127.0.0.1:81\nlisten = [::1]:82\nworkers = auto\n"
                          b"trusted_proxies = 10.0.0.0/8, ::1/128\n[routes]\n"
                          b"App.Test. = 127.0.0.1:9001, 127.0.0.1:9002\n[exec]\n"
                          b"demo.test = 127.0.0.1:9100 python3 -m http.server 9100\n"),
               ("units", b"[client]\nheader_timeout = 250ms\nkeepalive_timeout = 2m\n"
                         b"header_max_bytes = 32k\nbuffer_size = 1m\n[upstream]\n"
                         b"tunnel_idle_timeout = 2h\n[log]\nlevel = debug\n")]
    write("config", configs)
    keys = sorted(set(re.findall(rb"(?m)^#?(\w+) =", conf)))
    sections = sorted(set(re.findall(rb"(?m)^\[(\w+)\]", conf)))
    with open(os.path.join(HERE, "config.dict"), "wb") as f:
        f.write(b"# generated by tests/fuzz/seeds.py from conf/gateway.conf\n")
        for s in sections + [b"routes", b"exec"]:
            f.write(b'"[%s]"\n' % s)
        for k in keys:
            f.write(b'"%s = "\n' % k)
        for t in (b"ms", b"s", b"m", b"h", b"k", b"auto", b"off", b"127.0.0.1:", b"[::1]:",
                  b"/8", b"/128", b", ", b"\\x0a"):
            f.write(b'"%s"\n' % t)


if __name__ == "__main__":
    main()
