"""With workers > 1 the supervisor owns the admin listener and adds up the
workers' counters: every scrape describes the whole gateway."""
import os
import signal
import socket
import subprocess
import time

import gwtest


def accepted(m):
    return sum(v for k, v in m.items()
               if k.startswith("gateway_listener_accepted_connections_total{"))


def worker_pids(g):
    out = subprocess.run(["pgrep", "-P", str(g.proc.pid)], capture_output=True, text=True)
    return sorted(int(p) for p in out.stdout.split())


def wait_ready(g, timeout=10):
    gwtest.wait_for(lambda: g.admin_get("/readyz")[0] == 200, timeout=timeout)


def test_scrape_adds_up_every_worker(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]}, workers=3)
    wait_ready(g)
    before = g.metrics()
    n = 60
    for _ in range(n):                       # one connection each: spread over workers
        r, _ = g.request("GET", "/echo", "app.test")
        assert r.status == 200
    after = g.metrics()
    # SO_REUSEPORT spreads the connections: only the sum over all three
    # workers comes to n
    assert accepted(after) - accepted(before) == n
    # one process series per worker and one for the supervisor, never summed
    for w in ("main", "0", "1", "2"):
        assert after[f'process_resident_memory_bytes{{worker="{w}"}}'] > 0
    assert after["gateway_workers"] == 3
    assert after["gateway_workers_ready"] == 3
    # gateway_build_info once for the whole gateway
    assert [v for k, v in after.items() if k.startswith("gateway_build_info")] == [1.0]
    assert len(worker_pids(g)) == 3


def test_crashed_worker_is_restarted_and_counted(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]}, workers=2)
    wait_ready(g)
    victim = worker_pids(g)[0]
    os.kill(victim, signal.SIGKILL)
    gwtest.wait_for(lambda: g.metrics()["gateway_worker_restarts_total"] == 1, timeout=10)
    wait_ready(g)
    pids = worker_pids(g)
    assert len(pids) == 2 and victim not in pids
    assert g.metrics()["gateway_workers_ready"] == 2
    r, _ = g.request("GET", "/echo", "app.test")
    assert r.status == 200


def test_stopped_worker_delays_a_scrape_only_by_worker_timeout(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]}, workers=2,
                     config=f"[admin]\nworker_timeout = 300ms\nlisten = 127.0.0.1:{gwtest.free_port()}")
    wait_ready(g)
    stopped = worker_pids(g)[1]
    os.kill(stopped, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        m = g.metrics()
        took = time.monotonic() - t0
        assert took < 3, took                      # answered without it
        assert m["gateway_admin_worker_timeouts_total"] >= 1
        assert g.admin_get("/healthz")[0] == 200   # the supervisor's loop is free
    finally:
        os.kill(stopped, signal.SIGCONT)
    # the late answer to the old scrape is dropped; the next one is complete
    gwtest.wait_for(lambda: g.metrics()['process_open_fds{worker="1"}'] > 0, timeout=5)
    assert "bad snapshot" not in g.stderr()


def test_readyz_waits_for_every_worker(backend, make_gateway):
    g = make_gateway({"app.test": [backend.addr]}, workers=2)
    wait_ready(g)
    pids = worker_pids(g)
    os.kill(pids[0], signal.SIGSTOP)
    os.kill(pids[0], signal.SIGKILL)     # gone until the supervisor restarts it
    seen = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, _, body = g.admin_get("/readyz")
        seen.add((status, body))
        if status == 200 and len(seen) > 1:
            break
        time.sleep(0.02)
    assert (503, "not ready: a worker is restarting\n") in seen or \
        (503, "not ready: a worker is starting\n") in seen, seen
    assert (200, "ready\n") in seen


def test_workers_leave_when_the_supervisor_dies(backend, tmp_path):
    g = gwtest.Gateway(tmp_path, {"app.test": [backend.addr]}, workers=2)
    try:
        wait_ready(g)
        pids = worker_pids(g)
        os.kill(g.proc.pid, signal.SIGKILL)
        g.proc.wait(timeout=5)

        def gone():
            return all(not os.path.exists(f"/proc/{p}") or
                       open(f"/proc/{p}/stat").read().split()[2] == "Z" for p in pids)
        gwtest.wait_for(gone, timeout=10)
        # nobody listens any more
        try:
            socket.create_connection(("127.0.0.1", g.port), timeout=1).close()
            raise AssertionError("a worker still listens after its supervisor died")
        except OSError:
            pass
        assert "supervisor gone: draining" in g.stderr()
    finally:
        g.stop()
        for p in worker_pids(g):
            os.kill(p, signal.SIGKILL)
    g.check_clean()


def test_ctrl_c_to_the_process_group_drains(backend, tmp_path):
    """SIGINT to the whole foreground group (a terminal's Ctrl-C) must reach
    each worker once: the in-flight request finishes."""
    import threading
    # a group of its own, as a shell gives a foreground job
    g = gwtest.Gateway(tmp_path, {"app.test": [backend.addr]}, workers=2,
                       popen={"process_group": 0})
    wait_ready(g)
    # the workers are not in that group: only the supervisor gets the
    # terminal's signal, and forwards it once (two would mean "stop now";
    # whether two really arrive depends on timing, this does not)
    for p in worker_pids(g):
        with open(f"/proc/{p}/stat") as f:
            assert int(f.read().rsplit(")", 1)[1].split()[2]) != g.proc.pid
    done = {}

    def slow():
        r, body = g.request("GET", "/slow/1500", "app.test")
        done["status"] = r.status

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.4)
    os.killpg(g.proc.pid, signal.SIGINT)
    t.join(timeout=10)
    assert done.get("status") == 200
    assert g.stop() == 0
    assert "second signal" not in g.stderr()
    g.check_clean()
