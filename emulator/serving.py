"""A small threaded HTTP/1.1 WSGI server with keep-alive, for the emulator's CLI.

Why not werkzeug's development server: it closes the connection after every response
and then waits 10 ms for stray input, which holds the emulator to a few hundred requests
per second; every Upstash client keeps its connection alive. This server keeps
connections open, frames a body by ``Content-Length`` (or chunked, for server-sent
events), discards whatever a handler left unread so the next request parses cleanly,
and never logs a query string (it may carry ``?_token=``). pytest-httpserver still
serves the same WSGI app in the pytest plugin.
"""

from __future__ import annotations

import io
import json
import logging
import select
import socket
import socketserver
import ssl
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import unquote

log = logging.getLogger("emulator")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_MAX_UNREAD_DRAIN = 64 * 1024 * 1024
_MAX_HEADERS = 100


class _Body(io.RawIOBase):
    """The request body: at most ``length`` bytes of the connection, never past them."""

    def __init__(self, rfile: Any, length: int) -> None:
        self._rfile = rfile
        self.remaining = length

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        want = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data: bytes = self._rfile.read(want)
        self.remaining -= len(data)
        if not data:
            self.remaining = 0
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _ChunkedBody(io.RawIOBase):
    """A ``Transfer-Encoding: chunked`` request body, decoded."""

    def __init__(self, rfile: Any) -> None:
        self._rfile = rfile
        self._left = 0
        self.done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        out = bytearray()
        while not self.done and (size is None or size < 0 or len(out) < size):
            if self._left == 0:
                line = self._rfile.readline(1024).split(b";", 1)[0].strip()
                try:
                    self._left = int(line, 16)
                except ValueError:
                    raise OSError("malformed chunked body") from None
                if self._left == 0:
                    while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    self.done = True
                    break
            take = self._left if size is None or size < 0 else min(self._left, size - len(out))
            data = self._rfile.read(take)
            if not data:
                raise OSError("connection closed inside a chunked body")
            out += data
            self._left -= len(data)
            if self._left == 0:
                self._rfile.readline(8)
        return bytes(out)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "continuum-emulator"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    server: WSGIServer
    fields: dict[str, str]

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        if isinstance(self.request, ssl.SSLSocket):
            # The TLS handshake runs here, in the connection's thread, so a client that
            # never finishes it cannot stall the accept loop.
            self.request.do_handshake()
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        self.command, self.path, self.request_version = "", "", "HTTP/1.0"
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (TimeoutError, OSError, ssl.SSLError):
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self._refuse(414, "URI Too Long", "request line too long")
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        try:
            if not self._parse_head():
                return
            self._run_wsgi()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def _refuse(self, status: int, reason: str, message: str) -> None:
        """An HTTP-level refusal, shaped like every other emulator error; then hang up."""
        self.close_connection = True
        body = json.dumps({"error": f"ERR {message}"}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        self.wfile.write(head.encode("latin-1") + body)
        self.log_request(status)

    def _parse_head(self) -> bool:
        """Request line and headers; http.server's email-based parser costs more than the
        rest of a request, so this reads the lines directly."""
        self.command, self.request_version = "", "HTTP/1.0"
        self.close_connection = True
        parts = self.raw_requestline.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._refuse(400, "Bad Request", "malformed request line")
            return False
        self.command, self.path, self.request_version = parts
        fields: dict[str, str] = {}
        for _ in range(_MAX_HEADERS + 1):
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            if len(line) > 65536:
                self._refuse(431, "Request Header Fields Too Large", "header line too long")
                return False
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                self._refuse(400, "Bad Request", "malformed header line")
                return False
            key = name.strip().lower()
            fields[key] = f"{fields[key]}, {value.strip()}" if key in fields else value.strip()
        else:
            self._refuse(431, "Request Header Fields Too Large", "too many headers")
            return False
        self.fields = fields
        connection = fields.get("connection", "").lower()
        self.close_connection = "close" in connection or (
            self.request_version == "HTTP/1.0" and "keep-alive" not in connection
        )
        if fields.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _environ(self) -> tuple[dict[str, Any], io.RawIOBase | None]:
        path, _, query = self.path.partition("?")
        body: io.RawIOBase | None = None
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "RAW_URI": self.path,
            "REQUEST_URI": self.path,
            "PATH_INFO": unquote(path, encoding="latin-1"),
            "QUERY_STRING": query,
            "SCRIPT_NAME": "",
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if self.server.ssl_context else "http",
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.fields.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                environ["HTTP_" + key] = value
        if "chunked" in self.fields.get("transfer-encoding", "").lower():
            body = _ChunkedBody(self.rfile)
            environ["wsgi.input_terminated"] = True
        else:
            try:
                length = int(self.fields.get("content-length", "0") or 0)
            except ValueError:
                length = -1
            if length < 0:  # the app refuses it; what follows on the socket is not a request
                length = 0
                self.close_connection = True
            body = _Body(self.rfile, length)
        environ["wsgi.input"] = body
        return environ, body

    def _run_wsgi(self) -> None:
        environ, body = self._environ()
        status_headers: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
            status_headers[:] = [status, headers]
            return None

        result = self.server.app(environ, start_response)
        try:
            status, headers = status_headers
            sized = any(name.lower() == "content-length" for name, _ in headers)
            head = self.command == "HEAD"
            lines = [f"{self.protocol_version} {status}\r\n"]
            lines += [f"{name}: {value}\r\n" for name, value in headers]
            if not sized and not head:
                lines.append("Transfer-Encoding: chunked\r\n")
            if self.close_connection:
                lines.append("Connection: close\r\n")
            header_bytes = "".join(lines).encode("latin-1") + b"\r\n"
            if sized or head:
                payload = b"" if head else b"".join(result)
                self.wfile.write(header_bytes + payload)
            else:
                self.wfile.write(header_bytes)
                for chunk in result:
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    elif self._client_gone():
                        # An event stream whose client left: stop now, so its subscription
                        # ends (PUBLISH stops counting it) instead of at the next keepalive.
                        self.close_connection = True
                        return
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            self.log_request(status.split(" ", 1)[0])
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            self._finish_body(body)

    def _client_gone(self) -> bool:
        """Whether the client closed its side (checked while a stream is idle). A socket
        with a timeout waits for data before any recv, so readiness is polled first."""
        poll = getattr(select, "poll", None)
        if isinstance(self.connection, ssl.SSLSocket) or poll is None:
            return False  # no peeking through TLS (or on Windows): the next write finds out
        poller = poll()
        poller.register(self.connection, select.POLLIN)
        try:
            if not poller.poll(0):
                return False  # nothing to read: still connected
            peeked: bytes = self.connection.recv(1, socket.MSG_PEEK)
            return peeked == b""
        except OSError:
            return True

    def _finish_body(self, body: io.RawIOBase | None) -> None:
        """Discard what the app left unread, or give up on the connection."""
        if isinstance(body, _Body) and body.remaining:
            if body.remaining > _MAX_UNREAD_DRAIN:
                self.close_connection = True
                return
            while body.remaining and body.read(1 << 20):
                pass
        elif isinstance(body, _ChunkedBody) and not body.done:
            self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        log.debug("%s %s %s", self.command, path[:200], code)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("emulator http: " + format, *args)


class WSGIServer(socketserver.ThreadingMixIn, HTTPServer):
    """Serves ``app``, one thread per connection (server-sent events hold theirs)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, host: str, port: int, app: WSGIApp, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.app = app
        self.ssl_context = ssl_context
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host.strip("[]"), port), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = self.socket.accept()
        if self.ssl_context is not None:
            conn = self.ssl_context.wrap_socket(
                conn, server_side=True, do_handshake_on_connect=False
            )
        return conn, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanished mid-response is routine; the app logs its own failures.
        log.debug(
            "emulator connection from %s ended with an error", client_address[0], exc_info=True
        )

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can stall.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])
