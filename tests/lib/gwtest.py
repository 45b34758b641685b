"""Fixtures' machinery: start real processes on free loopback ports, talk to
them with real clients, always tear them down. Every wait is bounded."""
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GATEWAY_BIN = os.environ.get("GATEWAY_BIN", os.path.join(REPO, "build", "gateway", "gateway"))
BACKEND = os.path.join(REPO, "tests", "lib", "backend.py")
PYTHON = "/usr/bin/python3"

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")


# Ports handed out by free_port(): below the kernel's ephemeral range
# (ip_local_port_range starts at 32768), so no client socket and no bind(0)
# listener (backends, stand-ins) can take one between the pick and the
# gateway's own bind; never the same one twice in a row.
_PORT_LOW, _PORT_HIGH = 20000, 32767
_handed = []


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(_PORT_LOW, _PORT_HIGH)
        if port in _handed:
            continue
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed.append(port)
        del _handed[:-512]
        return port
    raise RuntimeError("no free port below the ephemeral range")


def _stderr_tail(proc):
    """The last lines a dead process wrote, when its stderr went to a file."""
    path = getattr(proc, "stderr_path", None)
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            return "\n" + f.read()[-2000:].decode(errors="replace")
    except OSError:
        return ""


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening"
                               + _stderr_tail(proc))
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


class Backend:
    """tests/lib/backend.py as a separate process."""

    def __init__(self, demo=False, host="127.0.0.1"):
        args = [PYTHON, BACKEND, "--port", "0", "--host", host]
        if demo:
            args.append("--demo")
        self.host = host
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening"):
            self.proc.kill()
            raise RuntimeError("backend did not start")
        self.port = int(line.split()[1])
        self.addr = f"{host}:{self.port}" if ":" not in host else f"[{host}]:{self.port}"

    def stats(self):
        c = http.client.HTTPConnection(self.host, self.port, timeout=5)
        c.request("GET", "/stats", headers={"Connection": "close"})
        data = json.loads(c.getresponse().read())
        c.close()
        return data

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)


class Gateway:
    """The gateway binary with a generated config file."""

    def __init__(self, tmpdir, routes, config="", workers=1, listen=None, env=None,
                 popen=None):
        self.port = free_port()
        self.host = "127.0.0.1"
        self.tmpdir = str(tmpdir)
        self.conf = os.path.join(self.tmpdir, "gateway.conf")
        self.access_log = os.path.join(self.tmpdir, "access.log")
        self.err_path = os.path.join(self.tmpdir, "gateway.stderr")
        listen_lines = "\n".join(f"listen = {a.format(port=self.port)}"
                                 for a in (listen or ["127.0.0.1:{port}"]))
        sections = {"gateway": [], "client": [], "upstream": [], "log": []}
        current = None
        for line in config.strip().splitlines():
            line = line.strip()
            if line.startswith("["):
                current = line.strip("[]")
                sections.setdefault(current, [])
            elif line:
                sections[current].append(line)
        # The admin listener (default 127.0.0.1:9180) gets a free port of its
        # own unless the test configures [admin] listen itself.
        admin = sections.setdefault("admin", [])
        self.admin_port = None
        listen_line = next((l for l in admin if l.replace(" ", "").startswith("listen=")), None)
        if listen_line is None:
            self.admin_port = free_port()
            admin.append(f"listen = 127.0.0.1:{self.admin_port}")
        elif listen_line.split("=", 1)[1].strip():
            self.admin_port = int(listen_line.rsplit(":", 1)[1])
        text = f"[gateway]\n{listen_lines}\nworkers = {workers}\n" + "\n".join(sections.pop("gateway"))
        text += "\n[log]\nlevel = debug\naccess_log = " + self.access_log + "\n" + "\n".join(sections.pop("log"))
        for name, lines in sections.items():
            text += f"\n[{name}]\n" + "\n".join(lines) + "\n"
        text += "\n[routes]\n" + "".join(f"{h} = {', '.join(a)}\n" for h, a in routes.items())
        with open(self.conf, "w") as f:
            f.write(text)
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([GATEWAY_BIN, "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=self.err, env=env, **(popen or {}))
        self.proc.stderr_path = self.err_path
        wait_port(self.port, proc=self.proc)
        if self.admin_port:   # bound just after the client listeners
            wait_port(self.admin_port, proc=self.proc)

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def access_lines(self):
        try:
            with open(self.access_log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def admin_get(self, path, timeout=10):
        """GET path on the admin listener -> (status, headers, body text)."""
        c = http.client.HTTPConnection(self.host, self.admin_port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read().decode()
        finally:
            c.close()

    def metrics(self, timeout=10):
        """Scrape /metrics -> {'name{labels}': float}."""
        status, _, body = self.admin_get("/metrics", timeout)
        assert status == 200, body
        return parse_metrics(body)

    def connect(self, timeout=10):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, host, body=None, headers=None, timeout=10):
        c = self.connect(timeout)
        h = {"Host": host}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, data

    def raw(self, data, timeout=5.0, until_close=True):
        return raw_exchange(self.port, data, timeout, until_close)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stop and return the exit status; kill if it does not stop."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise AssertionError("gateway did not stop within %ss" % timeout)
        self.err.close()
        return self.proc.returncode

    def check_clean(self):
        err = self.stderr()
        for m in SANITIZER_MARKERS:
            assert m not in err, f"sanitizer report in gateway stderr:\n{err[-4000:]}"


def parse_metrics(text):
    """Prometheus text -> {'name{labels}': float}; comments skipped."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def raw_exchange(port, data, timeout=5.0, until_close=True, host="127.0.0.1"):
    """Send bytes, return everything read until the peer closes (or timeout)."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if not until_close and b"\r\n\r\n" in out:
                break
        return out
    finally:
        s.close()


def status_of(resp_bytes):
    line = resp_bytes.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def split_responses(data):
    """Split a byte stream of Content-Length responses into (status, headers, body)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            headers[k.strip().lower().decode()] = v.strip().decode()
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


GATEWAYCTL_BIN = os.environ.get("GATEWAYCTL_BIN",
                                os.path.join(REPO, "build", "gateway", "gatewayctl"))


class Redis:
    """A throwaway redis-server on a free port, no persistence."""

    def __init__(self, tmpdir, port=None):
        self.port = port or free_port()
        self.dir = str(tmpdir)
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)
        import redis  # python3-redis
        self.r = redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True,
                             socket_timeout=5)
        for _ in range(100):  # listening is not yet "loading done"
            try:
                self.r.ping()
                break
            except Exception:
                time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    # Writers following docs/redis.md, for tests that bypass gatewayctl.
    def put_route(self, host, upstream, visibility="public", project=None, **fields):
        key = f"gw:route:{host}"
        self.r.delete(key)
        self.r.hset(key, mapping={"project": project or host.split(".")[0],
                                  "visibility": visibility, "upstream": upstream,
                                  "namespace": "ns", "deployment": "web", **fields})
        self.r.sadd("gw:routes", host)
        self.r.publish("gw:events", f"route {host}")

    def rm_route(self, host):
        self.r.delete(f"gw:route:{host}")
        self.r.srem("gw:routes", host)
        self.r.publish("gw:events", f"route {host}")


def ctl(conf, *args, timeout=10):
    """Run gatewayctl with the gateway's config; returns CompletedProcess."""
    return subprocess.run([GATEWAYCTL_BIN, "-c", conf, *args], capture_output=True,
                          text=True, timeout=timeout)


def rss_kib(pid, children=False):
    """VmRSS of process pid in KiB (0 once it is gone); with children=True
    the sum over pid and its direct children (a supervisor's workers)."""
    pids = [pid]
    if children:
        try:
            for t in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{t}/children") as f:
                    pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), 0)
        except OSError:
            pass
    return total


def load_routes(r, n, upstream, prefix="app-r", batch=2000):
    """n public routes {prefix}NNNNNN.apps.test -> upstream, written to Redis
    r (redis-py) the way gatewayctl lays them out, pipelined in batches."""
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        host = f"{prefix}{i:06d}.apps.test"
        pipe.hset(f"gw:route:{host}", mapping={"project": f"{prefix}{i:06d}",
                                               "visibility": "public",
                                               "upstream": upstream})
        pipe.sadd("gw:routes", host)
        if i % batch == batch - 1:
            pipe.execute()
    pipe.execute()


def wait_for(pred, timeout=3.0, step=0.01):
    """Poll pred() until true; returns the seconds it took, or raises."""
    t0 = time.monotonic()
    while True:
        v = pred()
        if v:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)


class KubeAPI:
    """tests/lib/kubeapi.py: the Kubernetes API stand-in, as a process."""

    def __init__(self, tmpdir, pod_start_delay=0.3, tls=False, port=0, readiness_delay=0.3):
        self.token_file = os.path.join(str(tmpdir), "token")
        self.set_token("token-1")
        args = [PYTHON, os.path.join(REPO, "tests", "lib", "kubeapi.py"), "--port", str(port),
                "--token-file", self.token_file, "--pod-start-delay", str(pod_start_delay),
                "--readiness-delay", str(readiness_delay)]
        self.ca_file = None
        if tls:  # a throwaway self-signed certificate for 127.0.0.1
            self.ca_file = os.path.join(str(tmpdir), "ca.crt")
            key = os.path.join(str(tmpdir), "tls.key")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", key, "-out", self.ca_file, "-days", "1",
                            "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1"],
                           check=True, capture_output=True, timeout=30)
            args += ["--tls-cert", self.ca_file, "--tls-key", key]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening"):
            self.proc.kill()
            raise RuntimeError("kubeapi did not start")
        self.port = int(line.split()[1])
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    def set_token(self, token):
        tmp = self.token_file + ".new"
        with open(tmp, "w") as f:
            f.write(token + "\n")
        os.replace(tmp, self.token_file)   # as the kubelet rotates it: atomically

    def control(self, path, body=None):
        if self.ca_file:
            import ssl
            c = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=10,
                context=ssl.create_default_context(cafile=self.ca_file))
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        if body is None:
            c.request("GET", "/_control/" + path)
        else:
            c.request("POST", "/_control/" + path, body=json.dumps(body),
                      headers={"Content-Type": "application/json"})
        data = json.loads(c.getresponse().read())
        c.close()
        return data

    def stats(self):
        return self.control("stats")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def concurrent_gets(port, host, n, timeout=60):
    """Open n connections at once, each sending GET /echo?i=I, and collect
    every answer (read until close). Returns {i: response bytes}."""
    import resource
    import selectors
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * n)), hard))
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(f"GET /echo?i={i} HTTP/1.1\r\nHost: {host}\r\n"
                  f"Connection: close\r\n\r\n".encode())
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [i, b""])
        socks.append(s)
    done = {}
    deadline = time.monotonic() + timeout
    while len(done) < n and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            try:
                chunk = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            key.data[1] += chunk
            if not chunk:
                done[key.data[0]] = key.data[1]
                sel.unregister(key.fileobj)
                key.fileobj.close()
    for s in socks:
        if s.fileno() >= 0:
            s.close()
    return done


def check_echoes(done, n):
    """Every one of n concurrent_gets answers is a 200 for its own request."""
    assert len(done) == n, f"only {len(done)} of {n} answered"
    bad = [i for i, resp in done.items()
           if status_of(resp) != 200 or f"/echo?i={i}".encode() not in resp]
    assert not bad, f"{len(bad)} wrong answers, e.g. {done[bad[0]][:300]!r}"
