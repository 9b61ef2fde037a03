"""Run the emulator in a background thread: what ``continuum dev``, tests and benchmarks use.

    with EmulatorServer() as emu:            # fakeredis, a free loopback port
        os.environ.update(emu.env)
        ...
        assert emu.billed_commands == 3

It is served by uvicorn (``continuum.emulator.serving``) with keep-alive connections
like Upstash's; server-sent events stream while other requests are served. uvicorn's
access log is off: a ``?_token=`` query never reaches a log line.
"""

from __future__ import annotations

import logging
import secrets
import ssl

from continuum.emulator.access import DEFAULT_TOKEN, is_loopback
from continuum.emulator.app import EmulatorApp
from continuum.emulator.asgi import AsgiEmulator
from continuum.emulator.backend import Backend
from continuum.emulator.serving import UvicornThread

__all__ = ["DEFAULT_TOKEN", "EmulatorServer", "is_loopback"]
log = logging.getLogger("emulator")


class EmulatorServer:
    """An Upstash-compatible REST server on ``host:port`` (port 0 picks a free one).

    ``backend`` is ``"fakeredis"`` (in-process, the default) or a ``redis://`` URL.
    A read-only token is generated when none is given, so read-only behaviour can always
    be tested.
    """

    def __init__(
        self,
        backend: str = "fakeredis",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str = DEFAULT_TOKEN,
        readonly_token: str | None = None,
        daily_limit: int | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        script_timeout: float = 5.0,
    ) -> None:
        self.host = host
        self._ssl_context: ssl.SSLContext | None = None
        if tls_cert:
            self._ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ssl_context.load_cert_chain(tls_cert, tls_key)
        self.port = port
        self.token = token
        self.readonly_token = readonly_token or f"ro-{secrets.token_hex(12)}"
        self.backend = Backend(backend, script_timeout=script_timeout)
        self.app = EmulatorApp(
            self.backend,
            token=token,
            readonly_token=self.readonly_token,
            daily_limit=daily_limit,
        )
        self._asgi: AsgiEmulator | None = None
        self._server: UvicornThread | None = None

    def __repr__(self) -> str:
        state = "running" if self._server else "stopped"
        where = self.url if self._server else self.host
        return f"<EmulatorServer {where} {state} {self.backend.describe()}>"

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The two variables a function reads to find its database."""
        return {"UPSTASH_REDIS_REST_URL": self.url, "UPSTASH_REDIS_REST_TOKEN": self.token}

    @property
    def billed_commands(self) -> int:
        return self.app.billing.commands

    @property
    def requests(self) -> int:
        return self.app.billing.requests

    @property
    def requests_by_endpoint(self) -> dict[str, int]:
        return self.app.billing.per_endpoint()

    def reset_billing(self) -> None:
        self.app.billing.reset()

    def flush(self) -> None:
        """Empty the database (the billing counter is left alone)."""
        self.backend.flush()

    def start(self) -> EmulatorServer:
        if self._server is not None:
            return self
        self.app.stopping.clear()
        self._asgi = AsgiEmulator(self.app)
        server = UvicornThread(
            self._asgi, self.host, self.port, ssl_context=self._ssl_context, name="emulator"
        )
        self.port = server.port
        self._server = server.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI's mode)."""
        self.start()
        assert self._server is not None
        try:
            while self._server.is_alive():
                self._server.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self.app.stopping.set()
        server.stop()
        if self._asgi is not None:
            self._asgi.close()
        self._server = None
        self._asgi = None
        self.backend.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
