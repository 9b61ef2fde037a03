"""pytest fixtures that give a test a running Upstash emulator (registered via ``pytest11``).

    def test_counter(upstash_env):            # env set, database empty
        assert my_function() == 1

    def test_billing(upstash_emulator):
        call_my_code(upstash_emulator.url, upstash_emulator.token)
        assert upstash_emulator.billed() == 2

One server (fakeredis in-process, served by pytest-httpserver's threaded werkzeug server)
lives for the whole session; every test gets an empty database and a zeroed billing
counter. Nothing heavy is imported until a fixture is used, so the plugin costs nothing
to test runs that do not use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from continuum.emulator.app import EmulatorApp
    from continuum.emulator.backend import Backend


class EmulatorHandle:
    """What a test sees: where the emulator is, its tokens, and its billing counter."""

    def __init__(self, url: str, token: str, readonly_token: str, app: EmulatorApp) -> None:
        self.url = url
        self.token = token
        self.readonly_token = readonly_token
        self._app = app

    def __repr__(self) -> str:  # tokens stay out of test output
        return f"<EmulatorHandle {self.url} backend={self.backend}>"

    @property
    def backend(self) -> str:
        return self._app.backend.kind

    @property
    def redis(self) -> Any:
        """A redis-py client on the emulator's own data (bypassing HTTP), to check results."""
        return self._app.backend.client

    @property
    def env(self) -> dict[str, str]:
        """``UPSTASH_REDIS_REST_URL`` and ``UPSTASH_REDIS_REST_TOKEN`` for this emulator."""
        return {"UPSTASH_REDIS_REST_URL": self.url, "UPSTASH_REDIS_REST_TOKEN": self.token}

    def apply_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point code that reads the environment at this emulator, for one test."""
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)

    def billed(self) -> int:
        """Commands billed so far in this test, counted as Upstash bills them."""
        return self._app.billing.commands

    def requests(self) -> int:
        """HTTP requests served so far in this test."""
        return self._app.billing.requests

    def requests_by_endpoint(self) -> dict[str, int]:
        """HTTP requests (round trips) so far in this test, per endpoint: ``command``
        (``POST /`` and the path form), ``pipeline``, ``multi-exec``, ``subscribe``."""
        return self._app.billing.per_endpoint()

    def reset_billing(self) -> None:
        self._app.billing.reset()

    def flush(self) -> None:
        """Empty the database (between tests this happens by itself)."""
        self._app.backend.flush()

    def fresh(self) -> EmulatorHandle:
        """Empty database, zero counters: the state every test starts from."""
        self.flush()
        self.reset_billing()
        return self


def _serve(backend: Backend, token: str, readonly_token: str) -> tuple[Any, EmulatorApp]:
    """Start the emulator app on pytest-httpserver's threaded werkzeug server."""
    import logging

    from pytest_httpserver.httpserver import HTTPServerBase
    from werkzeug.serving import WSGIRequestHandler, make_server
    from werkzeug.wrappers import Request, Response

    from continuum.emulator.app import EmulatorApp

    app = EmulatorApp(backend, token=token, readonly_token=readonly_token)
    log = logging.getLogger("emulator")

    class QuietRequestHandler(WSGIRequestHandler):
        """werkzeug's handler logging ``METHOD /path status``: never a ``?_token=``."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            log.debug("%s %s %s", self.command, self.path.split("?", 1)[0][:200], code)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("emulator http: " + format, *args)

    class EmulatorHTTPServer(HTTPServerBase):
        """pytest-httpserver serving the emulator instead of canned answers."""

        def dispatch(self, request: Request) -> Response:
            return Response.from_app(app, request.environ)

        def application(self, request: Request) -> Response:
            # The base class reads the whole body first and keeps a log of every
            # request; the emulator enforces its own size limit and must not hoard.
            return self.dispatch(request)

        def start(self) -> None:
            import threading

            # As the base class, with a request log that never shows ``?_token=``.
            self.server = make_server(
                self.host,
                self.port,
                Request.application(self.application),
                threaded=True,
                request_handler=QuietRequestHandler,
            )
            self.port = self.server.port
            self.server_thread = threading.Thread(target=self.thread_target, daemon=True)
            self.server_thread.start()

    server = EmulatorHTTPServer("127.0.0.1", 0, threaded=True)
    server.start()
    return server, app


@pytest.fixture(scope="session")
def upstash_emulator_session() -> Iterator[EmulatorHandle]:
    """The session's emulator (fakeredis); use ``upstash_emulator`` for a clean one."""
    import secrets

    try:
        import fakeredis  # noqa: F401 - checked here for a helpful message
        import pytest_httpserver  # noqa: F401

        from continuum.emulator.backend import Backend
    except ImportError as missing:
        pytest.fail(
            f"the upstash_emulator fixture needs {missing.name}: "
            "pip install 'continuum-cache[emulator]'",
            pytrace=False,
        )

    token = f"test-{secrets.token_hex(16)}"
    readonly = f"ro-{secrets.token_hex(16)}"
    backend = Backend("fakeredis")
    server, app = _serve(backend, token, readonly)
    try:
        yield EmulatorHandle(f"http://127.0.0.1:{server.port}", token, readonly, app)
    finally:
        app.stopping.set()
        server.stop()
        backend.close()


@pytest.fixture
def upstash_emulator(upstash_emulator_session: EmulatorHandle) -> EmulatorHandle:
    """A running Upstash emulator with an empty database and a zeroed billing counter."""
    return upstash_emulator_session.fresh()


@pytest.fixture
def upstash_env(
    upstash_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> EmulatorHandle:
    """``upstash_emulator`` with ``UPSTASH_REDIS_REST_URL``/``_TOKEN`` set for this test."""
    upstash_emulator.apply_env(monkeypatch)
    return upstash_emulator
