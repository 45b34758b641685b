"""The issue's bound: a route added, changed or removed in Redis is served
by every worker and every replica within 100 ms. Measured from the moment
the writer's PUBLISH (or gatewayctl) returns to the first correct answer on
each of many keep-alive connections spread over the workers and the
gateway processes, polled back to back. The bound is the requirement; a
loaded 2-core machine gets several tries, and the bound must hold in one."""
import os
import random
import selectors
import socket
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402

BOUND_MS = 100
TRIES = 6
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def worker_pids(g):
    """The processes that serve g's port: its workers (or itself)."""
    try:
        with open(f"/proc/{g.proc.pid}/task/{g.proc.pid}/children") as f:
            kids = [int(p) for p in f.read().split()]
    except OSError:
        kids = []
    return kids or [g.proc.pid]


def owners(pids, gw_port, client_ports):
    """client port -> pid of the process holding the accepted socket."""
    inode_port = {}
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            lport = int(fields[1].split(":")[1], 16)
            rport = int(fields[2].split(":")[1], 16)
            if lport == gw_port and rport in client_ports:
                inode_port[fields[9]] = rport
    out = {}
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inode_port:
                out[inode_port[link[8:-1]]] = pid
    return out


class Poller:
    """Keep-alive connections; one round = one GET on each, all in flight
    at once, answers read as they come."""

    def __init__(self, gateways, per_gateway):
        self.conns = []   # [socket, gateway, buffer]
        self.sel = selectors.DefaultSelector()
        for g in gateways:
            for _ in range(per_gateway):
                self._open(g)

    def _open(self, g):
        s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        c = [s, g, b""]
        self.conns.append(c)
        return c

    def coverage(self):
        """{gateway: set of worker pids reached}."""
        cov = {}
        for g in {id(c[1]): c[1] for c in self.conns}.values():
            ports = {c[0].getsockname()[1] for c in self.conns if c[1] is g}
            cov[g] = set(owners(worker_pids(g), g.port, ports).values())
        return cov

    def round(self, host):
        """Status of one GET per connection, and when each arrived."""
        req = f"GET /echo HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        for c in self.conns:
            c[0].sendall(req)
            c[2] = b""
            self.sel.register(c[0], selectors.EVENT_READ, c)
        out = {}
        deadline = time.monotonic() + 5
        while len(out) < len(self.conns):
            if time.monotonic() > deadline:
                raise AssertionError("no answer within 5 s")
            for key, _ in self.sel.select(timeout=1):
                c = key.data
                data = c[0].recv(65536)
                if not data:
                    raise AssertionError("gateway closed a keep-alive connection")
                c[2] += data
                head, sep, body = c[2].partition(b"\r\n\r\n")
                if not sep:
                    continue
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                if len(body) >= length:
                    self.sel.unregister(c[0])
                    out[id(c)] = (gwtest.status_of(c[2]), time.monotonic())
        return out

    def until(self, host, want, t0, timeout=3.0):
        """ms from t0 until every connection has answered `want` once."""
        seen = {}
        while len(seen) < len(self.conns):
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"not every connection saw {want} within {timeout}s")
            for k, (st, t) in self.round(host).items():
                if st == want and k not in seen:
                    seen[k] = t
        return (max(seen.values()) - t0) * 1000

    def close(self):
        for c in self.conns:
            c[0].close()


def new_name():
    return "app-" + "".join(random.choice(ALPHABET) for _ in range(8))


def measure(redis_server, gateways, conf, backend, poller):
    """One add (gatewayctl), change (PUBLISH), remove (gatewayctl) cycle."""
    name = new_name()
    host = f"{name}.apps.test"
    out = {}
    assert poller.round(host) and all(s == 404 for s, _ in poller.round(host).values())
    r = gwtest.ctl(conf, "route", "add", "--namespace", "n", "--deployment", "d",
                   "--name", name, "--upstream", backend.addr)
    t0 = time.monotonic()
    assert r.returncode == 0, r.stderr
    out["add"] = poller.until(host, 200, t0)
    redis_server.r.hset(f"gw:route:{host}", "visibility", "private")
    redis_server.r.publish("gw:events", f"route {host}")
    t0 = time.monotonic()
    out["change"] = poller.until(host, 401, t0)
    r = gwtest.ctl(conf, "route", "rm", host)
    t0 = time.monotonic()
    assert r.returncode == 0, r.stderr
    out["remove"] = poller.until(host, 404, t0)
    return out


@pytest.mark.parametrize("topology", ["2 workers", "2 gateways"])
def test_changes_reach_every_worker_and_replica_within_100ms(
        redis_server, make_gateway, backend, topology):
    config = f"""
[gateway]
domain = apps.test
[redis]
address = {redis_server.addr}
"""
    if topology == "2 workers":
        gateways = [make_gateway({}, config=config, workers=2)]
        per, want_workers = 24, 2
    else:
        gateways = [make_gateway({}, config=config), make_gateway({}, config=config)]
        per, want_workers = 6, 1
    for g in gateways:
        gwtest.wait_for(lambda: g.stderr().count("in sync with Redis") >= want_workers,
                        timeout=5)
    poller = Poller(gateways, per)
    try:
        cov = poller.coverage()
        assert all(len(p) == want_workers for p in cov.values()), \
            f"connections do not reach every worker: {cov}"
        best, runs = {}, []
        for _ in range(TRIES):
            m = measure(redis_server, gateways, gateways[0].conf, backend, poller)
            runs.append(m)
            for k, v in m.items():
                best[k] = min(best.get(k, v), v)
            if all(v < BOUND_MS for v in best.values()):
                break
        print(f"{topology}: " + "; ".join(
            ", ".join(f"{k} {v:.1f} ms" for k, v in m.items()) for m in runs))
        assert all(v < BOUND_MS for v in best.values()), f"best of {len(runs)}: {best}"
    finally:
        poller.close()
