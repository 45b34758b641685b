"""Concurrent keep-alive load for the fault-injection tests
(tests/integration/faults/): a few client threads, each on its own
kept-alive connection, sending GETs to one host while a test breaks
something else, and recording every outcome, so the test can assert that
the clients it did not aim at saw nothing.

Outcomes are status codes (int) or the name of the exception that ended the
exchange ("ConnectionResetError", "timeout", ...), prefixed with "fresh:"
when it was the first request on a new connection. A closed kept-alive
connection is reopened and counted in `reconnects`: closing an idle
connection is allowed by HTTP/1.1, answering a request wrongly is not."""
import http.client
import os
import socket
import struct
import threading
import time


class Load:
    def __init__(self, port, host, path="/echo", threads=6, headers=None, timeout=10,
                 pause=0.005):
        self.port, self.host, self.path = port, host, path
        self.headers = dict(headers or {})
        self.timeout, self.pause = timeout, pause
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.outcomes = []           # (monotonic time, status or error name)
        self.reconnects = 0
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(threads)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=self.timeout + 5)

    def _run(self):
        conn = None
        while not self.stop_ev.is_set():
            fresh = conn is None
            if fresh:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                conn.request("GET", self.path, headers={"Host": self.host, **self.headers})
                r = conn.getresponse()
                r.read()
                outcome = r.status
                if r.will_close:
                    conn.close()
                    conn = None
            except (http.client.RemoteDisconnected, BrokenPipeError):
                # The server closed a kept-alive connection between requests
                # (idle close, drain): not an error if the retry works.
                conn.close()
                conn = None
                with self.lock:
                    self.reconnects += 1
                if self.stop_ev.is_set():
                    break
                continue
            except (OSError, http.client.HTTPException) as e:
                outcome = "timeout" if isinstance(e, socket.timeout) else type(e).__name__
                if fresh and outcome != "ConnectionRefusedError":
                    outcome = "fresh:" + outcome
                conn.close()
                conn = None
            with self.lock:
                self.outcomes.append((time.monotonic(), outcome))
            time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def statuses(self, since=None):
        with self.lock:
            return [o for t, o in self.outcomes if since is None or t >= since]

    def bad(self, ok=(200,)):
        """Outcomes that are not in ok."""
        return [o for o in self.statuses() if o not in ok]

    def count(self):
        with self.lock:
            return len(self.outcomes)

    def wait_count(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while self.count() < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.count() >= n, f"load made only {self.count()} requests"


class Silent:
    """Accepts connections and never reads or writes a byte."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.addr = "127.0.0.1:%d" % self.srv.getsockname()[1]
        self.held = []
        self.closed = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.held.append(c)

    def peers_closed(self):
        """How many held connections the gateway has closed (EOF readable)."""
        n = 0
        for c in self.held:
            c.setblocking(False)
            try:
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        n += 1
                        break
            except BlockingIOError:
                pass
            except OSError:
                n += 1
        return n

    def stop(self):
        self.srv.close()
        for c in self.held:
            c.close()


def rst_close(sock):
    """Close with SO_LINGER 0: the kernel sends RST, not FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def nofile_limit(n):
    """A preexec_fn: RLIMIT_NOFILE n, soft and hard (the child cannot raise it)."""
    import resource

    def apply():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return apply


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    """utime + stime of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_until_close(sock, limit=None, timeout=10):
    """Read until EOF, reset or timeout -> (bytes, how it ended:
    "eof" | "reset" | "timeout")."""
    sock.settimeout(timeout)
    data = bytearray()
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            return bytes(data), "timeout"
        except ConnectionResetError:
            return bytes(data), "reset"
        if not chunk:
            return bytes(data), "eof"
        data += chunk
        if limit is not None and len(data) >= limit:
            return bytes(data), "limit"


def tcp_peers(pid):
    """pid's established TCP sockets as (local port, remote port) pairs,
    from /proc/net/tcp{,6} matched against the socket inodes in its fd table."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[9] in inodes and f[3] == "01":      # ESTABLISHED
                out.append((int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16)))
    return out


def conns_to(pid, port):
    return sum(1 for _, remote in tcp_peers(pid) if remote == port)


def conns_from_clients(pid, port):
    return sum(1 for local, _ in tcp_peers(pid) if local == port)
