"""SIGHUP reloads the configuration: under load with no failed request, new
settings apply to new connections while exchanges in flight finish on the
old ones, unchanged listeners keep their sockets, a configuration with
errors is refused whole (FILE:LINE logged, the old one kept), and keys that
need a restart are named in the log and keep their running values."""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

import gwtest
from gwtest import free_port


def rewrite(g, fn):
    """Replace the gateway's config file with fn(text), atomically."""
    with open(g.conf) as f:
        text = f.read()
    tmp = g.conf + ".new"
    with open(tmp, "w") as f:
        f.write(fn(text))
    os.replace(tmp, g.conf)


def set_key(text, section, key, value):
    """Set [section] key = value: its line replaced, or added first."""
    out, current, done = [], None, False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("["):
            current = stripped.strip("[]")
            out.append(line)
            if current == section and not done and not re.search(
                    rf"(?m)^\[{section}\]\n(?:(?!\[).*\n)*?{key}\s*=", text):
                out.append(f"{key} = {value}\n")
                done = True
            continue
        if current == section and re.match(rf"{key}\s*=", stripped) and not done:
            out.append(f"{key} = {value}\n")
            done = True
            continue
        out.append(line)
    assert done, (section, key)
    return "".join(out)


def reload(g, workers=1, applied=True, timeout=10):
    """SIGHUP; wait until every worker logged the result."""
    def count():
        err = g.stderr()
        return (err.count("applied (") if applied
                else err.count("keeping the running configuration"))
    n = count()
    g.proc.send_signal(signal.SIGHUP)
    gwtest.wait_for(lambda: count() >= n + (workers if applied else 1), timeout=timeout)


def status(g, host, path="/echo", port=None, timeout=10):
    try:
        return gwtest.status_of(gwtest.raw_exchange(
            port or g.port,
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(),
            timeout=timeout))
    except ConnectionRefusedError:
        return "refused"


def wrk_load(port, host, seconds):
    """wrk against the gateway -> (requests, non-2xx/3xx, socket errors)."""
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds}s", "-H", f"Host: {host}",
                          f"http://127.0.0.1:{port}/echo"],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     out)
    return reqs, int(bad.group(1)) if bad else 0, \
        sum(int(x) for x in sock.groups()) if sock else 0, out


def python_load(port, host, seconds):
    """8 threads of keep-alive requests -> (requests, failures, 0, log)."""
    import http.client
    stop = time.monotonic() + seconds
    counts = {"ok": 0, "bad": []}
    lock = threading.Lock()

    def loop():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop:
            try:
                c.request("GET", "/echo", headers={"Host": host})
                r = c.getresponse()
                r.read()
                ok = r.status == 200
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            except Exception as e:      # noqa: BLE001 - counted as a failure
                ok = False
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                r = e
            with lock:
                if ok:
                    counts["ok"] += 1
                else:
                    counts["bad"].append(repr(getattr(r, "status", r)))
        c.close()
    ts = [threading.Thread(target=loop) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return counts["ok"] + len(counts["bad"]), len(counts["bad"]), 0, counts["bad"][:10]


@pytest.mark.parametrize("workers", [1, 2])
def test_reload_under_load_drops_nothing(backend, make_gateway, workers):
    g = make_gateway({"app.test": [backend.addr]}, workers=workers, config="""
[upstream]
first_byte_timeout = 5s
""")
    gwtest.wait_for(lambda: g.admin_get("/readyz")[0] == 200, timeout=10)
    load = wrk_load if shutil.which("wrk") else python_load
    result = {}
    t = threading.Thread(target=lambda: result.update(r=load(g.port, "app.test", 6)))
    t.start()
    time.sleep(0.5)
    for i in range(5):
        # each reload adds a route and changes a timeout
        rewrite(g, lambda s, i=i: set_key(s, "upstream", "first_byte_timeout", f"{5 + i}s")
                + f"r{i}.test = {backend.addr}\n")
        reload(g, workers)
        time.sleep(0.6)
    t.join()
    reqs, bad, sockerr, out = result["r"]
    assert reqs > 100, out
    assert bad == 0 and sockerr == 0, out
    for i in range(5):                 # every route added by a reload serves
        assert status(g, f"r{i}.test") == 200
    assert g.proc.poll() is None
    assert "keeping the running configuration" not in g.stderr()


def test_new_setting_for_new_connections_old_for_in_flight(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]}, config="""
[upstream]
first_byte_timeout = 5s
""")
    assert status(g, "app.test", "/slow/1500") == 200
    # an exchange in flight when the reload comes...
    s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
    s.sendall(b"GET /slow/2000 HTTP/1.1\r\nHost: app.test\r\n\r\n")
    time.sleep(0.3)
    rewrite(g, lambda t: set_key(t, "upstream", "first_byte_timeout", "1s"))
    reload(g)
    # ...new connections get the new timeout: 504 after 1s
    assert status(g, "app.test", "/slow/1500") == 504
    # ...and the one in flight finishes on the old one (5s): 200
    s.settimeout(10)
    assert gwtest.status_of(s.recv(4096)) == 200
    s.close()


def test_bad_config_is_refused_and_old_one_kept(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]})
    with open(g.conf) as f:
        lines = f.read().count("\n")
    # a valid route and, after it, an error: nothing of the file applies
    rewrite(g, lambda t: t + f"new.test = {backend.addr}\n[client]\nheader_timeout = 1y\n")
    reload(g, applied=False)
    err = g.stderr()
    assert re.search(rf"reload: {re.escape(g.conf)}:{lines + 3}: \[client\] header_timeout: ",
                     err), err[-2000:]
    assert status(g, "app.test") == 200
    assert status(g, "new.test") == 404
    # fixed, the next reload applies it
    rewrite(g, lambda t: t.replace("header_timeout = 1y\n", "header_timeout = 5s\n"))
    reload(g)
    assert status(g, "new.test") == 200


def test_bad_config_refused_by_the_supervisor(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]}, workers=2)
    gwtest.wait_for(lambda: g.admin_get("/readyz")[0] == 200, timeout=10)
    rewrite(g, lambda t: t + "this is not a key\n")
    reload(g, applied=False)
    err = g.stderr()
    assert re.search(rf"main\[\d+\] reload: {re.escape(g.conf)}:\d+: ", err), err[-2000:]
    assert "SIGHUP: forwarded" not in err       # no worker saw it
    assert status(g, "app.test") == 200


def test_restart_only_keys_are_logged_and_kept(backend, make_gateway):
    admin2 = free_port()
    g = make_gateway({"app.test": [backend.addr]})
    rewrite(g, lambda t: set_key(set_key(t, "gateway", "workers", "3"),
                                 "admin", "listen", f"127.0.0.1:{admin2}")
            + f"other.test = {backend.addr}\n")
    reload(g)
    err = g.stderr()
    assert "reload: [gateway] workers, [admin] listen changed: restart to apply" in err
    # the rest applied; the admin listener stays where it was
    assert status(g, "other.test") == 200
    assert g.admin_get("/healthz")[0] == 200
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", admin2), timeout=2).close()
    procs = subprocess.run(["pgrep", "-P", str(g.proc.pid)], capture_output=True,
                           text=True).stdout.split()
    assert procs == []                           # still one process


def test_listeners_kept_added_and_removed(backend, make_gateway):
    p2, p3 = free_port(), free_port()
    g = make_gateway({"app.test": [backend.addr]},
                     listen=["127.0.0.1:{port}", f"127.0.0.1:{p2}"])
    gwtest.wait_port(p2)
    # an idle keep-alive connection on the listener that stays
    s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: app.test\r\n\r\n")
    assert gwtest.status_of(s.recv(65536)) == 200
    key = f'gateway_listener_accepted_connections_total{{listener="127.0.0.1:{g.port}"}}'
    before = g.metrics()[key]
    rewrite(g, lambda t: t.replace(f"listen = 127.0.0.1:{p2}\n", f"listen = 127.0.0.1:{p3}\n"))
    reload(g)
    err = g.stderr()
    assert f"reload: closing 127.0.0.1:{p2}" in err
    assert f"reload: listening on 127.0.0.1:{p3}" in err
    assert f"reload: listening on 127.0.0.1:{g.port}" not in err
    assert status(g, "app.test", port=p3) == 200
    assert status(g, "app.test", port=p2) == "refused"
    # the kept listener is the same one: its counter went on
    assert status(g, "app.test") == 200
    assert g.metrics()[key] == before + 1
    # and the connection opened before the reload still serves
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: app.test\r\n\r\n")
    assert gwtest.status_of(s.recv(65536)) == 200
    s.close()


def test_listener_that_cannot_be_bound_refuses_the_reload(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]})
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))       # no SO_REUSEPORT: the gateway cannot share it
    busy.listen()
    port = busy.getsockname()[1]
    try:
        rewrite(g, lambda t: t.replace("[gateway]\n", f"[gateway]\nlisten = 127.0.0.1:{port}\n")
                + f"new.test = {backend.addr}\n")
        reload(g, applied=False)
        assert (f"reload: cannot listen on 127.0.0.1:{port}: Address already in use; "
                "keeping the running configuration") in g.stderr()
        assert status(g, "new.test") == 404          # nothing of it applied
        assert status(g, "app.test") == 200
    finally:
        busy.close()


def test_restart_only_keys_documented():
    """Every key --help-config marks as needing a restart is in the table of
    docs/configuration.md, "Reload" (by name, or its whole section), and the
    table names nothing a reload applies."""
    out = subprocess.run([gwtest.GATEWAY_BIN, "--help-config"], capture_output=True,
                         text=True, check=True).stdout
    keys, restart, section, key = [], set(), None, None
    for line in out.splitlines():
        if re.match(r"^\[(\w+)\]$", line):
            section = line.strip("[]")
        elif re.match(r"^[a-z_]+ = ", line):
            key = line.split(" = ")[0]
            keys.append((section, key))
        elif "reload: needs a restart" in line:
            restart.add((section, key))
    assert ("gateway", "workers") in restart and ("client", "header_timeout") not in restart
    with open(os.path.join(gwtest.REPO, "docs", "configuration.md")) as f:
        doc = f.read().split("## Reload", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in doc.splitlines() if r.startswith("| `[")]
    documented = set()
    for r in rows:
        cell = r.split("|")[1]
        sec = re.match(r" `\[(\w+)\]", cell).group(1)
        names = re.findall(r"`(?:\[\w+\] )?([a-z_]+)`", cell)
        if "(all keys)" in cell:
            documented |= {(s, k) for s, k in keys if s == sec}
        else:
            documented |= {(sec, n) for n in names}
    assert documented == restart, (documented ^ restart)
