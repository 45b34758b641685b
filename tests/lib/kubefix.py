"""Helpers for the Kubernetes tests (tests/integration/wake/, faults/): the
API stand-in and a gateway on it (routes in Redis), each declared inline by
the test that needs it."""
import time

import gwtest

KHOST = "app-kube0001.apps.test"

# The gateway's base configuration for these tests; a test overrides keys.
BASE = {
    "kubernetes": {"token_reload": "1s", "request_timeout": "2s", "watch_timeout": "2s"},
    "activator": {"hold_timeout": "8s", "idle_timeout": "2s"},
}


class KubeEnv:
    def __init__(self, tmp_path, redis_server, make_gateway):
        self.tmp = tmp_path
        self.redis = redis_server
        self.make_gateway = make_gateway
        self.apis = []

    def api(self, deployments=({"namespace": "apps", "name": "web"},), **kw):
        d = self.tmp / f"kube{len(self.apis)}"
        d.mkdir()
        k = gwtest.KubeAPI(d, **kw)
        for dep in deployments:
            k.control("deployments", dep)
        self.apis.append(k)
        return k

    def gateway(self, api_url, token_file, route=None, host=KHOST, **sections):
        conf = {s: dict(v) for s, v in BASE.items()}
        for s, kv in sections.items():
            conf.setdefault(s, {}).update(kv)
        conf["kubernetes"].update(api_url=api_url, token_file=token_file)
        text = f"[redis]\naddress = {self.redis.addr}\n"
        for s, kv in conf.items():
            text += f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items())
        g = self.make_gateway({}, config=text)
        gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=5)
        if route is not None:
            self.route(route, host)
        return g

    def route(self, fields, host=KHOST):
        r = self.redis.r
        r.delete(f"gw:route:{host}")
        r.hset(f"gw:route:{host}", mapping={"project": host.split(".")[0],
                                             "visibility": "public", **fields})
        r.sadd("gw:routes", host)
        r.publish("gw:events", f"route {host}")
        time.sleep(0.3)

    def stop(self):
        for k in self.apis:
            k.stop()


def kget(g, path="/echo", host=KHOST, timeout=15, headers=None):
    return g.request("GET", path, host, timeout=timeout, headers=headers)
