"""A TCP proxy between the gateway and Redis that can hold back Redis's
answers on the command connections (not the subscriber), to build races
deterministically: a reply the gateway has asked for, and that Redis has
already sent, arrives only when the test says so."""
import socket
import threading


class RedisProxy:
    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.holding = False      # hold answers on command connections
        self.holding_sub = False  # hold everything to the subscriber
        self.held = []          # [(client socket, bytes)] in arrival order
        self.conns = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                c.close()
                continue
            u.settimeout(None)
            state = {"sub": False}
            with self.lock:
                self.conns += [c, u]
            threading.Thread(target=self._up, args=(c, u, state), daemon=True).start()
            threading.Thread(target=self._down, args=(u, c, state), daemon=True).start()

    def _up(self, c, u, state):      # gateway -> Redis
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                if b"SUBSCRIBE" in data.upper():
                    state["sub"] = True
                u.sendall(data)
        except OSError:
            pass
        self._close(c, u)

    def _down(self, u, c, state):    # Redis -> gateway
        try:
            while True:
                data = u.recv(65536)
                if not data:
                    break
                with self.lock:
                    if (self.holding and not state["sub"]) or \
                            (self.holding_sub and state["sub"]):
                        self.held.append((c, data))
                        continue
                c.sendall(data)
        except OSError:
            pass
        self._close(c, u)

    @staticmethod
    def _close(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def hold(self):
        with self.lock:
            self.holding = True

    def hold_subscriber(self):
        """The subscriber goes silent: no messages, no confirmations."""
        with self.lock:
            self.holding_sub = True

    def held_bytes(self):
        with self.lock:
            return sum(len(d) for _, d in self.held)

    def release(self):
        with self.lock:
            self.holding = self.holding_sub = False
            held, self.held = self.held, []
            for c, data in held:
                try:
                    c.sendall(data)
                except OSError:
                    pass

    def stop(self):
        self.closed = True
        self.release()
        self.lsock.close()
        with self.lock:
            for s in self.conns:
                try:
                    s.close()
                except OSError:
                    pass
