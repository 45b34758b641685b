"""Scale-down across several gateway processes (docs/fleet.md,
"Scale-down"): decided once, never while any of them has a request in
flight or a WebSocket open, requests that come meanwhile are held and
served (never sent to a pod going away), a concurrent change of the
Deployment wins, and a leader that dies holds nothing up for long."""
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import fleetfix  # noqa: E402
from fleetfix import NS, host_of  # noqa: E402

wait_for = fleetfix.gwtest.wait_for
SCALE = f"/apis/apps/v1/namespaces/{NS}/deployments/web/scale"


@pytest.fixture
def fleet(tmp_path, redis_server):
    f = fleetfix.Fleet(tmp_path, redis_server, {"pod_start_delay": 0.2})
    f.deployment("web")
    yield f
    failures = f.stop()
    if failures:
        pytest.fail("\n".join(failures))


def warm(fleet, gws, project):
    host = host_of(project)
    for g in gws:
        assert g.request("GET", "/echo", host, timeout=20)[0].status == 200
    return host


def test_scale_down_once_and_never_under_a_slow_request(fleet):
    fleet.route("app-drain01", "web")
    gws = fleet.gateways(3)
    time.sleep(0.3)
    host = warm(fleet, gws, "app-drain01")
    slow = {}

    def slow_request():      # 4 s in flight on the middle replica only
        r, body = gws[1].request("GET", "/slow/4000", host, timeout=20)
        slow["status"], slow["end"] = r.status, time.time()
    t = threading.Thread(target=slow_request)
    t.start()
    end = time.monotonic() + 3.5
    while time.monotonic() < end:   # 3.5 idle timeouts elsewhere
        assert fleet.replicas("web") == 1 and fleet.downs("web") == 0
        time.sleep(0.1)
    t.join(timeout=20)
    assert slow["status"] == 200
    wait_for(lambda: fleet.replicas("web") == 0, timeout=10)
    down = fleet.stats()["scale_times"][f"{NS}/web"][-1][0]
    print(f"\nscaled down {down - slow['end']:.2f} s after the slow request ended "
          f"(idle_timeout 1 s)")
    assert down > slow["end"]
    time.sleep(2)                   # every replica had its chance to decide
    assert fleet.downs("web") == 1
    assert fleet.metric("gateway_fleet_scale_downs_total") == 1
    assert fleet.late() == {}


def test_open_websocket_on_one_replica_blocks_scale_down(fleet):
    websocket = pytest.importorskip("websocket")
    fleet.route("app-drain02", "web")
    gws = fleet.gateways(3)
    time.sleep(0.3)
    host = warm(fleet, gws, "app-drain02")
    ws = websocket.create_connection(f"ws://127.0.0.1:{gws[0].port}/ws", host=host,
                                     timeout=15)
    try:
        ws.send("x")
        assert ws.recv() == "x"
        end = time.monotonic() + 4     # idle_timeout 1 s: four of them
        while time.monotonic() < end:
            assert fleet.replicas("web") == 1 and fleet.downs("web") == 0
            time.sleep(0.1)
        ws.send("still")
        assert ws.recv() == "still"    # the stream was not cut
    finally:
        ws.close()
    wait_for(lambda: fleet.replicas("web") == 0, timeout=10)
    time.sleep(1)
    assert fleet.downs("web") == 1
    assert fleet.late() == {}


def test_request_during_scale_down_is_held_and_served_never_by_the_old_pod(fleet):
    fleet.route("app-drain03", "web")
    gws = fleet.gateways(3)
    time.sleep(0.3)
    host = warm(fleet, gws, "app-drain03")
    # The scale-down write takes 1.5 s to land (a slow API server): the
    # old pod still runs all that time.
    fleet.k.control("faults", {"path_prefix": SCALE, "method": "PATCH",
                               "body": '"replicas":0', "delay": 1.5, "pass": True})
    wait_for(lambda: fleet.stats()["faults_hit"] == 1, timeout=10)
    leader = fleet.holder("gw:lease:reaper")
    other = next(g for g in gws if g is not leader)
    t0 = time.time()
    r, body = other.request("GET", "/echo?during=1", host, timeout=20)
    took = time.time() - t0
    assert r.status == 200
    print(f"\nrequest during the scale-down held {took * 1000:.0f} ms, then served "
          f"by a new pod")
    wait_for(lambda: fleet.downs("web") == 1, timeout=5)
    st = fleet.stats()
    assert st["late_arrivals"] == {}        # nothing reached the old pod late
    assert st["scale_history"][f"{NS}/web"][:3] == [1, 0, 1]
    assert "a scale-down is committed; waking it after" in other.stderr()
    assert fleet.replicas("web") == 1


def test_concurrent_change_during_scale_down_wins(fleet):
    # Longer idle timeout for this route: after the scale-down loses, the
    # next attempt must not come within the test.
    fleet.route("app-drain04", "web", idle_timeout="4")
    gws = fleet.gateways(2)
    time.sleep(0.3)
    host = warm(fleet, gws, "app-drain04")
    fleet.k.control("faults", {"path_prefix": SCALE, "method": "PATCH",
                               "body": '"replicas":0', "delay": 1.0, "pass": True})
    wait_for(lambda: fleet.stats()["faults_hit"] == 1, timeout=15)
    # Meanwhile someone else scales it (a deploy, an autoscaler): the
    # scale-down's write carries the version it read, and loses.
    fleet.k.control("scale", {"namespace": NS, "name": "web", "replicas": 2})
    r, _ = gws[1].request("GET", "/echo?racing=1", host, timeout=20)
    assert r.status == 200
    wait_for(lambda: any("not scaled down" in g.stderr() for g in gws), timeout=5)
    time.sleep(0.5)
    assert fleet.replicas("web") == 2 and fleet.downs("web") == 0
    assert fleet.stats()["conflicts"] >= 1
    assert fleet.metric("gateway_fleet_drains_aborted_total") >= 1
    # Everyone left the held state: requests go straight out again.
    for g in gws:
        assert g.request("GET", "/echo", host, timeout=5)[0].status == 200
    assert fleet.late() == {}


def test_reaper_lease_holder_killed_delays_scale_down_at_most_the_lease(fleet):
    fleet.route("app-drain05", "web")
    gws = fleet.gateways(3)
    wait_for(lambda: fleet.holder("gw:lease:reaper") is not None, timeout=10)
    leader = fleet.holder("gw:lease:reaper")
    others = [g for g in gws if g is not leader]
    host = warm(fleet, others, "app-drain05")
    t_kill = time.time()
    fleet.kill(leader)
    wait_for(lambda: fleet.replicas("web") == 0, timeout=15)
    down = fleet.stats()["scale_times"][f"{NS}/web"][-1][0]
    new = fleet.holder("gw:lease:reaper")
    print(f"\nleader killed; scaled down {down - t_kill:.2f} s later by the next "
          f"lease holder (lease_ttl 3 s, replica_ttl 3 s, idle_timeout 1 s)")
    assert new is not None and new is not leader
    # lease_ttl, plus one lease round (ttl/3) to take it, plus a reap tick,
    # plus slack for a loaded machine.
    assert down - t_kill < 3 + 1 + 0.25 + 1.5
    time.sleep(1)
    assert fleet.downs("web") == 1
