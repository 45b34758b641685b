"""TLS handshakes in /metrics: completed, failed by reason, in progress,
certificates loaded and reloads."""
import socket

import gwtest
from tlstest import APPS

HOST = f"a.{APPS}"


def fails(m, reason):
    return m[f'gateway_tls_handshake_failures_total{{reason="{reason}"}}']


def test_handshake_counters(tgw):
    # the fixture's readiness check (connect, close) is a failed handshake
    gwtest.wait_for(lambda: fails(tgw.metrics(), "any") == 1, timeout=5)
    m = tgw.metrics()
    assert m["gateway_tls_handshakes_total"] == 0
    assert m["gateway_tls_certificates"] == 4
    base = 1
    for _ in range(2):
        r, _, cn = tgw.https("GET", "/echo", HOST)
        assert r.status == 200 and cn == "wildcard"
    m = tgw.metrics()
    assert m["gateway_tls_handshakes_total"] == 2
    assert fails(m, "any") == base
    # plain HTTP on the TLS port: a failed handshake
    s = socket.create_connection(("127.0.0.1", tgw.tls_port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()
    gwtest.wait_for(lambda: fails(tgw.metrics(), "any") == base + 1, timeout=5)
    m = tgw.metrics()
    assert fails(m, "timeout") == 0
    assert m["gateway_tls_handshakes_in_progress"] == 0
    assert m["gateway_tls_reloads_total"] == 0
    tgw.reload()
    m = tgw.metrics()
    assert m["gateway_tls_reloads_total"] == 1
    assert m["gateway_tls_reload_failures_total"] == 0
    assert m["gateway_tls_certificates"] == 4
