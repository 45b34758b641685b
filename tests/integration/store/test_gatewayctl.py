"""gatewayctl round trips against a real Redis, and what the gateway makes of them."""
import concurrent.futures
import os
import re
import sys

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
