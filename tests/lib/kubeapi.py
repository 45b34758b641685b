#!/usr/bin/python3
"""A Kubernetes API stand-in: the part of the API the gateway uses, with the
real API's semantics, and "pods" that are local backend processes.

  - bearer token checked on every request against --token-file, re-read
    each time (tests rotate it);
  - apps/v1 Deployment scale subresource: GET, PATCH/PUT (JSON merge
    patch); a patch carrying metadata.resourceVersion is a precondition
    (409 Conflict when the object has changed since); a write that changes
    nothing does not bump the resourceVersion; spec.replicas omitted at 0;
  - discovery.k8s.io/v1 EndpointSlices: list by kubernetes.io/service-name
    label with a list resourceVersion, and watch from a resourceVersion
    (ADDED/MODIFIED/DELETED, BOOKMARK with allowWatchBookmarks, ERROR 410
    Expired for versions older than the retained history, timeoutSeconds);
  - Status objects for errors (401/403/404/409/410/415/422/429/5xx);
  - /_control/ (no auth): create deployments, scale behind the gateway's
    back, kill or restart pods, inject faults, expire or break watches,
    read counters.

Pods: replicas 0 -> N schedules N pods after --pod-start-delay. A pod is
published at once with its address and ready:false (the container is
starting), its process (tests/lib/backend.py) listens shortly after, and
the endpoint turns ready:true only --readiness-delay later, as the
kubelet's readiness probe would. Scaling down publishes the endpoint as
terminating (ready:false, serving, terminating:true), stops the process,
then deletes the slice. One slice per pod (each pod has its own port).

Timing records (GET /_control/stats), for the fleet tests: scale_times
{deployment: [[unix time, replicas], ...]} for every accepted scale write;
listen_times (the pod process's own time right after listen()) and ready_at
per deployment; arrivals (requests each pod read) and late_arrivals: every
request a pod read after the scale-down that removed it had reached the API
(the write's arrival, before any injected delay) - a request sent to a pod
that is going away.

Faults (POST /_control/faults): {path_prefix, method?, query? (substring of
the query string), body? (substring of the request body), count, and one
of: status (an error Status; 0 drops the connection; retry_after sets the
header, 429 has 1 by default), stall (seconds without an answer, then the
connection is dropped), pass (true: answer normally)} with an optional
delay (seconds) before it. The request body is always read first.

Prints "listening PORT" first.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gwtest import free_port  # one port policy for every test process

HERE = os.path.dirname(os.path.abspath(__file__))
BACKEND = os.path.join(HERE, "backend.py")


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}




class Pod:
    """One pod: an address as soon as it is scheduled, a process that
    listens a little later (unless broken), ready only after the
    readiness delay, like the kubelet's probe."""

    def __init__(self, port, slice_name, name, arrivals):
        self.port = port
        self.slice = slice_name
        self.name = name
        self.proc = None
        self.ready = False
        self.gone = False
        self.arrivals = arrivals     # file the pod's process appends to
        self.down_at = None          # the scale-down that removes it arrived

    def read_arrivals(self):
        try:
            with open(self.arrivals) as f:
                return [(float(t), target) for t, _, target in
                        (line.rstrip("\n").partition(" ") for line in f) if t]
        except OSError:
            return []


class Store:
    """Objects, one resourceVersion counter, an event history for watches."""

    def __init__(self, pod_delay, readiness_delay, pod_dir):
        self.cv = threading.Condition()
        self.pod_dir = pod_dir
        os.makedirs(pod_dir, exist_ok=True)
        self.all_pods = {}           # (ns, name) -> every Pod ever started
        self.rv = 100
        self.min_rv = 0              # watches from below this get 410
        self.history = []            # (rv, type, slice) newest last, bounded
        self.deployments = {}        # (ns, name) -> dict
        self.slices = {}             # (ns, name) -> EndpointSlice
        self.pods = {}               # (ns, name) -> [Pod]
        self.pod_delay = pod_delay
        self.readiness_delay = readiness_delay
        self.stats = {"scale_patches": {}, "scale_gets": {}, "scale_history": {},
                      "conflicts": 0, "lists": 0, "watches": 0, "open_watches": 0,
                      "open_watches_by": {}, "faults_hit": 0, "listening_at": {},
                      "scale_times": {}, "listen_times": {}, "ready_at": {}}
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

    def add_deployment(self, ns, name, service=None, replicas=0, pod_port=None,
                       broken=(), readiness_delay=None):
        with self.cv:
            self.deployments[(ns, name)] = {
                "replicas": 0, "service": service or name, "rv": self.next_rv(),
                "uid": f"uid-{ns}-{name}", "pod_port": pod_port, "broken": set(broken),
                "started": 0, "readiness_delay": readiness_delay}
        if replicas:
            self.scale(ns, name, replicas)

    def slice_object(self, ns, d, pod, ready, terminating=False):
        return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                "metadata": {"name": pod.slice, "namespace": ns,
                             "resourceVersion": self.next_rv(),
                             "labels": {"kubernetes.io/service-name": d["service"]}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["127.0.0.1"],
                               "conditions": {"ready": ready and not terminating,
                                              "serving": ready,
                                              "terminating": terminating},
                               "targetRef": {"kind": "Pod", "namespace": ns,
                                             "name": pod.name}}],
                "ports": [{"name": "http", "port": pod.port, "protocol": "TCP"}]}

    def publish(self, ns, d, pod, ready, terminating=False):
        obj = self.slice_object(ns, d, pod, ready, terminating)
        etype = "MODIFIED" if (ns, pod.slice) in self.slices else "ADDED"
        self.slices[(ns, pod.slice)] = obj
        self.event(etype, obj)

    def scale(self, ns, name, replicas, begun=None):
        """spec.replicas := replicas; pods follow. Returns the new rv.
        begun: when the write that does it reached the API."""
        with self.cv:
            d = self.deployments[(ns, name)]
            old = d["replicas"]
            if replicas == old:
                return d["rv"]          # a no-op write changes nothing
            d["replicas"] = replicas
            d["rv"] = self.next_rv()
            self.stats["scale_times"].setdefault(f"{ns}/{name}", []).append(
                [time.time(), replicas])
            pods = self.pods.setdefault((ns, name), [])
            while len(pods) > replicas:
                pod = pods.pop()
                pod.down_at = begun or time.time()
                self.terminate(ns, d, pod)
            rv = d["rv"]
        for _ in range(old, replicas):
            threading.Thread(target=self.start_pod, args=(ns, name), daemon=True).start()
        return rv

    def terminate(self, ns, d, pod):
        """Called locked: terminating (serving until it stops), then gone."""
        pod.gone = True
        if pod.proc:
            pod.proc.terminate()
        if (ns, pod.slice) in self.slices:
            self.publish(ns, d, pod, pod.ready, terminating=True)

        def delete():
            with self.cv:
                obj = self.slices.pop((ns, pod.slice), None)
                if obj:
                    obj = json.loads(json.dumps(obj))
                    obj["metadata"]["resourceVersion"] = self.next_rv()
                    self.event("DELETED", obj)
        threading.Timer(0.2, delete).start()

    def spawn(self, pod):
        proc = subprocess.Popen([sys.executable, BACKEND, "--port", str(pod.port),
                                 "--arrivals", pod.arrivals],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = proc.stdout.readline().decode()
        if not line.startswith("listening"):
            proc.kill()
            return None
        parts = line.split()
        proc.listen_time = float(parts[2]) if len(parts) > 2 else time.time()
        return proc

    def start_pod(self, ns, name):
        time.sleep(self.pod_delay)
        with self.cv:
            d = self.deployments.get((ns, name))
            pods = self.pods.setdefault((ns, name), [])
            if d is None or len(pods) >= d["replicas"]:
                return                  # scaled down meanwhile
            index = d["started"]
            d["started"] += 1
            port = d["pod_port"] if d["pod_port"] and not any(
                p.port == d["pod_port"] for p in pods) else free_port()
            pod = Pod(port, f"{d['service']}-{port}", f"{name}-{port}",
                      os.path.join(self.pod_dir, f"{ns}-{name}-{port}-{index}.log"))
            pods.append(pod)
            self.all_pods.setdefault((ns, name), []).append(pod)
            # scheduled: the address is known, nothing listens yet
            self.publish(ns, d, pod, ready=False)
            broken = index in d["broken"]
            delay = d["readiness_delay"]
        if broken:
            return                      # never listens, never ready
        proc = self.spawn(pod)
        with self.cv:
            pod.proc = proc
            if proc:  # wall clock, read right after it printed "listening"
                self.stats["listening_at"].setdefault(f"{ns}/{name}", []).append(time.time())
                self.stats["listen_times"].setdefault(f"{ns}/{name}", []).append(
                    proc.listen_time)
            if pod.gone and proc:
                proc.terminate()
                return
        time.sleep(self.readiness_delay if delay is None else delay)
        with self.cv:
            if not pod.gone and proc:
                pod.ready = True
                self.stats["ready_at"].setdefault(f"{ns}/{name}", []).append(time.time())
                self.publish(ns, d, pod, ready=True)

    def kill_pods(self, ns, name):
        """The containers die; nobody has told the API yet."""
        with self.cv:
            for pod in self.pods.get((ns, name), []):
                if pod.proc:
                    pod.proc.kill()
                    pod.proc.wait()
                    pod.proc = None

    def restart_pods(self, ns, name):
        """The kubelet restarts them: same pod, same address."""
        with self.cv:
            pods = [p for p in self.pods.get((ns, name), []) if not p.proc]
        for pod in pods:
            proc = self.spawn(pod)
            with self.cv:
                pod.proc = proc

    def stop(self):
        with self.cv:
            for pods in self.pods.values():
                for pod in pods:
                    if pod.proc:
                        pod.proc.kill()


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
        body = json.loads(self.body or b"{}") if method == "POST" else {}
        ns, name = body.get("namespace", "default"), body.get("name")
        if path == "/_control/deployments" and method == "POST":
            s.add_deployment(ns, name, body.get("service"), body.get("replicas", 0),
                             body.get("pod_port"), body.get("broken", ()),
                             body.get("readiness_delay"))
            return self.send_json(201, {"ok": True})
        if path == "/_control/scale" and method == "POST":   # someone else scales it
            s.scale(ns, name, int(body["replicas"]))
            return self.send_json(200, {"ok": True})
        if path == "/_control/kill-pods" and method == "POST":
            s.kill_pods(ns, name)
            return self.send_json(200, {"ok": True})
        if path == "/_control/restart-pods" and method == "POST":
            s.restart_pods(ns, name)
            return self.send_json(200, {"ok": True})
        if path == "/_control/faults" and method == "POST":
            with s.cv:
                if body.get("clear"):
                    s.faults = []
                    return self.send_json(200, {"ok": True})
                s.faults.append({"prefix": body.get("path_prefix", "/"),
                                 "method": body.get("method"),
                                 "query": body.get("query"),
                                 "body": body.get("body"),
                                 "status": body.get("status", 500),
                                 "retry_after": body.get("retry_after"),
                                 "count": body.get("count", 1),
                                 "delay": body.get("delay", 0),
                                 "stall": body.get("stall", 0),
                                 "pass": body.get("pass", False)})
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
        if path == "/_control/readiness-delay" and method == "POST":
            s.readiness_delay = float(body["seconds"])
            return self.send_json(200, {"ok": True})
        if path == "/_control/stats":
            with s.cv:
                out = json.loads(json.dumps(s.stats))
                out["replicas"] = {f"{k[0]}/{k[1]}": d["replicas"]
                                   for k, d in s.deployments.items()}
                out["pods"] = {f"{k[0]}/{k[1]}": [p.port for p in v]
                               for k, v in s.pods.items()}
                out["ready_pods"] = {f"{k[0]}/{k[1]}": [p.port for p in v if p.ready]
                                     for k, v in s.pods.items()}
                everyone = {k: list(v) for k, v in s.all_pods.items()}
            out["arrivals"], out["late_arrivals"] = {}, {}
            for k, pods in everyone.items():
                key = f"{k[0]}/{k[1]}"
                for pod in pods:
                    seen = pod.read_arrivals()
                    out["arrivals"][key] = out["arrivals"].get(key, 0) + len(seen)
                    late = [[t, pod.port, target] for t, target in seen
                            if pod.down_at is not None and t > pod.down_at]
                    if late:
                        out["late_arrivals"].setdefault(key, []).extend(late)
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

    REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               409: "Conflict", 410: "Expired", 422: "Invalid", 429: "TooManyRequests",
               500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}

    def fault(self, method, path, query):
        """An injected fault for this request, if one matches. The request
        body has been read already (self.body), so a kept-alive connection
        stays in step. Returns True when the request is answered (or dropped)."""
        s = self.store
        with s.cv:
            for f in s.faults:
                if (f["count"] > 0 and path.startswith(f["prefix"])
                        and (not f["method"] or f["method"] == method)
                        and (not f["query"] or f["query"] in query)
                        and (not f["body"] or f["body"].encode() in self.body)):
                    f["count"] -= 1
                    s.stats["faults_hit"] += 1
                    break
            else:
                return False
        if f["delay"]:
            time.sleep(f["delay"])
        if f["pass"]:                   # late, but answered normally
            return False
        if f["stall"]:                  # accepted, never answered
            time.sleep(f["stall"])
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        code = f["status"]
        if code == 0:  # the connection dies without an answer
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        ra = f["retry_after"] if f["retry_after"] is not None else (1 if code == 429 else None)
        extra = [("Retry-After", str(ra))] if ra is not None else []
        self.send_json(code, status(code, self.REASONS.get(code, "InternalError"),
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
        ready = len([p for p in self.store.pods.get((ns, name), []) if p.ready])
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
        self.body = self.read_body()    # always: keep-alive stays in step
        self.arrived = time.time()      # before any injected delay
        if path.startswith("/_control/"):
            return self.control(method, path)
        if not self.authorized():
            return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        if self.fault(method, path, url.query):
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
        return self.send_json(404, status(404, "NotFound", f"the server could not find {path}"))

    def scale_object(self, ns, name, d):
        ready = len([p for p in self.store.pods.get((ns, name), []) if p.ready])
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": name, "namespace": ns, "resourceVersion": d["rv"],
                             "uid": d["uid"]},
                "spec": {"replicas": d["replicas"]} if d["replicas"] else {},
                "status": {"replicas": ready, "selector": f"app={name}"}}

    def deployment(self, method, ns, name, sub):
        s = self.store
        body = self.body
        d = s.deployments.get((ns, name))
        if d is None:
            return self.send_json(404, status(404, "NotFound",
                                              f'deployments.apps "{name}" not found'))
        if sub is None and method == "GET":
            return self.send_json(200, self.deployment_object(ns, name, d))
        if sub != "scale":
            return self.send_json(405, status(405, "MethodNotAllowed", "only scale here"))
        key = f"{ns}/{name}"
        if method == "GET":
            with s.cv:
                s.stats["scale_gets"][key] = s.stats["scale_gets"].get(key, 0) + 1
                return self.send_json(200, self.scale_object(ns, name, d))
        if method not in ("PATCH", "PUT"):
            return self.send_json(405, status(405, "MethodNotAllowed", method))
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        ok = ("application/merge-patch+json", "application/strategic-merge-patch+json",
              "application/json")
        if ctype not in ok:
            return self.send_json(415, status(415, "UnsupportedMediaType",
                                              f"the body of the request was in an unknown "
                                              f"format - accepted media types include: "
                                              f"{', '.join(ok)}"))
        try:
            patch = json.loads(body)
            spec = patch.get("spec") or {}
            replicas = spec.get("replicas")
            replicas = None if replicas is None else int(replicas)
            want_rv = (patch.get("metadata") or {}).get("resourceVersion")
        except (ValueError, AttributeError, TypeError):
            return self.send_json(400, status(400, "BadRequest", "invalid patch"))
        if replicas is not None and replicas < 0:
            return self.send_json(422, status(422, "Invalid", "spec.replicas: must be >= 0"))
        with s.cv:
            # A merge patch carrying metadata.resourceVersion is a
            # precondition: it applies only to that version.
            if want_rv is not None and str(want_rv) != d["rv"]:
                s.stats["conflicts"] += 1
                return self.send_json(409, status(
                    409, "Conflict",
                    f'Operation cannot be fulfilled on deployments.apps "{name}": the '
                    f'object has been modified; please apply your changes to the latest '
                    f'version and try again'))
            s.stats["scale_patches"][key] = s.stats["scale_patches"].get(key, 0) + 1
            s.stats["scale_history"].setdefault(key, []).append(replicas)
            if replicas == 0:
                downs = s.stats.setdefault("scale_to_zero", {})
                downs[key] = downs.get(key, 0) + 1
        if replicas is not None:
            s.scale(ns, name, replicas, begun=self.arrived)
        with s.cv:
            return self.send_json(200, self.scale_object(ns, name, s.deployments[(ns, name)]))

    def endpointslices(self, ns, q):
        s = self.store
        sel = (q.get("labelSelector") or [""])[0]
        svc = sel.split("=", 1)[1] if sel.startswith("kubernetes.io/service-name=") else None

        def match(obj):
            return obj["metadata"]["namespace"] == ns and (
                svc is None or obj["metadata"]["labels"].get("kubernetes.io/service-name") == svc)

        self.selector = f"{ns}/{svc}"
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
        by = s.stats["open_watches_by"]
        with s.cv:
            s.stats["watches"] += 1
            s.stats["open_watches"] += 1
            by[self.selector] = by.get(self.selector, 0) + 1
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
                by[self.selector] -= 1

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
    ap.add_argument("--readiness-delay", type=float, default=0.3,
                    help="a pod listens at once but is ready only after this")
    ap.add_argument("--bookmark-interval", type=float, default=1.0)
    ap.add_argument("--tls-cert", help="serve HTTPS (kubectl sends tokens only over TLS)")
    ap.add_argument("--tls-key")
    ap.add_argument("--pod-dir", help="where pods record the requests they read "
                    "(default: beside the token file)")
    a = ap.parse_args()
    store = Store(a.pod_start_delay, a.readiness_delay,
                  a.pod_dir or os.path.join(os.path.dirname(os.path.abspath(a.token_file)),
                                            "pods"))
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
