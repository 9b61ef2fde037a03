"""The fault proxy itself, checked with plain httpx against the emulator: each fault looks
on the wire the way the suite claims it does."""

from __future__ import annotations

import socket

import httpx
import pytest

from continuum.emulator.pytest_plugin import EmulatorHandle

from .fault_proxy import Fault, FaultProxy


def post(
    proxy: FaultProxy, emulator: EmulatorHandle, body: object, timeout: float = 5.0
) -> httpx.Response:
    return httpx.post(
        f"{proxy.url}/pipeline",
        json=body,
        headers={"Authorization": f"Bearer {emulator.token}"},
        timeout=timeout,
    )


def test_forwards_when_healthy_over_keep_alive(proxy: FaultProxy, emulator: EmulatorHandle) -> None:
    with httpx.Client(headers={"Authorization": f"Bearer {emulator.token}"}) as client:
        for n in (1, 2, 3):
            reply = client.post(f"{proxy.url}/incr/k")
            assert reply.json() == {"result": n}
    assert proxy.forwarded == 3
    assert proxy.connections == 1


def test_refuse_closes_the_port_and_clear_reopens_it(
    proxy: FaultProxy, emulator: EmulatorHandle
) -> None:
    proxy.set_fault(Fault.REFUSE)
    with pytest.raises(httpx.ConnectError):
        post(proxy, emulator, [["PING"]])
    proxy.clear()
    assert post(proxy, emulator, [["PING"]]).json() == [{"result": "PONG"}]


def test_blackhole_never_completes_a_connect_and_clear_reopens_it(
    proxy: FaultProxy, emulator: EmulatorHandle
) -> None:
    proxy.set_fault(Fault.BLACKHOLE)
    with socket.socket() as probe:
        probe.settimeout(0.2)
        with pytest.raises(TimeoutError):  # not refused: the SYN goes unanswered
            probe.connect(("127.0.0.1", proxy.port))
    with pytest.raises(httpx.ConnectTimeout):
        post(proxy, emulator, [["PING"]], timeout=0.2)
    assert (proxy.connections, proxy.requests) == (0, 0)
    proxy.clear()
    assert post(proxy, emulator, [["PING"]]).json() == [{"result": "PONG"}]


def test_hang_never_answers_and_says_it_is_holding(
    proxy: FaultProxy, emulator: EmulatorHandle
) -> None:
    proxy.set_fault(Fault.HANG)
    with pytest.raises(httpx.ReadTimeout):
        post(proxy, emulator, [["PING"]], timeout=0.2)
    assert proxy.forwarded == 0
    assert proxy.wait_holding(1)  # the server still holds the request the client gave up on
    proxy.close()
    assert proxy.holding == 0


def test_a_delayed_status_answers_once_released(
    proxy: FaultProxy, emulator: EmulatorHandle
) -> None:
    proxy.set_fault(Fault.STATUS, status=503, body=b"busy", delay=30.0)
    with pytest.raises(httpx.ReadTimeout):
        post(proxy, emulator, [["PING"]], timeout=0.2)
    proxy.release()
    released = post(proxy, emulator, [["PING"]])  # meets the new release event at once
    assert (released.status_code, released.text) == (503, "busy")


def test_slow_answers_after_running_the_command(
    proxy: FaultProxy, emulator: EmulatorHandle
) -> None:
    proxy.set_fault(Fault.SLOW, delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        post(proxy, emulator, [["INCR", "slow"]], timeout=0.1)
    assert proxy.wait_forwarded(1)
    proxy.clear()
    assert post(proxy, emulator, [["GET", "slow"]]).json() == [{"result": "1"}]


@pytest.mark.parametrize(
    ("fault", "status", "text"),
    [
        (Fault.HTTP500, 500, "<html><body><h1>500 Internal Server Error</h1></body></html>"),
        (Fault.HTTP502, 502, "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"),
        (Fault.HTTP401, 401, '{"error":"Unauthorized"}'),
        (
            Fault.QUOTA,
            400,
            '{"error":"ERR max daily request limit exceeded. Limit: 10000, Usage: 10001. '
            'See https://upstash.com/docs/redis/troubleshooting/max_daily_request_limit"}',
        ),
        (Fault.NONJSON, 200, "<html>Welcome to nginx!</html>"),
    ],
)
def test_canned_answers(
    proxy: FaultProxy, emulator: EmulatorHandle, fault: Fault, status: int, text: str
) -> None:
    proxy.set_fault(fault)
    reply = post(proxy, emulator, [["PING"]])
    assert (reply.status_code, reply.text) == (status, text)


def test_5xx_pages_come_after_the_emulator_ran_the_request(
    proxy: FaultProxy, emulator: EmulatorHandle
) -> None:
    proxy.set_fault(Fault.HTTP502)
    post(proxy, emulator, [["INCR", "ran"]])
    proxy.clear()
    assert post(proxy, emulator, [["GET", "ran"]]).json() == [{"result": "1"}]


def test_truncated_body_is_short_of_its_length(proxy: FaultProxy, emulator: EmulatorHandle) -> None:
    proxy.set_fault(Fault.TRUNCATED)
    with pytest.raises(httpx.RemoteProtocolError):
        post(proxy, emulator, [["PING"]])


def test_reset_mid_body(proxy: FaultProxy, emulator: EmulatorHandle) -> None:
    proxy.set_fault(Fault.RESET)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        post(proxy, emulator, [["SET", "k", "x" * 5000]])
    assert proxy.forwarded == 1


def test_close_ends_every_thread_even_with_a_hung_request(emulator: EmulatorHandle) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(emulator.url)
    assert parts.hostname is not None and parts.port is not None
    proxy = FaultProxy(parts.hostname, parts.port)
    proxy.set_fault(Fault.HANG)
    with pytest.raises(httpx.ReadTimeout):
        post(proxy, emulator, [["PING"]], timeout=0.2)
    proxy.close()
    assert not any(t.is_alive() for t in proxy._threads)
    with pytest.raises(httpx.ConnectError):
        post(proxy, emulator, [["PING"]])
