"""Ending a TLS connection properly: the gateway sends close_notify before
its FIN (a client can tell the end from a cut), after a Connection: close
response, after an error page (lingering close), on keep-alive timeout;
and a client that half-closes TCP still gets its whole response."""
import hashlib
import http.client
import os
import socket
import struct
import time

import gwtest
from backend import payload
from tlstest import APPS, read_until_close

HOST = f"a.{APPS}"


def test_connection_close_response_ends_with_close_notify(tgw):
    s = tgw.wrap(HOST)
    s.sendall(f"GET /bytes/300000 HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
              .encode())
    data = read_until_close(s)   # raises SSLEOFError without close_notify
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(payload(300000))
    s.close()


def test_error_page_then_lingering_close_notify(tgw):
    s = tgw.wrap(HOST)
    # a bad request, with more bytes behind it that the gateway discards
    s.sendall(b"GET / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nBad Header\r\n\r\n" +
              b"x" * 100000)
    data = read_until_close(s)
    assert data.startswith(b"HTTP/1.1 400")
    s.close()


def test_keepalive_timeout_closes_with_close_notify(backend, make_tls_gateway):
    g = make_tls_gateway({HOST: [backend.addr]},
                         config="[client]\nkeepalive_timeout = 500ms\n")
    s = g.wrap(HOST)
    s.sendall(f"GET /echo HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    r = http.client.HTTPResponse(s)
    r.begin()
    r.read()
    assert read_until_close(s) == b""  # idle: the gateway says goodbye cleanly
    s.close()


def test_client_tcp_half_close_still_gets_the_response(tgw):
    n = 8 * 1024 * 1024
    s = tgw.wrap(HOST, timeout=30)
    s.sendall(f"GET /bytes/{n} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    # FIN on the TCP connection, no close_notify: the request is complete,
    # the response must still come whole (SSLSocket.shutdown would drop TLS)
    socket.socket.shutdown(s, socket.SHUT_WR)
    data = read_until_close(s, limit=n + 4096)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert hashlib.sha256(body).digest() == hashlib.sha256(payload(n)).digest()
    s.close()


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_client_gone_mid_response_is_closed(tgw):
    """A client that resets the connection while its response is being
    written: the failed write ends the connection (it is not a half-close
    to keep writing to), nothing is left open and nothing spins."""
    pid = tgw.gw.proc.pid
    r, _, _ = tgw.https("GET", "/echo", HOST)   # warm: upstream pool in use
    gwtest.wait_for(lambda: open_fds(pid) <= 20, timeout=5)
    base = open_fds(pid)
    for _ in range(20):
        s = tgw.wrap(HOST)
        s.sendall(f"GET /bytes/4000000 HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        s.recv(1000)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()   # RST, with the response still on its way
    gwtest.wait_for(lambda: open_fds(pid) <= base + 2, timeout=10)
    t = cpu_ticks(pid)
    time.sleep(1)
    assert cpu_ticks(pid) - t < 30, "the gateway is spinning"
    r, _, _ = tgw.https("GET", "/echo", HOST)
    assert r.status == 200
