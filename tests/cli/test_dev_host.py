"""``continuum dev --host`` with an IPv6 loopback literal, with or without brackets: it
serves on ::1 for real and prints a URL that works (``http://[::1]:port``)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import httpx
import pytest

from tests.platforms.test_app import banner_of


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(
    not ipv6_loopback(), reason="this machine has no IPv6 loopback (::1) to serve on"
)


@needs_ipv6
@pytest.mark.parametrize("host", ["[::1]", "::1", "0:0:0:0:0:0:0:1"])
def test_an_ipv6_loopback_is_served_and_shown_in_brackets(host: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "continuum.cli.main", "dev", "--host", host, "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        banner = banner_of(proc)
        first = banner.splitlines()[0] if banner else ""
        found = re.fullmatch(r"continuum dev: the reference API on (http://\[::1\]:(\d+))", first)
        assert found, (banner, proc.stderr.read() if proc.poll() is not None else "")
        url = found.group(1)
        assert f"  curl {url}/health\n" in banner
        with httpx.Client(timeout=10) as client:
            reply = client.get(url + "/health")
        assert reply.status_code == 200
        # the port really listens on ::1 (not only a name that resolves to it)
        with socket.socket(socket.AF_INET6) as direct:
            direct.settimeout(10)
            direct.connect(("::1", int(found.group(2))))
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_a_bracketed_address_that_is_not_loopback_is_refused() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "continuum.cli.main", "dev", "--host", "[2001:db8::1]"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr == (
        "continuum dev: '[2001:db8::1]' is not a loopback address: the dev server is for "
        "this machine\n"
    )
