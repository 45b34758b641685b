"""Kubernetes API state and errors in /metrics: requests, errors by kind,
reachability, calls open; wakes through the API count as activations."""
import gwtest

HOST = "app-kmetric1.apps.test"


def kerr(m, kind):
    return m.get(f'gateway_kube_api_errors_total{{kind="{kind}"}}', 0)


def test_kube_api_metrics(tmp_path, redis_server, make_gateway):
    d = tmp_path / "kube"
    d.mkdir()
    kube = gwtest.KubeAPI(d)
    try:
        kube.control("deployments", {"namespace": "apps", "name": "web"})
        g = make_gateway({}, config=f"""
[redis]
address = {redis_server.addr}
[kubernetes]
api_url = {kube.url}
token_file = {kube.token_file}
request_timeout = 1s
watch_timeout = 2s
[activator]
hold_timeout = 8s
""")
        gwtest.wait_for(lambda: "in sync with Redis" in g.stderr(), timeout=5)
        m = g.metrics()
        assert m["gateway_kube_api_requests_total"] == 0
        assert m["gateway_kube_api_reachable"] == 0
        r = redis_server.r
        for host, dep in ((HOST, "web"), ("app-kmetric2.apps.test", "absent")):
            r.hset(f"gw:route:{host}", mapping={"project": host.split(".")[0],
                                                 "visibility": "public",
                                                 "namespace": "apps", "deployment": dep})
            r.sadd("gw:routes", host)
            r.publish("gw:events", f"route {host}")
        gwtest.wait_for(lambda: g.metrics()["gateway_routes_redis"] == 2, timeout=5)
        assert g.request("GET", "/echo", HOST, timeout=15)[0].status == 200
        m = g.metrics()
        assert m["gateway_kube_api_requests_total"] >= 2      # scale, then watch/list
        assert m["gateway_kube_api_reachable"] == 1
        assert m['gateway_activations_total{result="ready"}'] == 1
        assert m["gateway_kube_api_calls_open"] >= 1          # the EndpointSlice watch
        assert kerr(m, "transport") == 0
        # a Deployment that does not exist: the API answers 404
        assert g.request("GET", "/", "app-kmetric2.apps.test", timeout=15)[0].status == 503
        assert kerr(g.metrics(), "4xx") >= 1
        # the API goes away: transport errors, unreachable
        kube.stop()
        gwtest.wait_for(lambda: kerr(g.metrics(), "transport") >= 1, timeout=15)
        assert g.metrics()["gateway_kube_api_reachable"] == 0
    finally:
        kube.stop()
