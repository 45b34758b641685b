"""gatewayctl round trips against a real Redis, and what the gateway makes of them."""
import concurrent.futures
import os
import re
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402

HOST_RE = re.compile(r"^app-[abcdefghjkmnpqrstuvwxyz23456789]{8}\.apps\.test$")


def test_route_lifecycle(rgw, backend):
    ctl = lambda *a: gwtest.ctl(rgw.conf, *a)  # noqa: E731
    r = ctl("route", "add", "--namespace", "team1", "--deployment", "web", "--port", "8080",
            "--private", "--idle-timeout", "600", "--upstream", backend.addr)
    assert r.returncode == 0, r.stderr
    host = r.stdout.strip()
    assert HOST_RE.match(host), host
    project = host.split(".")[0]

    show = ctl("route", "show", host)
    assert show.returncode == 0
    fields = dict(l.split(": ", 1) for l in show.stdout.strip().splitlines())
    assert fields["namespace"] == "team1" and fields["deployment"] == "web"
    assert fields["port"] == "8080" and fields["visibility"] == "private"
    assert fields["idle_timeout"] == "600" and fields["project"] == project
    assert host in ctl("route", "list").stdout.split()

    # the gateway follows: private, then a member with a session gets in
    gwtest.wait_for(lambda: rgw.request("GET", "/echo", host)[0].status == 401)
    sid = ctl("session", "create", "carol").stdout.strip()
    assert re.match(r"^[0-9a-f]{64}$", sid)
    cookie = {"Cookie": f"gw_session={sid}"}
    assert rgw.request("GET", "/echo", host, headers=cookie)[0].status == 403
    assert ctl("member", "add", project, "carol").returncode == 0
    assert ctl("member", "list", project).stdout.split() == ["carol"]
    gwtest.wait_for(lambda: rgw.request("GET", "/echo", host, headers=cookie)[0].status == 200)
    assert ctl("session", "revoke", sid).returncode == 0
    gwtest.wait_for(lambda: rgw.request("GET", "/echo", host, headers=cookie)[0].status == 401)
    assert ctl("session", "revoke", sid).returncode == 1          # already gone
    assert ctl("member", "rm", project, "carol").returncode == 0
    assert ctl("member", "rm", project, "carol").returncode == 1  # not a member

    assert ctl("route", "rm", host).returncode == 0
    gwtest.wait_for(lambda: rgw.request("GET", "/echo", host)[0].status == 404)
    r = ctl("route", "rm", host)
    assert r.returncode == 1 and "no route" in r.stderr
    assert ctl("route", "show", host).returncode == 1


def test_names_are_unique_under_concurrency(rgw):
    def add(_):
        return gwtest.ctl(rgw.conf, "route", "add", "--namespace", "n", "--deployment", "d")
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(add, range(40)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    hosts = [r.stdout.strip() for r in results]
    assert len(set(hosts)) == 40 and all(HOST_RE.match(h) for h in hosts)
    assert rgw.redis.r.scard("gw:routes") == 40


def test_forced_name_collision(rgw):
    args = ("route", "add", "--namespace", "n", "--deployment", "d", "--name", "app-samename")
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda _: gwtest.ctl(rgw.conf, *args), range(4)))
    ok = [r for r in results if r.returncode == 0]
    assert len(ok) == 1, [(r.returncode, r.stderr) for r in results]
    assert all("already taken" in r.stderr and r.returncode == 1
               for r in results if r.returncode != 0)


def test_usage_errors_and_help(rgw):
    r = gwtest.ctl(rgw.conf, "route", "add", "--help")
    assert r.returncode == 0 and "--namespace" in r.stdout
    r = gwtest.ctl(rgw.conf, "route", "add", "--namespace", "n")   # no deployment
    assert r.returncode == 2
    r = gwtest.ctl(rgw.conf, "route", "add", "--namespace", "n", "--deployment", "d",
                   "--port", "99999")
    assert r.returncode == 2 and "--port" in r.stderr
    r = gwtest.ctl(rgw.conf, "route", "add", "--namespace", "n", "--deployment", "d",
                   "--upstream", "not-an-address")
    assert r.returncode == 2
    r = gwtest.ctl(rgw.conf, "frobnicate", "now")
    assert r.returncode == 2
    assert rgw.redis.r.scard("gw:routes") == 0   # nothing written by failures


def test_redis_unreachable_exit_code(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text(f"[redis]\naddress = 127.0.0.1:{gwtest.free_port()}\n")
    r = gwtest.ctl(str(conf), "route", "list")
    assert r.returncode == 3 and "cannot reach Redis" in r.stderr


COMMANDS = [("route", "add"), ("route", "rm"), ("route", "list"), ("route", "show"),
            ("member", "add"), ("member", "rm"), ("member", "list"),
            ("session", "create"), ("session", "revoke")]


def ctl_at(addr, *args):
    return subprocess.run([gwtest.GATEWAYCTL_BIN, "--redis", addr, *args],
                          capture_output=True, text=True, timeout=10)


def test_help_for_every_command_never_touches_redis(redis_server):
    """`X --help` prints usage on stdout and exits 0 - with Redis down, and
    with Redis up without even connecting to it."""
    down = f"127.0.0.1:{gwtest.free_port()}"
    variants = []
    for noun, verb in COMMANDS:
        variants += [(noun, verb, "--help"), (noun, verb, "-h")]
    variants += [(noun, "--help") for noun in ("route", "member", "session")]
    variants += [("--help",), ("-h",)]
    # --help after other arguments still wins, and nothing is done
    variants += [("session", "create", "--help", "mallory"),
                 ("session", "create", "mallory", "--help"),
                 ("route", "rm", "app-x.apps.test", "--help"),
                 ("member", "add", "app-x", "bob", "--help"),
                 ("route", "add", "--namespace", "n", "--deployment", "d", "--help")]
    before = redis_server.r.info("stats")["total_connections_received"]
    for v in variants:
        for addr in (down, redis_server.addr):
            r = ctl_at(addr, *v)
            assert r.returncode == 0, (v, r.stderr)
            assert r.stdout.startswith("usage:") and "Exit status" in r.stdout, (v, r.stdout)
            assert r.stderr == "", (v, r.stderr)
    after = redis_server.r.info("stats")["total_connections_received"]
    assert after == before, "gatewayctl --help connected to Redis"
    assert redis_server.r.dbsize() == 0


@pytest.mark.parametrize("args", [
    (), ("frobnicate",), ("route",), ("route", "frob"), ("member",), ("session",),
    ("route", "rm"), ("route", "rm", "a", "b"), ("route", "rm", "bad host!"),
    ("route", "show"), ("route", "list", "extra"), ("route", "list", "--bogus"),
    ("route", "add"), ("route", "add", "--namespace", "n"),
    ("route", "add", "--namespace", "n", "--deployment", "d", "extra"),
    ("route", "add", "--namespace", "../..", "--deployment", "d"),
    ("route", "add", "--namespace", "n", "--deployment", "Web"),
    ("route", "add", "--namespace", "n", "--deployment", "web..v2"),
    ("route", "add", "--namespace", "n.x", "--deployment", "web"),
    ("route", "add", "--namespace", "n", "--deployment", "d", "--service", "a/b"),
    ("route", "add", "--namespace", "n", "--deployment", "d", "--port", "0"),
    ("route", "add", "--namespace", "n", "--deployment", "d", "--port", "80x"),
    ("route", "add", "--namespace", "n", "--deployment", "d", "--idle-timeout", "-1"),
    ("route", "add", "--namespace", "n", "--deployment", "d", "--idle-timeout", "10s"),
    ("route", "add", "--namespace", "n", "--deployment", "d", "--max-replicas", "0"),
    ("route", "add", "--namespace", "n", "--deployment", "d", "--upstream", ","),
    ("route", "add", "--namespace", "n", "--deployment", "d", "--name", "app-0000000o"),
    ("route", "add", "--namespace", "n", "--deployment", "d", "--port"),
    ("member", "add", "app-x"), ("member", "add", "App/X", "bob"),
    ("member", "add", "app-x", "bob smith"), ("member", "list"),
    ("session", "create"), ("session", "create", "a", "b"),
    ("session", "create", "alice", "--ttl", "0"), ("session", "create", "alice", "--ttl"),
    ("session", "create", "alice", "--bogus"),
    ("session", "revoke"), ("session", "revoke", "a;b"),
    ("--redis",), ("--bogus", "route", "list"),
], ids=lambda a: " ".join(a) or "nothing")
def test_usage_errors_exit_2_and_write_nothing(redis_server, args):
    before = redis_server.r.info("stats")["total_connections_received"]
    r = ctl_at(redis_server.addr, *args) if args[:1] != ("--redis",) else \
        subprocess.run([gwtest.GATEWAYCTL_BIN, *args], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "" and r.stderr, (r.stdout, r.stderr)
    after = redis_server.r.info("stats")["total_connections_received"]
    assert after == before, "a usage error reached Redis"
    assert redis_server.r.dbsize() == 0


def test_exit_codes_with_redis(redis_server):
    a = redis_server.addr
    assert ctl_at(a, "route", "list").returncode == 0
    assert ctl_at(a, "route", "show", "app-nothere.apps.test").returncode == 1
    assert ctl_at(a, "route", "rm", "app-nothere.apps.test").returncode == 1
    assert ctl_at(a, "member", "rm", "app-x", "bob").returncode == 1
    assert ctl_at(a, "session", "revoke", "nosuchsession").returncode == 1
    redis_server.r.set("gw:routes", "notaset")       # Redis refuses: 1, not a crash
    r = ctl_at(a, "route", "list")
    assert r.returncode == 1 and "WRONGTYPE" in r.stderr
    down = f"127.0.0.1:{gwtest.free_port()}"
    for args in [("route", "list"), ("route", "rm", "app-x.apps.test"),
                 ("session", "create", "alice"), ("member", "list", "app-x"),
                 ("route", "add", "--namespace", "n", "--deployment", "d")]:
        assert ctl_at(down, *args).returncode == 3, args


def test_route_add_is_one_complete_step(redis_server):
    p = redis_server.r.pubsub()
    p.subscribe("gw:events")
    p.get_message(timeout=2)   # the subscribe confirmation
    r = ctl_at(redis_server.addr, "--domain", "apps.test", "route", "add", "--namespace", "team1",
               "--deployment", "web", "--port", "8080", "--private", "--idle-timeout", "60",
               "--upstream", "127.0.0.1:9,127.0.0.1:10")
    assert r.returncode == 0, r.stderr
    host = r.stdout.strip()
    h = redis_server.r.hgetall(f"gw:route:{host}")
    assert h == {"project": host.split(".")[0], "namespace": "team1", "deployment": "web",
                 "service": "web", "port": "8080", "visibility": "private",
                 "idle_timeout": "60", "max_replicas": "1", "created": h["created"],
                 "upstream": "127.0.0.1:9,127.0.0.1:10"}
    assert redis_server.r.sismember("gw:routes", host)
    m = p.get_message(timeout=2)
    assert m and m["data"] == f"route {host}", m
    p.close()


def test_a_hash_without_project_field_is_taken(redis_server):
    host = "app-takenzzz.apps.test"
    redis_server.r.hset(f"gw:route:{host}", "someone", "else")
    r = ctl_at(redis_server.addr, "--domain", "apps.test", "route", "add", "--namespace", "n",
               "--deployment", "d", "--name", "app-takenzzz")
    assert r.returncode == 1 and "already taken" in r.stderr
    assert redis_server.r.hgetall(f"gw:route:{host}") == {"someone": "else"}
    assert not redis_server.r.sismember("gw:routes", host)
    # any type counts: a string key of that name is taken too
    redis_server.r.set("gw:route:app-takenyyy.apps.test", "x")
    r = ctl_at(redis_server.addr, "--domain", "apps.test", "route", "add", "--namespace", "n",
               "--deployment", "d", "--name", "app-takenyyy")
    assert r.returncode == 1


def test_session_create_sets_ttl_and_expires(redis_server):
    r = ctl_at(redis_server.addr, "session", "create", "alice", "--ttl", "120")
    assert r.returncode == 0, r.stderr
    sid = r.stdout.strip()
    key = f"gw:session:{sid}"
    assert redis_server.r.hget(key, "user") == "alice"
    assert 100 <= redis_server.r.ttl(key) <= 120
    assert abs(int(redis_server.r.hget(key, "expires")) - (time.time() + 120)) < 10
    # options may come first, too
    assert ctl_at(redis_server.addr, "session", "create", "--ttl", "5", "bob").returncode == 0
