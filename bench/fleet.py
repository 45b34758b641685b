#!/usr/bin/python3
"""Fleet benchmarks (docs/fleet.md; run alone or from bench/run).

1. Ready news across replicas: 3 gateway processes on one redis-server and
   the Kubernetes API stand-in, BENCH_FLEET_HELD (1000) requests held on
   each for one cold project. The app is nginx on the route's fixed
   address (so the app is not what is measured), started 0.5 s after the
   scale call; run with every replica probing, and with two of them
   probing only every 10 s (so only the ready news can release them).
   Reported: app listening -> the lock holder's probe; the
   holder's ready -> each replica's release; the holder's ready -> the last
   response of each replica, and of all. Log lines have 1 ms resolution;
   client times are taken as responses complete (one selector for all).
2. Route table: BENCH_FLEET_ROUTES (10000,100000) routes pipelined into
   Redis, then one gateway started: time from start to "in sync", its RSS
   then (against the same gateway with no routes), and how long route
   changes take to be served afterwards (median of 5).

Needs redis-server and nginx; prints one line per result.
"""
import calendar
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

FLEET = """
[log]
level = info
access_log = off
[redis]
address = {redis}
[kubernetes]
api_url = {api}
token_file = {token}
[activator]
hold_timeout = 60s
hold_max_per_project = {held}
hold_max = {held}
idle_timeout = 1h
[gateway]
max_connections = {conns}
[fleet]
replica_ttl = 3s
"""


def log_time(line):
    stamp = line.split(" ", 1)[0].rstrip("Z")
    base, ms = stamp.split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(ms) / 1000


def first_line(g, text):
    for line in g.stderr().splitlines():
        if text in line:
            return line
    return None


def wait(pred, timeout, step=0.005):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def nginx_conf(d, port):
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(f"""worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log warn;
worker_rlimit_nofile 8192;
events {{ worker_connections 8000; }}
http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};
fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
server {{ listen 127.0.0.1:{port} backlog=16384; location / {{ return 200 'ok'; }} }} }}
""")


def ready_news(tmp, held, news_only):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not shutil.which("redis-server") or not os.path.exists(nginx):
        print("fleet ready news: skipped (needs redis-server and nginx)")
        return
    for d in ("kube", "redis", "nginx"):
        os.makedirs(os.path.join(tmp, d))
    k = gwtest.KubeAPI(os.path.join(tmp, "kube"), pod_start_delay=0.1)
    rd = gwtest.Redis(os.path.join(tmp, "redis"))
    app_port = gwtest.free_port()
    ndir = os.path.join(tmp, "nginx")
    nginx_conf(ndir, app_port)
    host = "app-bfleet01.apps.test"
    gws, socks, app = [], [], None
    try:
        k.control("deployments", {"namespace": "apps", "name": "web"})
        rd.r.hset(f"gw:route:{host}", mapping={
            "project": "app-bfleet01", "visibility": "public", "namespace": "apps",
            "deployment": "web", "upstream": f"127.0.0.1:{app_port}"})
        rd.r.sadd("gw:routes", host)
        conf = FLEET.format(redis=rd.addr, api=k.url, token=k.token_file, held=held,
                            conns=held + 100)
        for i in range(3):
            d = os.path.join(tmp, f"gw{i}")
            os.makedirs(d)
            # news only: two replicas probe every 10 s, so the holder's
            # ready news is what releases them.
            slow = "[kubernetes]\nprobe_interval = 10s\n" if news_only and i else ""
            gws.append(gwtest.Gateway(d, {}, conf + slow))
        for g in gws:
            wait(lambda: "in sync with Redis" in g.stderr(), 10)
        sel = selectors.DefaultSelector()
        for i, g in enumerate(gws):
            if i == 1:   # the first replica takes the wake lock
                wait(lambda: rd.r.get("gw:wake:app-bfleet01"), 10)
            for j in range(held):
                s = socket.create_connection(("127.0.0.1", g.port), timeout=30)
                s.sendall(f"GET /?g={i}&n={j} HTTP/1.1\r\nHost: {host}\r\n"
                          f"Connection: close\r\n\r\n".encode())
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, [i, b""])
                socks.append(s)
        wait(lambda: k.stats()["scale_patches"].get("apps/web"), 30)
        time.sleep(0.5)   # the "pod" starts
        app = subprocess.Popen([nginx, "-p", ndir, "-c", f"{ndir}/nginx.conf", "-g",
                                "daemon off;"], stderr=subprocess.DEVNULL)
        listening = None
        while listening is None and app.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", app_port), timeout=0.1).close()
                listening = time.time()
            except OSError:
                time.sleep(0.0005)
        last = [0.0] * 3
        ok = [0] * 3
        pending = len(socks)
        end = time.time() + 60
        while pending and time.time() < end:
            for key, _ in sel.select(timeout=0.5):
                try:
                    chunk = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                key.data[1] += chunk
                if not chunk:
                    i = key.data[0]
                    last[i] = time.time()
                    ok[i] += gwtest.status_of(key.data[1]) == 200
                    pending -= 1
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
        holder = next((g for g in gws if first_line(g, "(probed); releasing")), None)
        if holder is None or listening is None:
            print("fleet ready news: no replica became ready")
            return
        t_ready = log_time(first_line(holder, "(probed); releasing"))
        rel = [log_time(first_line(g, "; releasing") or "") - t_ready for g in gws]
        how = ("news only: 2 replicas probe every 10 s" if news_only
               else "every replica probing every 50 ms")
        print(f"fleet ready news ({how}), 3 replicas x {held} held requests: "
              f"{sum(ok)}/{3 * held} "
              f"answered 200; app listening -> holder's probe "
              f"{(t_ready - listening) * 1000:.0f} ms (probe_interval 50ms); holder's "
              f"ready -> each replica's release starts "
              f"{[round(x * 1000) for x in rel]} ms (log, 1 ms resolution); holder's "
              f"ready -> last response per replica "
              f"{[round((x - t_ready) * 1000) for x in last]} ms; readiness -> last held "
              f"request answered across all {(max(last) - listening) * 1000:.0f} ms",
              flush=True)
    finally:
        for s in socks:
            if s.fileno() >= 0:
                s.close()
        for g in gws:
            g.stop()
        if app:   # TERM: the master takes its worker along (KILL would not)
            app.terminate()
            app.wait()
        k.stop()
        rd.stop()


def routes(tmp, n):
    os.makedirs(os.path.join(tmp, "redis"))
    rd = gwtest.Redis(os.path.join(tmp, "redis"))
    g = None
    try:
        conf = f"[log]\nlevel = info\naccess_log = off\n[redis]\naddress = {rd.addr}\n"
        d0 = os.path.join(tmp, "empty")
        os.makedirs(d0)
        g = gwtest.Gateway(d0, {}, conf)
        wait(lambda: "in sync with Redis" in g.stderr(), 10)
        base = gwtest.rss_kib(g.proc.pid)
        g.stop()
        t = time.time()
        gwtest.load_routes(rd.r, n, "127.0.0.1:9")
        loaded = time.time() - t
        d1 = os.path.join(tmp, "full")
        os.makedirs(d1)
        t0 = time.time()
        g = gwtest.Gateway(d1, {}, conf)
        want = f"in sync with Redis: {n} route(s)"
        wait(lambda: want in g.stderr(), 300)
        line = first_line(g, want)
        sync = (log_time(line) - t0) if line else float("nan")
        rss = gwtest.rss_kib(g.proc.pid)
        took = []
        for i in range(5):
            h = f"app-chg{i:03d}.apps.test"
            rd.r.hset(f"gw:route:{h}", mapping={"project": f"app-chg{i:03d}",
                                                "visibility": "public",
                                                "upstream": "127.0.0.1:9"})
            rd.r.sadd("gw:routes", h)
            t = time.monotonic()
            rd.r.publish("gw:events", f"route {h}")
            while time.monotonic() - t < 5:
                # 502: routed (nothing listens on :9); 404 before the change
                if g.request("GET", "/", h, timeout=5)[0].status != 404:
                    took.append(time.monotonic() - t)
                    break
        print(f"routes: {n} loaded into Redis in {loaded:.1f} s (pipelined); gateway in "
              f"sync {sync * 1000:.0f} ms after start (1 ms log resolution); RSS "
              f"{rss / 1024:.1f} MiB vs {base / 1024:.1f} MiB with none "
              f"(+{(rss - base) / n:.2f} KiB per route); a route change served after "
              f"{statistics.median(took) * 1000:.1f} ms (median of {len(took)})",
              flush=True)
    finally:
        if g:
            g.stop()
        rd.stop()


def main():
    held = int(os.environ.get("BENCH_FLEET_HELD", "1000"))
    sizes = [int(x) for x in os.environ.get("BENCH_FLEET_ROUTES", "10000,100000").split(",")]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 3 * held + 500:
        held = (hard - 500) // 3
    for news_only in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            ready_news(tmp, held, news_only)
    if not shutil.which("redis-server"):
        print("routes: skipped (no redis-server)")
        return
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            routes(tmp, n)


if __name__ == "__main__":
    main()
