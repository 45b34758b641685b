"""WebSocket: 101 through the gateway, then a two-way tunnel."""
import websocket


def test_websocket_echo(gw):
    ws = websocket.create_connection(f"ws://127.0.0.1:{gw.port}/ws", host="app.test", timeout=5)
    for msg in ("hello", "x" * 70000, "last"):
        ws.send(msg)
        assert ws.recv() == msg
    ws.send_binary(bytes(range(256)))
    assert ws.recv() == bytes(range(256))
    ws.close()


def test_h2c_upgrade_is_not_offered(gw):
    r, body = gw.request("GET", "/echo", "app.test",
                         headers={"Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c",
                                  "HTTP2-Settings": "AAMAAABkAAQCAAAAAAIAAAAA"})
    assert r.status == 200
    assert b"h2c" not in body  # Upgrade was dropped on the way
