"""Redis state and errors in /metrics: connection gauges, commands, errors by
kind, and the route mirror's size and sync state, as Redis comes and goes."""
import gwtest


def up(m, conn):
    return m.get(f'gateway_redis_connection_up{{connection="{conn}"}}')


def errors(m, kind):
    return sum(v for k, v in m.items()
               if k.startswith("gateway_redis_errors_total{") and f'kind="{kind}"' in k)


def test_redis_metrics_follow_redis(tmp_path, make_gateway, backend):
    port = gwtest.free_port()
    r = gwtest.Redis(tmp_path, port=port)
    try:
        g = make_gateway({}, config=f"""
[redis]
address = 127.0.0.1:{port}
reconnect_max = 200ms
connect_timeout = 200ms
command_timeout = 300ms
""")
        gwtest.wait_for(lambda: g.metrics().get("gateway_routes_in_sync") == 1, timeout=10)
        m = g.metrics()
        assert up(m, "commands") == 1 and up(m, "events") == 1
        assert m["gateway_routes_resyncs_total"] >= 1
        assert m["gateway_routes_redis"] == 0
        r.put_route("web.apps.test", backend.addr)
        gwtest.wait_for(lambda: g.metrics()["gateway_routes_redis"] == 1, timeout=5)
        cmds = g.metrics()['gateway_redis_commands_total{connection="commands"}']
        assert g.request("GET", "/echo", "web.apps.test")[0].status == 200
        assert g.metrics()['gateway_redis_commands_total{connection="commands"}'] >= cmds
        r.stop()
        gwtest.wait_for(lambda: up(g.metrics(), "commands") == 0, timeout=10)
        gwtest.wait_for(lambda: errors(g.metrics(), "connect") >= 1, timeout=10)
        m = g.metrics()
        assert errors(m, "lost") >= 1
        assert m["gateway_routes_in_sync"] == 0
        # stale-if-error: the mirrored route still serves
        assert m["gateway_routes_redis"] == 1
    finally:
        r.stop()
