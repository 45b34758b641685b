#!/usr/bin/python3
"""Scale-to-zero benchmarks (bench/run calls this; or run it alone).

1. Activation overhead: for a cold app, the time from the moment the app
   starts listening (it writes a timestamp right after listen()) to the
   first response byte at the client. Median over N wakes. Target <= 5 ms.
2. Held requests: 10,000 concurrent requests to one cold app (nginx, so the
   app is not the bottleneck) are all answered after the wake; the gateway's
   peak RSS growth is reported. Target <= 40 MB.
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


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


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
worker_rlimit_nofile 30000;
events {{ worker_connections 30000; }}
http {{ access_log off; client_body_temp_path {ndir}; proxy_temp_path {ndir};
fastcgi_temp_path {ndir}; uwsgi_temp_path {ndir}; scgi_temp_path {ndir};
server {{ listen 127.0.0.1:{port} backlog=16384; location / {{ return 200 'ok'; }} }} }}
""")
    g = gwtest.Gateway(tmp, {}, config=f"""
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
        base = rss_kb(g.proc.pid)
        sel = selectors.DefaultSelector()
        socks = []
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", g.port), timeout=30)
            s.sendall(f"GET /{i} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, [b""])
            socks.append(s)
        time.sleep(0.5)
        held_rss = rss_kb(g.proc.pid)   # everything held, nothing released yet
        peak = held_rss
        ok = 0
        pending = n
        deadline = time.time() + 120
        while pending and time.time() < deadline:
            peak = max(peak, rss_kb(g.proc.pid))
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
    with tempfile.TemporaryDirectory() as tmp:
        ms = activation(tmp, runs)
        print(f"activation overhead (first response byte - app listening), {runs} wakes: "
              f"median {statistics.median(ms):.2f} ms, min {min(ms):.2f}, max {max(ms):.2f}"
              f" (target <= 5 ms)")
    if hard < 2 * n + 200:
        # The gateway needs a client and an app connection per request.
        n = (hard - 200) // 2
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
