"""Serving an ASGI app on uvicorn from a background thread: the emulator and ``continuum dev``.

uvicorn is a maintained production server (httptools parser, uvloop where installed,
keep-alive, a 2048-connection backlog, TCP_NODELAY on every connection). Two things are
added here, both through uvicorn's own extension points:

- The listening socket is bound by ``UvicornThread`` itself, before the thread starts,
  so a port that is taken fails in the caller and port 0 is known at once.
- Requests uvicorn's parser refuses before any app sees them (a malformed request line
  or header) get the emulator's JSON error shape instead of uvicorn's plain text.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("emulator")
# uvicorn warns on every malformed request, which the emulator already answers in JSON;
# its errors (an app that failed) still get through.
logging.getLogger("uvicorn.error").setLevel(logging.ERROR)

BACKLOG = 2048
_STARTUP_SECONDS = 10.0


class JsonErrorProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with its parser errors answered as JSON."""

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"error": "ERR malformed HTTP request"}).encode()
        self.transport.write(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.transport.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 when the host has a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class UvicornThread:
    """``app`` served by uvicorn on ``host:port`` in a daemon thread until ``stop()``."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout_keep_alive: int = 120,
        name: str = "uvicorn",
    ) -> None:
        self.sock = bind(host, port)
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            http=JsonErrorProtocol,
            loop="auto",
            lifespan="off",
            access_log=False,
            log_config=None,
            log_level=logging.WARNING,
            timeout_keep_alive=timeout_keep_alive,
            timeout_graceful_shutdown=2,
            server_header=False,
            date_header=False,
            # The emulator loads its certificate itself (a bad one fails before binding).
            ssl_context_factory=None if ssl_context is None else lambda *_: ssl_context,
        )
        self.server = uvicorn.Server(config)
        self._name = name
        self._thread: threading.Thread | None = None

    def start(self) -> UvicornThread:
        self._thread = threading.Thread(target=self._run, daemon=True, name=self._name)
        self._thread.start()
        ready = threading.Event()
        deadline = _STARTUP_SECONDS / 0.01
        while not self.server.started and self._thread.is_alive() and deadline > 0:
            ready.wait(0.01)  # uvicorn offers a flag, not an event, for "started"
            deadline -= 1
        if not self.server.started:
            raise OSError(f"uvicorn did not start on port {self.port}")
        return self

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except Exception:
            log.exception("uvicorn stopped with an error")

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(_STARTUP_SECONDS)
        with contextlib.suppress(OSError):
            self.sock.close()
