"""Several gateway processes (replicas) on one redis-server and the
Kubernetes API stand-in, with fleet timings short enough for tests. Used by
test_fleet*.py; each test declares what it needs inline."""
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402

NS = "apps"

# The fleet's timings in tests: a dead replica or leader is noticed within
# seconds, not the production defaults' tens of seconds.
FLEET = {"replica_ttl": "3s", "lease_ttl": "3s", "wake_lock_ttl": "2s",
         "drain_timeout": "1s", "reap_interval": "250ms"}
ACTIVATOR = {"idle_timeout": "1s", "hold_timeout": "20s", "wake_timeout": "30s"}
KUBE = {"token_reload": "1s", "request_timeout": "2s", "watch_timeout": "5s"}


def host_of(project):
    return f"{project}.apps.test"


class Fleet:
    def __init__(self, tmp_path, redis_server, api_kw=None):
        self.tmp = tmp_path
        self.redis = redis_server
        self.r = redis_server.r
        d = tmp_path / "kube"
        d.mkdir()
        self.k = gwtest.KubeAPI(d, **(api_kw or {}))
        self.gws = []

    # ---- setup -------------------------------------------------------------
    def deployment(self, name, **kw):
        self.k.control("deployments", {"namespace": NS, "name": name, **kw})

    def route(self, project, deployment, publish=True, **fields):
        host = host_of(project)
        self.r.delete(f"gw:route:{host}")
        self.r.hset(f"gw:route:{host}", mapping={
            "project": project, "visibility": fields.pop("visibility", "public"),
            "namespace": NS, "deployment": deployment, **fields})
        self.r.sadd("gw:routes", host)
        if publish:
            self.r.publish("gw:events", f"route {host}")

    def gateways(self, n, **sections):
        conf = {"fleet": dict(FLEET), "activator": dict(ACTIVATOR),
                "kubernetes": dict(KUBE)}
        for s, kv in sections.items():
            conf.setdefault(s, {}).update(kv)
        conf["kubernetes"].update(api_url=self.k.url, token_file=self.k.token_file)
        text = f"[redis]\naddress = {self.redis.addr}\n"
        for s, kv in conf.items():
            text += f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items())
        for _ in range(n):
            d = self.tmp / f"gw{len(self.gws)}"
            d.mkdir()
            self.gws.append(gwtest.Gateway(d, {}, text))
        for g in self.gws[-n:]:
            gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=15)
        # every one has beaten its heartbeat (it counts for scale-downs)
        gwtest.wait_for(lambda: self.r.zcard("gw:replicas") >= len(self.live()),
                        timeout=10)
        return self.gws[-n:]

    def live(self):
        return [g for g in self.gws if g.proc.poll() is None]

    # ---- what happened -------------------------------------------------------
    def stats(self):
        return self.k.stats()

    def replicas(self, dep):
        return self.stats()["replicas"].get(f"{NS}/{dep}", 0)

    def downs(self, dep):
        return self.stats().get("scale_to_zero", {}).get(f"{NS}/{dep}", 0)

    def ups(self, dep):
        return [t for t, n in self.stats()["scale_times"].get(f"{NS}/{dep}", []) if n]

    def late(self):
        return self.stats()["late_arrivals"]

    def by_pid(self, pid):
        return next(g for g in self.gws if g.proc.pid == pid)

    def holder(self, key):
        """The gateway whose fleet id is the value of key, or None."""
        v = self.r.get(key)
        if not v:
            return None
        pid = int(v.split(":")[-2])
        return next((g for g in self.gws if g.proc.pid == pid), None)

    def metric(self, name):
        total = 0.0
        for g in self.live():
            total += g.metrics().get(name, 0.0)
        return total

    def kill(self, g):
        g.proc.send_signal(signal.SIGKILL)
        g.proc.wait(timeout=5)

    def stop(self):
        failures = []
        for g in self.gws:
            killed = g.proc.poll() is not None
            try:
                rc = g.stop()
                if not killed and rc not in (0, -15):
                    failures.append(f"gateway exited with {rc}\n{g.stderr()[-3000:]}")
                g.check_clean()
            except AssertionError as e:
                failures.append(str(e))
        self.k.stop()
        return failures


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z .*")


def log_times(g, pattern):
    """Unix times of the log lines of g containing pattern."""
    import calendar
    out = []
    for line in g.stderr().splitlines():
        if pattern in line:
            m = LOG_TIME.match(line)
            if m:
                base, ms = m.group(1).split(".")
                t = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
                out.append(t + int(ms) / 1000.0)
    return out


def get_all(g, host, paths, timeout=40):
    """GET each path from g at once (one connection each); returns
    [(status, unix time the response arrived)] in order."""
    out = [None] * len(paths)

    def one(i, path):
        try:
            r, _ = g.request("GET", path, host, timeout=timeout)
            out[i] = (r.status, time.time())
        except Exception as e:  # a killed gateway's clients
            out[i] = (repr(e), time.time())
    ts = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(paths)]
    for t in ts:
        t.start()
    return ts, out


def join(threads, timeout=60):
    end = time.monotonic() + timeout
    for t in threads:
        t.join(timeout=max(0.1, end - time.monotonic()))


def max_overlap(intervals):
    """Most intervals [a, b] open at one time."""
    ev = sorted([(a, 1) for a, b in intervals] + [(b, -1) for a, b in intervals],
                key=lambda e: (e[0], e[1]))
    cur = best = 0
    for _, d in ev:
        cur += d
        best = max(best, cur)
    return best


def ctl(gw_conf, *args):
    return subprocess.run([gwtest.GATEWAYCTL_BIN, "-c", gw_conf, *args],
                          capture_output=True, text=True, timeout=10)
