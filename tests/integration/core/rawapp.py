"""A scripted app for tests that need to misbehave in ways tests/lib/backend.py
does not: each accepted connection runs handler(conn) in a thread. Bounded:
sockets time out, the server stops when the test ends."""
import socket
import threading


class RawConn:
    def __init__(self, sock, number):
        self.sock = sock
        self.number = number  # 1 for the first connection the app accepted
        self.buf = b""

    def read_head(self):
        """The next request head (bytes up to and including the empty line),
        or None when the peer closed."""
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head + b"\r\n\r\n"

    def read_until(self, marker):
        while marker not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                break
            self.buf += data
        got, sep, self.buf = self.buf.partition(marker)
        return got + sep

    def send(self, data):
        self.sock.sendall(data)


class RawApp:
    def __init__(self, handler):
        self.handler = handler
        self.lock = threading.Lock()
        self.log = []          # whatever handlers append
        self.connections = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
            s.settimeout(30)
            threading.Thread(target=self._run, args=(s, n), daemon=True).start()

    def _run(self, s, n):
        try:
            self.handler(self, RawConn(s, n))
        except OSError:
            pass
        finally:
            s.close()

    def stop(self):
        self.stopped = True
        self.sock.close()
