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
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests/lib"))
from kubeapi import status as kube_status  # noqa: E402  the stand-in's Status bodies


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


# ---- Kubernetes API bodies (fuzz_kube), shaped as tests/lib/kubeapi.py sends them


def kube_slice(name, rv, addrs, port=8080, ready=True, terminating=False, family="IPv4"):
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": name, "namespace": "apps", "resourceVersion": rv,
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": family,
            "endpoints": [{"addresses": addrs,
                           "conditions": {"ready": ready and not terminating,
                                          "serving": ready, "terminating": terminating},
                           "targetRef": {"kind": "Pod", "namespace": "apps", "name": "web-1"}}],
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}


def kube_scale(replicas, rv="41"):
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": "web", "namespace": "apps", "resourceVersion": rv, "uid": "u-1"},
            "spec": {"replicas": replicas} if replicas else {},
            "status": {"replicas": 0, "selector": "app=web"}}


def j(obj):
    return json.dumps(obj).encode()


def kube_seeds():
    scale = [("scale-0", kube_scale(0)), ("scale-2", kube_scale(2, "9007199254740993")),
             ("scale-null", {"spec": {"replicas": None}, "metadata": {"resourceVersion": "1"}}),
             ("scale-neg", {"spec": {"replicas": -3}, "metadata": {"resourceVersion": "1"}}),
             ("scale-big", {"spec": {"replicas": 2 ** 63 - 1}, "metadata": {"resourceVersion": "1"}}),
             ("scale-float", {"spec": {"replicas": 1.5}, "metadata": {"resourceVersion": "1"}}),
             ("scale-no-rv", {"spec": {"replicas": 1}})]
    stat = [("status-%d" % c, kube_status(c, r, m)) for c, r, m in (
        (404, "NotFound", "deployments.apps \"web\" not found"),
        (409, "Conflict", "Operation cannot be fulfilled on deployments.apps \"web\": "
                          "the object has been modified; please apply your changes"),
        (410, "Expired", "too old resource version: 12 (40)"),
        (403, "Forbidden", "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:"
                           "gw:gateway\" cannot patch resource \"deployments/scale\"" + " x" * 300),
        (429, "TooManyRequests", "rate limited"), (500, "InternalError", ""))]
    stat.append(("status-message-not-string", {"kind": "Status", "message": 7}))
    lst = {"kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1",
           "metadata": {"resourceVersion": "120"},
           "items": [kube_slice("web-abc", "100", ["127.0.0.1"]),
                     kube_slice("web-v6", "101", ["::1", "fe80::1%eth0"], 8443, family="IPv6"),
                     kube_slice("web-fqdn", "102", ["web.example"], family="FQDN")]}
    events = [
        {"type": "ADDED", "object": kube_slice("web-new", "121", ["10.0.0.7", "10.0.0.8"])},
        {"type": "MODIFIED", "object": kube_slice("web-abc", "122", ["127.0.0.1"], ready=False,
                                                  terminating=True)},
        {"type": "BOOKMARK", "object": {"kind": "EndpointSlice",
                                        "apiVersion": "discovery.k8s.io/v1",
                                        "metadata": {"resourceVersion": "130"}}},
        {"type": "DELETED", "object": kube_slice("web-v6", "131", ["::1"])},
        {"type": "MODIFIED", "object": kube_slice("web-port", "132", ["10.0.0.9"], port=0)},
        {"type": "ERROR", "object": kube_status(410, "Expired", "too old resource version: 1 (131)")},
    ]
    stream = j(lst) + b"\n" + b"\n".join(j(e) for e in events) + b"\n"
    out = [(k, b"\x00" + j(v)) for k, v in scale]
    out += [(k, b"\x01" + j(v)) for k, v in stat] + [("status-cut", b"\x81" + j(stat[3][1]))]
    out += [("list-watch", b"\x02" + stream), ("list-watch-short-bufs", b"\xc6" + stream),
            ("list-empty", b"\x02" + j({"kind": "EndpointSliceList", "metadata": {}, "items": []})),
            ("watch-garbage", b"\x02{}\n{\"type\":\"ADDED\"\n" + j(events[0]) + b"\nnot json\n"),
            ("rv-long", b"\x02" + j({"metadata": {"resourceVersion": "9" * 100}, "items": []}))]
    return out


# ---- Redis replies (fuzz_redis), RESP as Redis writes them


def resp(v):
    if v is None:
        return b"$-1\r\n"
    if isinstance(v, int):
        return b":%d\r\n" % v
    if isinstance(v, Err):
        return b"-" + v.text + b"\r\n"
    if isinstance(v, Status):
        return b"+" + v.text + b"\r\n"
    if isinstance(v, (list, tuple)):
        return b"*%d\r\n" % len(v) + b"".join(resp(e) for e in v)
    v = v.encode() if isinstance(v, str) else v
    return b"$%d\r\n%s\r\n" % (len(v), v)


class Err:
    def __init__(self, text):
        self.text = text


class Status:
    def __init__(self, text):
        self.text = text


def redis_seeds():
    route = ["project", "app", "visibility", "public", "upstream", "127.0.0.1:9001, [::1]:9002",
             "idle_timeout", "300"]
    kube = ["project", "demo", "visibility", "private", "namespace", "apps", "deployment",
            "web.v2", "service", "web", "port", "8080", "max_replicas", "3", "future_field", "x"]
    replies = {
        "route-static": [route],
        "route-kube": [kube],
        "route-deployment-no-service": [["deployment", "web.v2", "namespace", "apps"]],
        "route-bad-port": [["project", "app", "port", "65536"]],
        "route-bad-upstream": [["upstream", "app.internal:80"]],
        "route-many-upstreams": [["upstream", ",".join("10.0.0.%d:80" % i for i in range(70))]],
        "route-empty": [[]],
        "route-wrongtype": [Err(b"WRONGTYPE Operation against a key holding the wrong kind of value")],
        "route-odd": [["project", "app", "visibility"]],
        "route-list": [["app.test", "Demo.Apps.Example.COM.", "[::1]", "bad host", "x" * 300]],
        "session-valid": [["alice@example.com", "2000000000"]],
        "session-no-expiry": [["alice", None]],
        "session-expired": [["alice", "1"]],
        "session-unknown": [[None, None]],
        "session-long-user": [["u" * 257, "2000000000"]],
        "session-big-expiry": [["bob", "99999999999"]],
        "members": [1, 0, 2, Err(b"NOAUTH Authentication required."), Status(b"OK")],
        "begin-ours": [["ours", 0, 0]],
        "begin-wait": [["wait", 9500, 0], ["wait", -2, 0]],
        "begin-queued": [["queued", 3, 7]],
        "begin-cold": [["cold", 400, 0], ["cold", "9223372036854775807", 0]],
        "begin-undrained": [["undrained", 0, 0]],
        "begin-odd": [["wait", "9223372036854775807", 0], ["queued", "9223372036854775807",
                                                           "-9223372036854775808"]],
        "events": [["message", "gw:events", m] for m in (
            "route app.test", "route ", "session 3q2+7w==", "members demo", "slot demo",
            "ready demo 127.0.0.1:9001,[::1]:9002", "ready demo " + "10.0.0.1:8080," * 60,
            "ready  127.0.0.1:1", "draining demo t0k3n", "undrain demo", "cold demo",
            "login alice", "nonsense", "x" * 40 + " y", "session " + "s" * 600)],
        "subscribe": [["subscribe", "gw:events", 1]],
        "nested": [[["a", ["b", [1, None]]], Err(b"ERR x")]],
    }
    out = []
    for k, rs in replies.items():
        data = b"".join(resp(r) for r in rs)
        for c in (0x00, 0x09, 0x03, 0x06):
            out.append(("%s-%d" % (k, c), bytes([c]) + data))
    out.append(("huge-array", b"\x00*2000000000\r\n"))
    out.append(("protocol-error", b"\x00*2\r\n$3\r\nabc\r\n!junk\r\n"))
    return out


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
    write("kube", kube_seeds())
    write("redis", redis_seeds())
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
