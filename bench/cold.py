#!/usr/bin/python3
"""Scale-to-zero benchmarks (bench/run calls this; or run it alone).

1. Activation overhead: for a cold app, the time from the moment the app
   starts listening to the first response byte at the client. Median over
   N wakes (BENCH_WAKES, 20). Target <= 5 ms.
   - exec: the app writes a timestamp right after listen();
   - Kubernetes, through the API stand-in (tests/lib/kubeapi.py, Redis
     routes): the stand-in stamps the pod when its process has printed
     "listening" (right after listen(), so at most a pipe read late, which
     flatters the number by well under a millisecond). The pod is published
     ready:false first and ready:true only 2 s later, like the kubelet: the
     gateway's own probe (every [kubernetes] probe_interval) finds it. Run
     with the default probe_interval (50ms) and with 5ms.
2. Held requests: 10,000 concurrent requests (BENCH_HELD) to one cold app
   (nginx, so the app is not the bottleneck) are all answered after the
   wake; the gateway's peak RSS growth is reported. Target <= 40 MB. The
   soft RLIMIT_NOFILE is raised to the hard limit (the gateway inherits it);
   each side needs one descriptor per held request.
"""
import os
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import gwtest  # noqa: E402

# A minimal app that records when it started listening.
APP = r'''
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(128)
t = time.time()
open(sys.argv[2], "w").write(repr(t))
while True:
    c, _ = s.accept(); c.recv(65536)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    c.close()
'''


def activation(tmp, runs):
    app = os.path.join(tmp, "app.py")
    with open(app, "w") as f:
        f.write(APP)
    stamp = os.path.join(tmp, "listening")
    port = gwtest.free_port()
    host = "app-bench001.localhost"
    g = gwtest.Gateway(tmp, {}, config=f"""
[log]
level = warn
[exec]
{host} = 127.0.0.1:{port} exec {gwtest.PYTHON} {app} $PORT {stamp}
""")
    out = []
    try:
        for _ in range(runs):
            if os.path.exists(stamp):
                os.unlink(stamp)
            s = socket.create_connection(("127.0.0.1", g.port))
            s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            s.recv(1)
            first_byte = time.time()
            s.close()
            with open(stamp) as f:
                listening = float(f.read())
            out.append((first_byte - listening) * 1000)
            subprocess.run(["pkill", "-f", f"{app} {port}"], check=False)
            deadline = time.time() + 5
            while time.time() < deadline:   # wait until it is really gone
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    time.sleep(0.02)
                except OSError:
                    break
            time.sleep(0.05)  # let the gateway see the exit (SIGCHLD)
    finally:
        g.stop()
    return out


def activation_kube(tmp, runs, probe_interval):
    shutil_redis = shutil.which("redis-server")
    if not shutil_redis:
        return None
    os.makedirs(os.path.join(tmp, "kube"))
    os.makedirs(os.path.join(tmp, "redis"))
    k = gwtest.KubeAPI(os.path.join(tmp, "kube"), pod_start_delay=0.05, readiness_delay=2.0)
    rd = gwtest.Redis(os.path.join(tmp, "redis"))
    host = "app-bench003.apps.test"
    out = []
    g = None
    try:
        k.control("deployments", {"namespace": "apps", "name": "web"})
        g = gwtest.Gateway(tmp, {}, config=f"""
[log]
level = info
access_log = off
[redis]
address = {rd.addr}
[kubernetes]
api_url = {k.url}
token_file = {k.token_file}
probe_interval = {probe_interval}
[activator]
idle_timeout = 1h
""")
        deadline = time.time() + 10
        while "in sync with Redis" not in g.stderr() and time.time() < deadline:
            time.sleep(0.05)
        rd.r.hset(f"gw:route:{host}", mapping={"project": "app-bench003", "visibility": "public",
                                                "namespace": "apps", "deployment": "web"})
        rd.r.sadd("gw:routes", host)
        rd.r.publish("gw:events", f"route {host}")
        time.sleep(0.3)
        for i in range(runs):
            s = socket.create_connection(("127.0.0.1", g.port))
            s.sendall(f"GET /echo HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            s.recv(1)
            first_byte = time.time()
            s.close()
            st = k.stats()
            out.append((first_byte - st["listening_at"]["apps/web"][i]) * 1000)
            # Scaled to 0 behind the gateway's back; it sees the endpoints go.
            k.control("scale", {"namespace": "apps", "name": "web", "replicas": 0})
            want = "no endpoint left"
            deadline = time.time() + 10
            while g.stderr().count(want) < i + 1 and time.time() < deadline:
                time.sleep(0.02)
    finally:
        if g:
            g.stop()
        k.stop()
        rd.stop()
    return out


def held(tmp, n):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        return None
    port = gwtest.free_port()
    host = "app-bench002.localhost"
    ndir = os.path.join(tmp, "nginx")
    os.makedirs(ndir)
    with open(os.path.join(ndir, "nginx.conf"), "w") as f:
        f.write(f"""worker_processes 1; pid {ndir}/nginx.pid; error_log {ndir}/error.log warn;
worker_rlimit_nofile 4096;
events {{ worker_connections 4000; }}
http {{ access_log off; client_body_temp_path {ndir}; proxy_temp_path {ndir};
fastcgi_temp_path {ndir}; uwsgi_temp_path {ndir}; scgi_temp_path {ndir};
server {{ listen 127.0.0.1:{port} backlog=16384; location / {{ return 200 'ok'; }} }} }}
""")
    g = gwtest.Gateway(tmp, {}, config=f"""
[gateway]
max_connections = {n + 1000}
[log]
level = warn
access_log = off
[activator]
hold_max_per_project = {n}
hold_max = {n}
hold_timeout = 120s
[exec]
{host} = 127.0.0.1:{port} sleep 3; exec {nginx} -p {ndir} -c {ndir}/nginx.conf -g 'daemon off;'
""")
    try:
        base = gwtest.rss_kib(g.proc.pid)
        sel = selectors.DefaultSelector()
        socks = []
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", g.port), timeout=30)
            s.sendall(f"GET /{i} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, [b""])
            socks.append(s)
        time.sleep(0.5)
        held_rss = gwtest.rss_kib(g.proc.pid)   # everything held, nothing released yet
        peak = held_rss
        ok = 0
        pending = n
        deadline = time.time() + 120
        while pending and time.time() < deadline:
            peak = max(peak, gwtest.rss_kib(g.proc.pid))
            for key, _ in sel.select(timeout=0.5):
                try:
                    chunk = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""  # counted with what arrived
                key.data[0] += chunk
                if not chunk:
                    ok += gwtest.status_of(key.data[0]) == 200
                    pending -= 1
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
        for s in socks:
            if s.fileno() >= 0:
                s.close()
        return n, ok, base, peak, held_rss
    finally:
        g.stop()
        subprocess.run(["pkill", "-f", f"{ndir}/nginx.conf"], check=False)


def main():
    runs = int(os.environ.get("BENCH_WAKES", "20"))
    n = int(os.environ.get("BENCH_HELD", "10000"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    def report(what, ms):
        print(f"activation overhead, {what} (first response byte - app listening), "
              f"{len(ms)} wakes: median {statistics.median(ms):.2f} ms, min {min(ms):.2f}, "
              f"max {max(ms):.2f} (target <= 5 ms)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        report("exec, probe_interval 2ms", activation(tmp, runs))
    for interval in ("50ms", "5ms"):
        with tempfile.TemporaryDirectory() as tmp:
            ms = activation_kube(tmp, runs, interval)
            if ms is None:
                print("activation overhead, Kubernetes: skipped (no redis-server)")
                break
            report(f"Kubernetes stand-in, probe_interval {interval}", ms)
    if hard < n + 1000:
        # Client and gateway each need a descriptor per held request (the
        # gateway's app connections are bounded by release_concurrency).
        n = hard - 1000
        print(f"held requests: RLIMIT_NOFILE hard limit {hard} allows {n}, not 10000")
    with tempfile.TemporaryDirectory() as tmp:
        r = held(tmp, n)
        if r is None:
            print("held requests: skipped (nginx not installed)")
            return
        total, ok, base, peak, held_rss = r
        print(f"held requests: {ok}/{total} answered 200 after the wake; gateway RSS "
              f"{base / 1024:.1f} MB, {held_rss / 1024:.1f} MB with all held, peak "
              f"{peak / 1024:.1f} MB during the release "
              f"(+{(peak - base) / 1024:.1f} MB, target <= 40 MB)")


if __name__ == "__main__":
    main()
