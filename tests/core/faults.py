"""A fault-injecting HTTP proxy between the client and the emulator (real sockets).

``FaultProxy(upstream).mode`` chooses what the next requests meet:

- ``pass``: forwarded to the emulator unchanged;
- ``hang``: the connection is accepted, the request read, and nothing is ever answered;
- ``trickle``: a status line, then one header line every 50 ms, never the end of the
  headers (each socket read succeeds quickly; only an overall bound stops the client);
- ``status``: answered with ``status``/``body`` without forwarding;
- ``after``: forwarded (so the command runs on the server), then answered with
  ``status``/``body`` instead of the real answer: a write that reached the server;
- ``truncate``: forwarded, then the answer is cut in the middle of its body;
- ``reset``: forwarded, then the connection is reset mid-body.

``requests`` counts the HTTP requests that reached the proxy and ``targets`` records their
request targets (an absolute URL when the client used it as a forward proxy).
"""

from __future__ import annotations

import http.client
import socket
import socketserver
import struct
import threading
from urllib.parse import urlsplit


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(10)
        reader = conn.makefile("rb")
        while True:
            line = reader.readline()
            if not line:
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while True:
                header = reader.readline().decode("latin-1").strip()
                if not header:
                    break
                name, _, value = header.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = reader.read(int(headers.get("content-length", "0") or 0))
            proxy = self.server.proxy
            with proxy.lock:
                proxy.requests += 1
                proxy.targets.append(target)
                mode, status, canned = proxy.mode, proxy.status, proxy.body
                if proxy.skip > 0:
                    proxy.skip -= 1
                    mode = "pass"
                elif proxy.times is not None:
                    proxy.times -= 1
                    if proxy.times <= 0:
                        proxy.mode, proxy.times = "pass", None
            if mode == "hang":
                proxy.release.wait(30)
                return
            if mode == "trickle":
                try:
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                    while not proxy.release.wait(0.05):
                        conn.sendall(b"X-Trickle: 1\r\n")
                except OSError:
                    pass  # the client gave up and hung up: what the test wants
                return
            if mode == "status":
                self._send(conn, status, canned)
                continue
            real_status, real_body, real_headers = proxy.forward(method, target, headers, body)
            if mode == "pass":
                self._send(conn, real_status, real_body, real_headers)
            elif mode == "after":
                self._send(conn, status, canned)
            elif mode == "truncate":
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(real_body) + 50}\r\n\r\n"
                conn.sendall(head.encode() + real_body[: len(real_body) // 2])
                return
            elif mode == "reset":
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(real_body) + 50}\r\n\r\n"
                conn.sendall(head.encode() + real_body[:3])
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                return

    @staticmethod
    def _send(
        conn: socket.socket, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        conn.sendall(head.encode() + body)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.mode = "pass"
        self.status = 502
        self.body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        self.times: int | None = None
        self.skip = 0
        self.requests = 0
        self.targets: list[str] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def set(
        self,
        mode: str,
        status: int = 502,
        body: bytes | None = None,
        *,
        times: int | None = None,
        skip: int = 0,
    ) -> None:
        """Let ``skip`` requests pass, then apply ``mode`` to ``times`` requests (None: all)."""
        with self.lock:
            self.mode, self.status, self.times, self.skip = mode, status, times, skip
            if body is not None:
                self.body = body

    def forward(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        upstream = http.client.HTTPConnection(self._host, self._port, timeout=10)
        try:
            keep = {k: v for k, v in headers.items() if k not in ("host", "connection")}
            upstream.request(method, target, body=body, headers=keep)
            response = upstream.getresponse()
            data = response.read()
            passed = {k: v for k, v in response.getheaders() if k.lower().startswith("upstash-")}
            passed["Content-Type"] = response.getheader("Content-Type", "application/json")
            return response.status, data, passed
        finally:
            upstream.close()

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
