"""sd_notify: READY=1 once every worker listens, STOPPING=1 on SIGTERM,
RELOADING=1 + READY=1 around SIGHUP, and only from the main process
(NotifyAccess=main). The test plays systemd: a datagram socket in
NOTIFY_SOCKET, with SO_PASSCRED to learn who sent each message."""
import os
import signal
import socket
import struct
import subprocess
import time

import pytest

import gwtest

pytestmark = pytest.mark.skipif(
    "+systemd" not in subprocess.run([gwtest.GATEWAY_BIN, "-V"], capture_output=True,
                                     text=True).stdout,
    reason="built without libsystemd")


class Notifications:
    def __init__(self, tmp_path):
        self.path = str(tmp_path / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.got = []   # (pid, {key: value})

    def env(self):
        return dict(os.environ, NOTIFY_SOCKET=self.path)

    def matching(self, key, value=None):
        return [(pid, m) for pid, m in self.got
                if key in m and (value is None or m[key] == value)]

    def wait(self, key, value=None, timeout=10, count=1):
        """Receive until `count` messages carry key(=value); the last one."""
        deadline = time.monotonic() + timeout
        while len(self.matching(key, value)) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key} within {timeout}s; got {self.got}")
            self.sock.settimeout(left)
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", payload[:12])[0]
            msg = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.got.append((pid, msg))
        return self.matching(key, value)[count - 1]

    def close(self):
        self.sock.close()


@pytest.fixture
def notes(tmp_path):
    n = Notifications(tmp_path)
    yield n
    n.close()


def test_single_worker_ready_and_stopping(backend, make_gateway, notes):
    g = make_gateway({"app.test": [backend.addr]}, env=notes.env())
    pid, msg = notes.wait("READY", "1")
    assert pid == g.proc.pid
    assert "listening on 1 address" in msg["STATUS"]
    # READY means it really serves
    r, _ = g.request("GET", "/echo", "app.test")
    assert r.status == 200
    g.proc.send_signal(signal.SIGTERM)
    pid, msg = notes.wait("STOPPING", "1")
    assert pid == g.proc.pid
    assert g.proc.wait(timeout=10) == 0


def test_single_worker_survives_sighup(backend, make_gateway, notes):
    g = make_gateway({"app.test": [backend.addr]}, env=notes.env())
    notes.wait("READY", "1")
    g.proc.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    assert g.proc.poll() is None
    r, _ = g.request("GET", "/echo", "app.test")
    assert r.status == 200


def test_workers_ready_only_from_the_supervisor(backend, make_gateway, notes):
    g = make_gateway({"app.test": [backend.addr]}, workers=3, env=notes.env())
    pid, msg = notes.wait("READY", "1")
    assert pid == g.proc.pid
    assert msg["STATUS"].startswith("3 workers listening")
    # at READY time every worker had reported listening
    assert g.metrics()["gateway_workers_ready"] == 3
    workers = subprocess.run(["pgrep", "-P", str(g.proc.pid)], capture_output=True,
                             text=True).stdout.split()

    g.proc.send_signal(signal.SIGHUP)
    _, reloading = notes.wait("RELOADING", "1")
    assert int(reloading["MONOTONIC_USEC"]) > 0
    notes.wait("READY", "1", count=2)          # READY=1 again after the reload
    # SIGHUP did not kill anyone (workers ignore it until they reload)
    time.sleep(0.3)
    now = subprocess.run(["pgrep", "-P", str(g.proc.pid)], capture_output=True,
                         text=True).stdout.split()
    assert sorted(now) == sorted(workers)

    g.proc.send_signal(signal.SIGTERM)
    pid, _ = notes.wait("STOPPING", "1")
    assert pid == g.proc.pid
    assert g.proc.wait(timeout=10) == 0
    assert {p for p, _ in notes.got if p} == {g.proc.pid}, notes.got


def test_ready_after_every_worker_reloaded(backend, make_gateway, notes):
    g = make_gateway({"app.test": [backend.addr]}, workers=2, env=notes.env())
    notes.wait("READY", "1")
    with open(g.conf, "a") as f:
        f.write(f"new.test = {backend.addr}\n")
    g.proc.send_signal(signal.SIGHUP)
    notes.wait("RELOADING", "1")
    pid, msg = notes.wait("READY", "1", count=2)
    assert pid == g.proc.pid
    assert msg["STATUS"] == "2 workers; reloaded"
    # READY=1 came after both workers had applied it
    assert g.stderr().count("applied (") == 2
    r, _ = g.request("GET", "/echo", "new.test")
    assert r.status == 200
    # a file with an error: RELOADING, then READY with the old configuration
    with open(g.conf, "a") as f:
        f.write("[client]\nheader_timeout = soon\n")
    g.proc.send_signal(signal.SIGHUP)
    notes.wait("RELOADING", "1", count=2)
    _, msg = notes.wait("READY", "1", count=3)
    assert msg["STATUS"] == "reload failed; running the previous configuration"
    assert g.request("GET", "/echo", "new.test")[0].status == 200


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_while_stopping_says_nothing(backend, make_gateway, notes, workers):
    g = make_gateway({"app.test": [backend.addr]}, workers=workers, env=notes.env())
    notes.wait("READY", "1")
    s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
    s.sendall(b"GET /slow/1500 HTTP/1.1\r\nHost: app.test\r\n\r\n")
    time.sleep(0.3)
    g.proc.send_signal(signal.SIGTERM)
    notes.wait("STOPPING", "1")
    g.proc.send_signal(signal.SIGHUP)
    assert gwtest.status_of(s.recv(4096)) == 200     # the drain goes on
    s.close()
    g.proc.wait(timeout=10)
    with pytest.raises(AssertionError):              # no RELOADING after STOPPING
        notes.wait("RELOADING", "1", timeout=0.5)
    assert len(notes.matching("READY", "1")) == 1
    assert "ignored" in g.stderr()
