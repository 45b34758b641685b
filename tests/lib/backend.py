#!/usr/bin/python3
"""A real backend process for the gateway's tests and demo.

Raw sockets, so every byte it sends is under the test's control. One thread
per connection; HTTP/1.1 keep-alive with Content-Length and chunked request
bodies.

Endpoints:
  /echo            JSON: method, path, headers [[name, value]...], body sha256
                   and length, conn (connection number), req (request number on
                   that connection)
  /bytes/N         N bytes of deterministic data, Content-Length
  /chunked/N       N bytes, chunked, with a trailer "X-Checksum: <sha256>"
  /close/N         N bytes, close-delimited (no length, no chunking)
  /slow/MS         waits MS milliseconds, then a small 200
  /hang            reads the request, never answers (until the peer closes)
  /stats           JSON: connections, requests
  /ws              WebSocket echo (RFC 6455, text and binary frames)
  /hints           "103 Early Hints" interim response, then 200
  /status/N        empty response with status N (204, 304: no body)
  /raw/NAME        a malformed response: two-cl, cl-te, bad-status, split
  anything else    the demo page (--demo) or /echo

--arrivals FILE appends "<unix time> <target>" for every request head read
(the Kubernetes stand-in uses it to tell whether a request reached a pod
after its scale-down began). The first line printed is "listening PORT
TIME": TIME is the unix time right after listen().
"""
import argparse
import base64
import hashlib
import json
import socket
import sys
import threading
import time

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def payload(n):
    """Deterministic pseudo-random bytes (so the far end can check a hash)."""
    out = bytearray()
    block = hashlib.sha256(b"seed").digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 32
    return bytes(out[:n])


class Conn:
    def __init__(self, sock, server, conn_no):
        self.sock = sock
        self.server = server
        self.conn_no = conn_no
        self.buf = bytearray()
        self.sock.settimeout(30)

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def read_line(self):
        while b"\n" not in self.buf:
            if len(self.buf) > 65536:
                raise ValueError("line too long")
            self.fill()
        i = self.buf.index(b"\n")
        line = bytes(self.buf[:i])
        del self.buf[:i + 1]
        return line.rstrip(b"\r")

    def read_exact(self, n):
        while len(self.buf) < n:
            self.fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_head(self):
        line = self.read_line()
        while line == b"":
            line = self.read_line()
        method, target, version = line.decode("latin-1").split(" ", 2)
        headers = []
        while True:
            line = self.read_line()
            if line == b"":
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers.append([name, value.strip()])
        return method, target, version, headers

    def read_body(self, headers):
        h = {k.lower(): v for k, v in headers}
        if "chunked" in h.get("transfer-encoding", "").lower():
            body = bytearray()  # += on bytes would be quadratic
            while True:
                size = int(self.read_line().split(b";")[0], 16)
                if size == 0:
                    while self.read_line() != b"":
                        pass
                    return bytes(body)
                body += self.read_exact(size)
                self.read_exact(2)
        n = int(h.get("content-length", "0"))
        return self.read_exact(n) if n else b""

    def send(self, data):
        self.sock.sendall(data)

    def respond(self, status, body=b"", ctype="text/plain", extra=(), head_only=False):
        head = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Status'}",
                f"Content-Type: {ctype}", f"Content-Length: {len(body)}"]
        head += list(extra)
        self.send(("\r\n".join(head) + "\r\n\r\n").encode() + (b"" if head_only else body))

    def serve(self):
        req_no = 0
        while True:
            try:
                method, target, version, headers = self.read_head()
            except (EOFError, ConnectionError, socket.timeout, OSError, ValueError):
                return
            if self.server.arrivals:
                with self.server.lock:
                    self.server.arrivals.write(f"{time.time():.6f} {target}\n")
                    self.server.arrivals.flush()
            body = self.read_body(headers)
            req_no += 1
            with self.server.lock:
                self.server.requests += 1
                self.server.log.append({"method": method, "target": target,
                                        "headers": headers, "conn": self.conn_no})
            if not self.handle(method, target, headers, body, req_no):
                return

    def handle(self, method, target, headers, body, req_no):
        path = target.split("?", 1)[0]
        parts = path.strip("/").split("/")
        h = {k.lower(): v for k, v in headers}
        if parts[0] == "bytes":
            data = payload(int(parts[1]))
            self.respond(200, data, "application/octet-stream", head_only=method == "HEAD")
        elif parts[0] == "chunked":
            data = payload(int(parts[1]))
            self.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                      b"Trailer: X-Checksum\r\n\r\n")
            for i in range(0, len(data), 30000):
                piece = data[i:i + 30000]
                self.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
            digest = hashlib.sha256(data).hexdigest().encode()
            self.send(b"0\r\nX-Checksum: " + digest + b"\r\n\r\n")
        elif parts[0] == "close":
            data = payload(int(parts[1]))
            self.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + data)
            return False
        elif parts[0] == "slow":
            time.sleep(int(parts[1]) / 1000.0)
            self.respond(200, b"slow done\n")
        elif parts[0] == "hang":
            try:
                while self.sock.recv(65536):
                    pass
            except OSError:
                pass
            return False
        elif parts[0] == "stats":
            with self.server.lock:
                st = {"connections": self.server.connections,
                      "requests": self.server.requests}
            self.respond(200, json.dumps(st).encode(), "application/json")
        elif parts[0] == "ws":
            return self.websocket(h)
        elif parts[0] == "hints":
            self.send(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n")
            self.respond(200, b"after hints\n")
        elif parts[0] == "status":
            code = int(parts[1])
            if code in (204, 304):
                self.send(f"HTTP/1.1 {code} Status\r\nETag: \"x\"\r\n\r\n".encode())
            else:
                self.respond(code, b"status\n")
        elif parts[0] == "raw":
            raw = {
                "two-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                "cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                "bad-status": b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
                "split": b"HTTP/1.1 200 OK\r\nX-A: a\rX-B: b\r\nContent-Length: 0\r\n\r\n",
                "garbage": b"this is not http\r\n\r\n",
            }[parts[1]]
            self.send(raw)
            return False
        elif parts[0] in ("echo", "upload") or not self.server.demo:
            info = {"method": method, "path": target, "headers": headers,
                    "sha256": hashlib.sha256(body).hexdigest(), "length": len(body),
                    "conn": self.conn_no, "req": req_no}
            self.respond(200, json.dumps(info).encode(), "application/json")
        else:
            page = (b"<!doctype html><html><head><meta charset='utf-8'><title>demo app"
                    b"</title></head><body><h1>Hello from the demo app</h1><p>Served "
                    b"through the gateway.</p></body></html>\n")
            self.respond(200, page, "text/html; charset=utf-8")
        return h.get("connection", "").lower() != "close"

    def websocket(self, h):
        key = h.get("sec-websocket-key", "").encode()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        self.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        self.sock.settimeout(None)
        while True:
            try:
                b0, b1 = self.read_exact(2)
            except (EOFError, OSError):
                return False
            opcode, masked, n = b0 & 0x0F, b1 & 0x80, b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self.read_exact(2), "big")
            elif n == 127:
                n = int.from_bytes(self.read_exact(8), "big")
            mask = self.read_exact(4) if masked else b"\0\0\0\0"
            data = bytes(c ^ mask[i % 4] for i, c in enumerate(self.read_exact(n)))
            if opcode == 8:
                self.send(b"\x88\x00")
                return False
            if opcode == 9:
                opcode = 10
            hdr = bytes([0x80 | opcode])
            if len(data) < 126:
                hdr += bytes([len(data)])
            elif len(data) < 65536:
                hdr += bytes([126]) + len(data).to_bytes(2, "big")
            else:
                hdr += bytes([127]) + len(data).to_bytes(8, "big")
            self.send(hdr + data)


class Server:
    def __init__(self, port, demo=False, host="127.0.0.1", arrivals=None):
        self.lock = threading.Lock()
        self.arrivals = open(arrivals, "a") if arrivals else None
        self.connections = 0
        self.requests = 0
        self.log = []
        self.demo = demo
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(512)
        self.listen_time = time.time()
        self.port = self.sock.getsockname()[1]

    def run(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.connections += 1
                n = self.connections
            threading.Thread(target=self._serve, args=(s, n), daemon=True).start()

    def _serve(self, s, n):
        try:
            Conn(s, self, n).serve()
        except Exception:  # a broken test connection must not kill the server
            pass
        finally:
            try:
                s.close()
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--demo", action="store_true", help="serve the demo page at /")
    ap.add_argument("--arrivals", help="append '<time> <target>' per request here")
    args = ap.parse_args()
    srv = Server(args.port, args.demo, args.host, args.arrivals)
    print(f"listening {srv.port} {srv.listen_time:.6f}", flush=True)
    srv.run()


if __name__ == "__main__":
    sys.exit(main())
