"""A script's first use sends EVAL, later ones EVALSHA; a flushed server costs no error.

Over the emulator (fakeredis, then a real redis-server), through real sockets. The
requests are recorded by a transport that hands each one to the real httpx transport
first, so what is checked is what went over the wire.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from continuum import Script
from continuum.cache import AsyncUpstashCache, UpstashCache
from continuum.emulator.pytest_plugin import EmulatorHandle
from continuum.errors import NoScriptError
from continuum.ratelimit import AsyncRateLimiter, BlockedCache, RateLimiter
from continuum.rest import AsyncHttpxTransport, HttpRequest, HttpResponse, HttpxTransport
from continuum.rest.scripts import scripts

HOUR = 3600


def _names(request: HttpRequest) -> list[str]:
    """The command names one request carried."""
    body = json.loads(request.body)
    commands = body if request.path in ("/pipeline", "/multi-exec") else [body]
    return [str(command[0]) for command in commands]


class Recording(HttpxTransport):
    """The real transport, noting the command names of each request it sends."""

    def __init__(self, url: str, log: list[list[str]]) -> None:
        super().__init__(url)
        self.log = log

    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        self.log.append(_names(request))
        return super().send(request, timeout)


class AsyncRecording(AsyncHttpxTransport):
    def __init__(self, url: str, log: list[list[str]]) -> None:
        super().__init__(url)
        self.log = log

    async def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        self.log.append(_names(request))
        return await super().send(request, timeout)


@pytest.fixture(autouse=True)
def new_container() -> Iterator[None]:
    """Each test starts as a new container: this process has seen no script loaded."""
    scripts.forget()
    yield
    scripts.forget()


def flush_scripts(emulator: EmulatorHandle) -> None:
    with UpstashCache(rest_url=emulator.url, rest_token=emulator.token) as admin:
        assert admin.execute([("SCRIPT", "FLUSH")]) == ["OK"]


def test_a_fresh_limiter_sends_eval_once_then_evalsha(emulator: EmulatorHandle) -> None:
    flush_scripts(emulator)  # the server holds no script, as after a deploy to a new one
    scripts.forget()
    log: list[list[str]] = []
    emulator.reset_billing()
    with UpstashCache(
        rest_url=emulator.url, rest_token=emulator.token,
        transport_factory=lambda url: Recording(url, log),
    ) as cache:  # fmt: skip
        limiter = RateLimiter(cache, blocked=BlockedCache())
        first = limiter.limit("u", limit=5, window_seconds=HOUR)
        assert (first.allowed, first.remaining, first.reason) == (True, 4, "allowed")
        assert log == [["EVAL"]] and emulator.requests() == 1
        second = limiter.limit("u", limit=5, window_seconds=HOUR)
        assert (second.allowed, second.remaining) == (True, 3)
        assert log == [["EVAL"], ["EVALSHA"]] and emulator.requests() == 2
        # the server's scripts are flushed: the next check still answers, with one
        # NOSCRIPT round trip and the EVAL after it, then EVALSHA again
        flush_scripts(emulator)
        emulator.reset_billing()
        third = limiter.limit("u", limit=5, window_seconds=HOUR)
        assert (third.allowed, third.remaining, third.reason) == (True, 2, "allowed")
        assert log[2:] == [["EVALSHA"], ["EVAL"]] and emulator.requests() == 2
        fourth = limiter.limit("u", limit=5, window_seconds=HOUR)
        assert (fourth.allowed, fourth.remaining) == (True, 1)
        assert log[4:] == [["EVALSHA"]]


def test_a_second_client_in_the_process_knows_the_script_is_loaded(
    emulator: EmulatorHandle,
) -> None:
    log: list[list[str]] = []
    with UpstashCache(rest_url=emulator.url, rest_token=emulator.token) as cache:
        RateLimiter(cache, blocked=BlockedCache()).limit("u", limit=5)
    with UpstashCache(
        rest_url=emulator.url, rest_token=emulator.token,
        transport_factory=lambda url: Recording(url, log),
    ) as other:  # fmt: skip
        RateLimiter(other, blocked=BlockedCache()).limit("u", limit=5)
    assert log == [["EVALSHA"]]


def test_run_script_sends_eval_first_and_recovers_from_a_flush(
    emulator: EmulatorHandle,
) -> None:
    script = Script.from_source("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    log: list[list[str]] = []
    with UpstashCache(
        rest_url=emulator.url, rest_token=emulator.token,
        transport_factory=lambda url: Recording(url, log),
    ) as cache:  # fmt: skip
        assert cache.run_script(script, ["n"], ["5"]) == 5
        assert cache.run_script(script, ["n"], ["2"]) == 7
        assert log == [["EVAL"], ["EVALSHA"]]
        flush_scripts(emulator)
        assert cache.run_script(script, ["n"], ["1"]) == 8
        assert log[2:] == [["EVALSHA"], ["EVAL"]]


def test_a_pipeline_sends_eval_for_a_script_not_yet_loaded(emulator: EmulatorHandle) -> None:
    script = Script.from_source("return redis.call('INCRBY', KEYS[1], 10)")
    log: list[list[str]] = []
    with UpstashCache(
        rest_url=emulator.url, rest_token=emulator.token,
        transport_factory=lambda url: Recording(url, log),
    ) as cache:  # fmt: skip
        with cache.pipeline() as pipe:
            pipe.set("a", 1)
            pipe.command("EVALSHA", script.sha1, 1, "n")
        assert pipe.results == [True, 10]
        with cache.pipeline() as pipe:
            pipe.command("EVALSHA", script.sha1, 1, "n")
            pipe.get("a")
        assert pipe.results == [20, 1]
        assert log == [["SET", "EVAL"], ["EVALSHA", "GET"]]
        # flushed: a NOSCRIPT at the end of the batch is sent again at once (nothing
        # after it in the batch ran before it)...
        flush_scripts(emulator)
        with cache.pipeline() as pipe:
            pipe.get("a")
            pipe.command("EVALSHA", script.sha1, 1, "n")
        assert pipe.results == [1, 30]
        assert log[2:] == [["GET", "EVALSHA"], ["EVAL"]]
        # ...one followed by other commands keeps its error (resending it would run it
        # after them), and the next use sends EVAL
        flush_scripts(emulator)
        with cache.pipeline() as pipe:
            pipe.command("EVALSHA", script.sha1, 1, "n")
            pipe.get("a")
        assert isinstance(pipe.results[0], NoScriptError) and pipe.results[1] == 1
        with cache.pipeline() as pipe:
            pipe.command("EVALSHA", script.sha1, 1, "n")
        assert pipe.results == [40]
        assert log[4:] == [["EVALSHA", "GET"], ["EVAL"]]


async def test_the_async_limiter_sends_eval_once_then_evalsha(emulator: EmulatorHandle) -> None:
    flush_scripts(emulator)
    scripts.forget()
    log: list[list[str]] = []
    cache = AsyncUpstashCache(
        rest_url=emulator.url, rest_token=emulator.token,
        transport_factory=lambda url: AsyncRecording(url, log),
    )  # fmt: skip
    try:
        limiter = AsyncRateLimiter(cache, blocked=BlockedCache())
        assert (await limiter.limit("u", limit=5, window_seconds=HOUR)).remaining == 4
        assert (await limiter.limit("u", limit=5, window_seconds=HOUR)).remaining == 3
        assert log == [["EVAL"], ["EVALSHA"]]
        flush_scripts(emulator)
        result = await limiter.limit("u", limit=5, window_seconds=HOUR)
        assert (result.allowed, result.remaining, result.reason) == (True, 2, "allowed")
        assert log[2:] == [["EVALSHA"], ["EVAL"]]
    finally:
        await cache.aclose()
