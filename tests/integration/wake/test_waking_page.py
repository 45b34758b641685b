"""A person opening a sleeping app in a real browser (headless Chromium):
the waking page appears, then turns into the app by itself."""
import json
import os
import shutil
import subprocess
import sys
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402

websocket = pytest.importorskip("websocket")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed")


class Browser:
    """Chromium driven over the DevTools protocol."""

    def __init__(self, tmp_path):
        self.profile = str(tmp_path / "profile")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        gwtest.wait_for(lambda: os.path.exists(port_file) and
                        open(port_file).read().count("\n") >= 1, timeout=20)
        port = int(open(port_file).read().split()[0])
        pages = []

        def page_listed():
            pages[:] = [t for t in json.load(urllib.request.urlopen(
                f"http://127.0.0.1:{port}/json/list", timeout=5)) if t["type"] == "page"]
            return pages
        gwtest.wait_for(page_listed, timeout=10)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=10)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                return msg.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r.get("result", {}).get("value")

    def close(self):
        try:
            self.ws.close()
        finally:
            self.proc.kill()
            self.proc.wait(timeout=10)


def test_waking_page_turns_into_the_app(make_gateway, tmp_path):
    port = gwtest.free_port()
    host = "app-browse01.localhost"
    # An app that takes ~2.5 s to start: longer than the page's grace.
    g = make_gateway({}, config=f"""
[activator]
waking_page_after = 500ms
[exec]
{host} = 127.0.0.1:{port} sleep 2.5; exec {gwtest.PYTHON} {gwtest.BACKEND} --demo --port $PORT
""")
    b = Browser(tmp_path)
    try:
        b.call("Page.enable")
        b.call("Page.navigate", url=f"http://{host}:{g.port}/")
        titles = []

        def app_shown():
            t = b.eval("document.title")
            if t and (not titles or titles[-1] != t):
                titles.append(t)
            return t == "demo app"
        gwtest.wait_for(app_shown, timeout=20, step=0.1)
        assert titles[0] == "Waking up", titles     # the page came first
        assert "Hello from the demo app" in b.eval("document.body.innerText")
    finally:
        b.close()
    log = "\n".join(g.access_lines())
    assert "/_gateway/wake" in log and " 204 " in log   # it waited on us, not a timer
