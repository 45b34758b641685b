#!/usr/bin/python3
"""A Kubernetes API stand-in: the part of the API the gateway uses, with the
real API's semantics, and "pods" that are local backend processes.

  - bearer token checked on every request against --token-file, re-read
    each time (tests rotate it);
  - apps/v1 Deployment scale subresource: GET, PATCH (merge patch), PUT;
  - discovery.k8s.io/v1 EndpointSlices: list by kubernetes.io/service-name
    label with a list resourceVersion, and watch from a resourceVersion
    (ADDED/MODIFIED/DELETED, BOOKMARK with allowWatchBookmarks, ERROR 410
    Expired for versions older than the retained history, timeoutSeconds);
  - Status objects for errors (401/403/404/409/410/415/429/5xx);
  - /_control/ (no auth): create deployments, inject faults, expire or
    break watches, read counters.

Replicas 0 -> N starts N tests/lib/backend.py processes after
--pod-start-delay; each becomes a ready endpoint (one slice per pod, since
every pod listens on its own port). Prints "listening PORT" first.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
BACKEND = os.path.join(HERE, "backend.py")


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class Store:
    """Objects, one resourceVersion counter, an event history for watches."""

    def __init__(self, pod_delay):
        self.cv = threading.Condition()
        self.rv = 100
        self.min_rv = 0              # watches from below this get 410
        self.history = []            # (rv, type, slice) newest last, bounded
        self.deployments = {}        # (ns, name) -> dict
        self.slices = {}             # (ns, name) -> EndpointSlice
        self.pods = {}               # (ns, name) -> [(Popen, port, slice_name)]
        self.pod_delay = pod_delay
        self.stats = {"scale_patches": {}, "lists": 0, "watches": 0, "open_watches": 0}
        self.faults = []
        self.epoch = 0               # bumped by break-watches

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def event(self, etype, obj):
        self.history.append((int(obj["metadata"]["resourceVersion"]), etype, obj))
        if len(self.history) > 200:
            self.history.pop(0)
        self.cv.notify_all()

    def add_deployment(self, ns, name, service=None, replicas=0):
        with self.cv:
            self.deployments[(ns, name)] = {"replicas": 0, "service": service or name,
                                            "rv": self.next_rv(), "uid": f"uid-{ns}-{name}"}
        if replicas:
            self.scale(ns, name, replicas)

    def scale(self, ns, name, replicas):
        with self.cv:
            d = self.deployments[(ns, name)]
            old = d["replicas"]
            d["replicas"] = replicas
            d["rv"] = self.next_rv()
            pods = self.pods.setdefault((ns, name), [])
            while len(pods) > replicas:
                proc, port, sname = pods.pop()
                proc.terminate()
                obj = self.slices.pop((ns, sname), None)
                if obj:
                    obj = json.loads(json.dumps(obj))
                    obj["metadata"]["resourceVersion"] = self.next_rv()
                    self.event("DELETED", obj)
        for _ in range(old, replicas):
            threading.Thread(target=self.start_pod, args=(ns, name), daemon=True).start()

    def start_pod(self, ns, name):
        time.sleep(self.pod_delay)
        proc = subprocess.Popen([sys.executable, BACKEND, "--port", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = proc.stdout.readline().decode()
        if not line.startswith("listening"):
            proc.kill()
            return
        port = int(line.split()[1])
        with self.cv:
            d = self.deployments.get((ns, name))
            if d is None or len(self.pods[(ns, name)]) >= d["replicas"]:
                proc.terminate()        # scaled down meanwhile
                return
            sname = f"{d['service']}-{port}"
            self.pods[(ns, name)].append((proc, port, sname))
            obj = {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                   "metadata": {"name": sname, "namespace": ns, "resourceVersion": self.next_rv(),
                                "labels": {"kubernetes.io/service-name": d["service"]}},
                   "addressType": "IPv4",
                   "endpoints": [{"addresses": ["127.0.0.1"],
                                  "conditions": {"ready": True, "serving": True,
                                                 "terminating": False},
                                  "targetRef": {"kind": "Pod", "namespace": ns,
                                                "name": f"{name}-{port}"}}],
                   "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}
            self.slices[(ns, sname)] = obj
            self.event("ADDED", obj)

    def stop(self):
        with self.cv:
            for pods in self.pods.values():
                for proc, _, _ in pods:
                    proc.kill()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    store = None
    token_file = None
    bookmark_interval = 1.0

    def log_message(self, fmt, *args):
        pass

    def send_json(self, code, obj, extra=()):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # ---- control ---------------------------------------------------------
    def control(self, method, path):
        s = self.store
        body = json.loads(self.read_body() or b"{}") if method == "POST" else {}
        if path == "/_control/deployments" and method == "POST":
            s.add_deployment(body.get("namespace", "default"), body["name"],
                             body.get("service"), body.get("replicas", 0))
            return self.send_json(201, {"ok": True})
        if path == "/_control/faults" and method == "POST":
            with s.cv:
                if body.get("clear"):
                    s.faults = []
                    return self.send_json(200, {"ok": True})
                s.faults.append({"prefix": body.get("path_prefix", "/"),
                                 "status": body.get("status", 500),
                                 "count": body.get("count", 1),
                                 "delay": body.get("delay", 0)})
            return self.send_json(200, {"ok": True})
        if path == "/_control/expire-watches" and method == "POST":
            with s.cv:
                s.min_rv = s.rv + 1
                s.cv.notify_all()
            return self.send_json(200, {"ok": True})
        if path == "/_control/break-watches" and method == "POST":
            with s.cv:
                s.epoch += 1
                s.cv.notify_all()
            return self.send_json(200, {"ok": True})
        if path == "/_control/pod-start-delay" and method == "POST":
            s.pod_delay = float(body["seconds"])
            return self.send_json(200, {"ok": True})
        if path == "/_control/stats":
            with s.cv:
                out = dict(s.stats)
                out["replicas"] = {f"{k[0]}/{k[1]}": d["replicas"]
                                   for k, d in s.deployments.items()}
                out["pods"] = {f"{k[0]}/{k[1]}": [p for _, p, _ in v]
                               for k, v in s.pods.items()}
            return self.send_json(200, out)
        return self.send_json(404, status(404, "NotFound", path))

    # ---- API ---------------------------------------------------------------
    def authorized(self):
        try:
            with open(self.token_file) as f:
                token = f.read().strip()
        except OSError:
            token = None
        return token and self.headers.get("Authorization") == f"Bearer {token}"

    def fault(self, path):
        s = self.store
        with s.cv:
            for f in s.faults:
                if path.startswith(f["prefix"]) and f["count"] > 0:
                    f["count"] -= 1
                    break
            else:
                return False
        if f["delay"]:
            time.sleep(f["delay"])
        code = f["status"]
        if code == 0:  # the connection dies without an answer
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        reasons = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
                   429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}
        extra = [("Retry-After", "1")] if code == 429 else []
        self.send_json(code, status(code, reasons.get(code, "InternalError"),
                                    f"injected fault {code}"), extra)
        return True

    # ---- discovery (what kubectl reads before anything else) -------------
    DISCOVERY = {
        "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0-standin",
                     "platform": "linux/amd64"},
        "/api": {"kind": "APIVersions", "versions": ["v1"],
                 "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                 "serverAddress": "127.0.0.1"}]},
        "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": []},
        "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
             "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}}
            for g in ("apps", "autoscaling", "discovery.k8s.io")]},
        "/apis/apps/v1": {"kind": "APIResourceList", "apiVersion": "v1",
                          "groupVersion": "apps/v1", "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": True,
             "kind": "Deployment", "shortNames": ["deploy"],
             "verbs": ["get", "list", "watch", "patch", "update"]},
            {"name": "deployments/scale", "singularName": "", "namespaced": True,
             "group": "autoscaling", "version": "v1", "kind": "Scale",
             "verbs": ["get", "patch", "update"]}]},
        "/apis/autoscaling/v1": {"kind": "APIResourceList", "apiVersion": "v1",
                                 "groupVersion": "autoscaling/v1", "resources": []},
        "/apis/discovery.k8s.io/v1": {"kind": "APIResourceList", "apiVersion": "v1",
                                      "groupVersion": "discovery.k8s.io/v1", "resources": [
            {"name": "endpointslices", "singularName": "endpointslice", "namespaced": True,
             "kind": "EndpointSlice", "verbs": ["get", "list", "watch"]}]},
    }

    def deployment_object(self, ns, name, d):
        ready = len(self.store.pods.get((ns, name), []))
        return {"kind": "Deployment", "apiVersion": "apps/v1",
                "metadata": {"name": name, "namespace": ns, "uid": d["uid"],
                             "resourceVersion": d["rv"], "labels": {"app": name}},
                "spec": {"replicas": d["replicas"],
                         "selector": {"matchLabels": {"app": name}}},
                "status": {"replicas": ready, "readyReplicas": ready,
                           "availableReplicas": ready}}

    def handle_any(self, method):
        url = urllib.parse.urlsplit(self.path)
        path, q = url.path, urllib.parse.parse_qs(url.query)
        if path.startswith("/_control/"):
            return self.control(method, path)
        if not self.authorized():
            self.read_body()
            return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        if self.fault(path):
            return
        if method == "GET" and path.rstrip("/") in self.DISCOVERY:
            # kubectl asks for aggregated discovery first; plain JSON is
            # the documented fallback it accepts.
            return self.send_json(200, self.DISCOVERY[path.rstrip("/")])
        parts = path.strip("/").split("/")
        # /apis/apps/v1/namespaces/NS/deployments/NAME[/scale]
        if parts[:3] == ["apis", "apps", "v1"] and len(parts) == 6 and \
                parts[5] == "deployments" and method == "GET":
            with self.store.cv:
                items = [self.deployment_object(ns, n, d)
                         for (ns, n), d in self.store.deployments.items() if ns == parts[4]]
                rv = str(self.store.rv)
            return self.send_json(200, {"kind": "DeploymentList", "apiVersion": "apps/v1",
                                        "metadata": {"resourceVersion": rv}, "items": items})
        if parts[:3] == ["apis", "apps", "v1"] and len(parts) >= 7 and parts[3] == "namespaces":
            return self.deployment(method, parts[4], parts[6] if len(parts) > 6 else None,
                                   parts[7] if len(parts) > 7 else None)
        if parts[:3] == ["apis", "discovery.k8s.io", "v1"] and len(parts) == 6 \
                and parts[5] == "endpointslices" and method == "GET":
            return self.endpointslices(parts[4], q)
        self.read_body()
        return self.send_json(404, status(404, "NotFound", f"the server could not find {path}"))

    def deployment(self, method, ns, name, sub):
        s = self.store
        body = self.read_body()
        d = s.deployments.get((ns, name))
        if d is None:
            return self.send_json(404, status(404, "NotFound",
                                              f'deployments.apps "{name}" not found'))
        if sub is None and method == "GET":
            return self.send_json(200, self.deployment_object(ns, name, d))
        if sub != "scale":
            return self.send_json(405, status(405, "MethodNotAllowed", "only scale here"))
        if method in ("PATCH", "PUT"):
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            ok = ("application/merge-patch+json", "application/strategic-merge-patch+json",
                  "application/json")
            if ctype not in ok:
                return self.send_json(415, status(415, "UnsupportedMediaType",
                                                  f"the body of the request was in an unknown "
                                                  f"format - accepted media types include: "
                                                  f"{', '.join(ok)}"))
            try:
                replicas = int(json.loads(body)["spec"]["replicas"])
            except (ValueError, KeyError, TypeError):
                return self.send_json(400, status(400, "BadRequest", "spec.replicas required"))
            with s.cv:
                key = f"{ns}/{name}"
                s.stats["scale_patches"][key] = s.stats["scale_patches"].get(key, 0) + 1
                if replicas == 0:
                    downs = s.stats.setdefault("scale_to_zero", {})
                    downs[key] = downs.get(key, 0) + 1
            s.scale(ns, name, replicas)
        d = s.deployments[(ns, name)]
        ready = len(s.pods.get((ns, name), []))
        return self.send_json(200, {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": d["rv"],
                         "uid": d["uid"]},
            "spec": {"replicas": d["replicas"]},
            "status": {"replicas": ready, "selector": f"app={name}"}})

    def endpointslices(self, ns, q):
        s = self.store
        sel = (q.get("labelSelector") or [""])[0]
        svc = sel.split("=", 1)[1] if sel.startswith("kubernetes.io/service-name=") else None

        def match(obj):
            return obj["metadata"]["namespace"] == ns and (
                svc is None or obj["metadata"]["labels"].get("kubernetes.io/service-name") == svc)

        if (q.get("watch") or ["0"])[0] not in ("1", "true"):
            with s.cv:
                s.stats["lists"] += 1
                items = [o for o in s.slices.values() if match(o)]
                rv = str(s.rv)
            return self.send_json(200, {"kind": "EndpointSliceList",
                                        "apiVersion": "discovery.k8s.io/v1",
                                        "metadata": {"resourceVersion": rv}, "items": items})
        return self.watch(q, match)

    def chunk(self, obj):
        data = json.dumps(obj).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, q, match):
        s = self.store
        rv = (q.get("resourceVersion") or [""])[0]
        bookmarks = (q.get("allowWatchBookmarks") or ["false"])[0] == "true"
        timeout = float((q.get("timeoutSeconds") or ["300"])[0])
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        end = time.monotonic() + timeout
        next_bookmark = time.monotonic() + self.bookmark_interval
        with s.cv:
            s.stats["watches"] += 1
            s.stats["open_watches"] += 1
            epoch = s.epoch
            if rv in ("", "0"):      # from now: current objects first
                pending = [("ADDED", o) for o in s.slices.values() if match(o)]
                last = s.rv
            else:
                last = int(rv)
                pending = []
        try:
            while time.monotonic() < end:
                for etype, obj in pending:
                    self.chunk({"type": etype, "object": obj})
                pending = []
                with s.cv:
                    if s.epoch != epoch:        # break-watches: drop the stream dead
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if last < s.min_rv or (s.history and last < s.history[0][0] - 1
                                           and len(s.history) >= 200):
                        gone = status(410, "Expired",
                                      f"too old resource version: {last} ({s.rv})")
                        pending = None
                    else:
                        new = [(r, t, o) for r, t, o in s.history if r > last]
                        pending = [(t, o) for r, t, o in new if match(o)]
                        if new:
                            last = new[-1][0]
                        if not pending:
                            s.cv.wait(timeout=0.2)
                if pending is None:
                    self.chunk({"type": "ERROR", "object": gone})
                    break
                if bookmarks and time.monotonic() >= next_bookmark:
                    next_bookmark = time.monotonic() + self.bookmark_interval
                    with s.cv:
                        mark = str(max(last, s.rv))
                    self.chunk({"type": "BOOKMARK", "object": {
                        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                        "metadata": {"resourceVersion": mark}}})
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass
        finally:
            with s.cv:
                s.stats["open_watches"] -= 1

    def do_GET(self):
        self.handle_any("GET")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_POST(self):
        self.handle_any("POST")


def add_manifest_discovery(discovery):
    """Discovery for the kinds in conf/kubernetes/ (namespaces, services,
    RBAC, PDBs, ...), so `kubectl create --dry-run=client` can map every
    object of the manifests (tests/integration/ops/test_manifests.py). Only
    discovery: none of these resources is served."""
    def res(name, kind, namespaced=True):
        return {"name": name, "singularName": kind.lower(), "namespaced": namespaced,
                "kind": kind, "verbs": ["create", "get", "list"]}
    d = dict(discovery)
    d["/api/v1"] = dict(d["/api/v1"], resources=d["/api/v1"]["resources"] + [
        res("namespaces", "Namespace", False), res("serviceaccounts", "ServiceAccount"),
        res("configmaps", "ConfigMap"), res("secrets", "Secret"),
        res("services", "Service")])
    groups = {g["name"] for g in d["/apis"]["groups"]}
    extra = [g for g in ("rbac.authorization.k8s.io", "policy") if g not in groups]
    d["/apis"] = dict(d["/apis"], groups=d["/apis"]["groups"] + [
        {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}} for g in extra])
    d["/apis/rbac.authorization.k8s.io/v1"] = {
        "kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": "rbac.authorization.k8s.io/v1", "resources": [
            res("clusterroles", "ClusterRole", False),
            res("clusterrolebindings", "ClusterRoleBinding", False),
            res("roles", "Role"), res("rolebindings", "RoleBinding")]}
    d["/apis/policy/v1"] = {
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "policy/v1",
        "resources": [res("poddisruptionbudgets", "PodDisruptionBudget")]}
    return d


Handler.DISCOVERY = add_manifest_discovery(Handler.DISCOVERY)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--pod-start-delay", type=float, default=0.3)
    ap.add_argument("--bookmark-interval", type=float, default=1.0)
    ap.add_argument("--tls-cert", help="serve HTTPS (kubectl sends tokens only over TLS)")
    ap.add_argument("--tls-key")
    a = ap.parse_args()
    store = Store(a.pod_start_delay)
    Handler.store = store
    Handler.token_file = a.token_file
    Handler.bookmark_interval = a.bookmark_interval
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    if a.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)

    def bye(*_):
        store.stop()
        os._exit(0)
    signal.signal(signal.SIGTERM, bye)
    print(f"listening {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    finally:
        store.stop()


if __name__ == "__main__":
    main()
