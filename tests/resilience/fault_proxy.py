"""A real TCP proxy between a client and the emulator that breaks things on request.

It speaks just enough HTTP/1.1 to see request boundaries (headers plus ``Content-Length``),
so a fault applies per request and keep-alive connections behave like they do in
production. Each connection gets a thread; ``close()`` stops them all within a bounded
time. Faults are switched by assigning ``proxy.fault`` (and ``proxy.delay`` for slowness):

    refuse      the port is closed: connecting fails at once (ECONNREFUSED)
    blackhole   connecting never completes: the port listens with a full backlog and
                accepts nothing, so the kernel drops every SYN, as a firewall would
    hang        accept and read the request, then never answer
    slow        forward, then hold the answer for ``delay`` seconds, or until ``release()``
    http500 / http502   an HTML error page (after the emulator ran the request)
    http401     Upstash's unauthorized answer (the request is not forwarded)
    quota       Upstash's plan-limit error (not forwarded)
    truncated   a 200 whose body stops short of its Content-Length, then FIN
    nonjson     a 200 whose body is an HTML page
    reset       forward, send half the real answer, then RST the connection
    trickle     a status line, then one header line every 50 ms, never the end of the
                headers (each socket read succeeds quickly; only an overall bound stops
                the client)
    status      answer ``status``/``body`` (keep-alive) without forwarding, after
                ``delay`` seconds (or ``release()``) when a delay is set

``set_fault(..., times=n, skip=k)`` lets ``k`` requests pass, then applies the fault to
``n`` requests (None: all) before clearing it.

``forwarded`` counts requests that reached the emulator, ``connections`` counts accepted
connections (so a test can prove an open circuit sent nothing), ``requests`` counts HTTP
requests that reached the proxy and ``targets`` records their request targets (an
absolute URL when the client used it as a forward proxy). ``holding`` is the number of
requests a ``hang`` is holding right now: a caller that got its answer while it is
above zero gave up on its own, without waiting for the server.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from urllib.parse import urlsplit

__all__ = ["Fault", "FaultProxy", "closed_port_url"]

_MAX_HEAD = 64 * 1024


class Fault(StrEnum):
    NONE = "none"
    REFUSE = "refuse"
    BLACKHOLE = "blackhole"
    HANG = "hang"
    SLOW = "slow"
    HTTP500 = "http500"
    HTTP502 = "http502"
    HTTP401 = "http401"
    QUOTA = "quota"
    TRUNCATED = "truncated"
    NONJSON = "nonjson"
    RESET = "reset"
    TRICKLE = "trickle"
    STATUS = "status"


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


_CANNED = {
    Fault.HTTP500: _response(
        "500 Internal Server Error",
        "text/html",
        b"<html><body><h1>500 Internal Server Error</h1></body></html>",
    ),
    Fault.HTTP502: _response(
        "502 Bad Gateway", "text/html", b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
    ),
    Fault.HTTP401: _response("401 Unauthorized", "application/json", b'{"error":"Unauthorized"}'),
    Fault.QUOTA: _response(
        "400 Bad Request",
        "application/json",
        b'{"error":"ERR max daily request limit exceeded. Limit: 10000, Usage: 10001. '
        b'See https://upstash.com/docs/redis/troubleshooting/max_daily_request_limit"}',
    ),
    Fault.NONJSON: _response("200 OK", "text/html", b"<html>Welcome to nginx!</html>"),
}
_FORWARD_FIRST = {Fault.HTTP500, Fault.HTTP502}
_DEFAULT_BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


class _Closed(Exception):
    """The peer went away while we read from it."""


def _read_message(sock: socket.socket, buffer: bytearray) -> bytes:
    """One HTTP message (head + Content-Length body) from ``sock``; extra bytes stay in
    ``buffer`` for the next message on a keep-alive connection."""
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > _MAX_HEAD:
            raise _Closed
        chunk = sock.recv(65536)
        if not chunk:
            raise _Closed
        buffer += chunk
    end = buffer.index(b"\r\n\r\n") + 4
    length = 0
    for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(buffer) < end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise _Closed
        buffer += chunk
    message = bytes(buffer[: end + length])
    del buffer[: end + length]
    return message


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER 0), like a crashed peer or a middlebox."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class FaultProxy:
    """``url`` points at the proxy; requests go to ``upstream`` unless a fault says no."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.fault = Fault.NONE
        self.delay = 0.0
        self.status = 502
        self.body = _DEFAULT_BODY
        self.times: int | None = None
        self.skip = 0
        self.forwarded = 0
        self.connections = 0
        self.requests = 0
        self.holding = 0
        self.targets: list[str] = []
        self._stop = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        probe = socket.create_server(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._hole: list[socket.socket] = []
        self._listen()

    @classmethod
    def for_url(cls, upstream: str) -> FaultProxy:
        """A proxy in front of the server at ``upstream`` (an ``http://host:port`` URL)."""
        parts = urlsplit(upstream)
        return cls(parts.hostname or "127.0.0.1", parts.port or 80)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_fault(
        self,
        fault: Fault,
        *,
        delay: float = 0.0,
        status: int = 502,
        body: bytes | None = None,
        times: int | None = None,
        skip: int = 0,
    ) -> None:
        """Switch faults; ``refuse`` really closes the port and ``blackhole`` really stops
        completing connections; clearing either re-opens the port.

        ``status``/``body`` are the answer of ``Fault.STATUS``; ``skip`` requests pass,
        then ``times`` requests (None: all) meet the fault, then it clears."""
        with self._lock:
            self.delay, self.status, self.times, self.skip = delay, status, times, skip
            self.body = _DEFAULT_BODY if body is None else body
            self._released.set()  # answers held by the previous fault go now
            self._released = threading.Event()
        closed = fault in (Fault.REFUSE, Fault.BLACKHOLE)
        if closed and self._listener is not None:
            self._unlisten()
            self._drop_connections()  # pooled keep-alive connections must not sneak past
        self._close_hole()
        if fault is Fault.BLACKHOLE:
            self._open_hole()
        elif not closed and self._listener is None:
            self._listen()
        self.fault = fault

    def clear(self) -> None:
        self.set_fault(Fault.NONE)

    def _listen(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        listener.settimeout(0.05)
        self._listener = listener
        self._acceptor = self._spawn(self._accept_loop, listener)

    def _open_hole(self) -> None:
        """Listen with a backlog of zero and fill it with one connection of our own:
        Linux then drops every further SYN instead of answering it, so a client's
        connect hangs until its own timeout (a refused port would fail at once)."""
        hole = socket.create_server(("127.0.0.1", self.port), backlog=0)
        self._hole = [hole, socket.create_connection(("127.0.0.1", self.port), timeout=5)]

    def _close_hole(self) -> None:
        hole, self._hole = self._hole, []
        for sock in hole:
            sock.close()

    def _unlisten(self) -> None:
        listener, acceptor = self._listener, self._acceptor
        self._listener = None
        if listener is not None:
            listener.close()
        if acceptor is not None:
            acceptor.join(5)

    def _spawn(self, target: object, *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stop.is_set() and self._listener is listener:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                self.connections += 1
                self._sockets.add(conn)
            self._spawn(self._serve, conn)

    def _serve(self, client: socket.socket) -> None:
        buffer = bytearray()
        try:
            while not self._stop.is_set():
                request = _read_message(client, buffer)
                if not self._answer(client, request):
                    return
        except (_Closed, OSError):
            return
        finally:
            with self._lock:
                self._sockets.discard(client)
            with contextlib.suppress(OSError):
                client.close()

    def _pick(self, request: bytes) -> tuple[Fault, int, bytes, threading.Event]:
        """Count ``request`` and decide which fault it meets (``skip``/``times``)."""
        target = request.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
        with self._lock:
            self.requests += 1
            self.targets.append(target)
            fault, status, body, released = self.fault, self.status, self.body, self._released
            if self.skip > 0:
                self.skip -= 1
                fault = Fault.NONE
            elif self.times is not None:
                self.times -= 1
                if self.times <= 0:
                    self.fault, self.times = Fault.NONE, None
        return fault, status, body, released

    def _answer(self, client: socket.socket, request: bytes) -> bool:
        """Handle one request; False when the connection must end."""
        fault, status, body, released = self._pick(request)
        if fault is Fault.TRICKLE:
            client.sendall(b"HTTP/1.1 200 OK\r\n")
            while not self._stop.wait(0.05):
                client.sendall(b"X-Trickle: 1\r\n")  # OSError once the client hangs up
            return False
        if fault is Fault.STATUS:
            if self.delay:
                released.wait(self.delay)
                if self._stop.is_set():
                    return False
            client.sendall(
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
            )
            return True
        if fault is Fault.HANG:
            with self._lock:
                self.holding += 1
            self._stop.wait(60)
            with self._lock:
                self.holding -= 1
            return False
        if fault in _CANNED:
            if fault in _FORWARD_FIRST:
                self._forward(request)
            client.sendall(_CANNED[fault])
            return False
        if fault is Fault.TRUNCATED:
            client.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
                b"Connection: close\r\n\r\n"
                b'[{"result":"T0s='
            )
            client.shutdown(socket.SHUT_WR)
            return False
        response = self._forward(request)
        if fault is Fault.SLOW:
            released.wait(self.delay)
            if self._stop.is_set():
                return False
        if fault is Fault.RESET:
            cut = response.index(b"\r\n\r\n") + 4
            client.sendall(response[: cut + max(1, (len(response) - cut) // 2)])
            _reset(client)
            return False
        client.sendall(response)
        return b"connection: close" not in response[: response.index(b"\r\n\r\n")].lower()

    def _forward(self, request: bytes) -> bytes:
        with socket.create_connection(self.upstream, timeout=30) as upstream:
            upstream.sendall(request)
            response = _read_message(upstream, bytearray())
        with self._lock:
            self.forwarded += 1
        return response

    def wait_forwarded(self, count: int, timeout: float = 10.0) -> bool:
        """Poll until ``count`` requests reached the emulator (bounded; no fixed sleeps)."""
        return self._poll(lambda: self.forwarded >= count, timeout)

    def wait_holding(self, count: int, timeout: float = 10.0) -> bool:
        """Poll until a ``hang`` holds ``count`` requests (bounded; no fixed sleeps)."""
        return self._poll(lambda: self.holding >= count, timeout)

    def _poll(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            self._stop.wait(0.005)
        return True

    def release(self) -> None:
        """Let the answers a ``slow`` fault is holding go now."""
        self._released.set()

    def close(self) -> None:
        self._stop.set()
        self._released.set()
        self._unlisten()
        self._close_hole()
        self._drop_connections()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(5)

    def _drop_connections(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
