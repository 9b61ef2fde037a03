"""``continuum emulator``: serve the Upstash-compatible REST emulator from the command line.

    $ continuum emulator
    UPSTASH_REDIS_REST_URL=http://127.0.0.1:8079
    UPSTASH_REDIS_REST_TOKEN=continuum-dev-token

Paste the two lines into your function's environment. It binds loopback by default; a
bind that other machines can reach needs ``--allow-remote`` *and* a token of your own,
because the default token is public knowledge.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import ssl
import sys
from types import FrameType

from continuum.emulator.access import DEFAULT_TOKEN, is_loopback


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=8079, help="port (default: 8079; 0 picks one)"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("CONTINUUM_EMULATOR_TOKEN", DEFAULT_TOKEN),
        help="the token clients must send (default: $CONTINUUM_EMULATOR_TOKEN or a dev token)",
    )
    parser.add_argument(
        "--readonly-token", default=None, help="a read-only token (default: a random one)"
    )
    parser.add_argument(
        "--redis-url",
        default=None,
        help="serve a real Redis at this URL instead of the in-process fakeredis",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (requires a --token of your own)",
    )
    parser.add_argument(
        "--daily-limit",
        type=int,
        default=None,
        help="answer Upstash's quota error once this many commands were billed",
    )
    parser.add_argument("--tls-cert", default=None, help="serve HTTPS with this PEM certificate")
    parser.add_argument(
        "--tls-key", default=None, help="the certificate's PEM private key (if not in --tls-cert)"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request")


def _port(text: str) -> int:
    """A TCP port number, refused by argparse (usage and exit 2) when it is not one."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use 0-65535 (0 picks one)")
    return port


def _refusal(args: argparse.Namespace) -> str | None:
    if is_loopback(args.host):
        return None
    if not args.allow_remote:
        return (
            f"refusing to bind {args.host}: other machines could reach the emulator. "
            "Pass --allow-remote and a --token of your own to do it anyway."
        )
    if args.token == DEFAULT_TOKEN:
        return (
            f"refusing to bind {args.host} with the default token, which anyone can read "
            "in the docs. Pass --token with a secret of your own."
        )
    return None


def run(args: argparse.Namespace) -> int:
    refusal = _refusal(args)
    if refusal is not None:
        print(f"continuum emulator: {refusal}", file=sys.stderr)
        return 2
    if not args.token:
        print("continuum emulator: --token must not be empty", file=sys.stderr)
        return 2
    from continuum.emulator.server import EmulatorServer  # here: --help stays free of redis-py

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
    )
    try:
        server = EmulatorServer(
            args.redis_url or "fakeredis",
            args.host,
            args.port,
            token=args.token,
            readonly_token=args.readonly_token,
            daily_limit=args.daily_limit,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
        )
    except (ssl.SSLError, OSError) as error:
        print(f"continuum emulator: cannot use the TLS certificate: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # e.g. a --redis-url redis-py cannot parse
        print(f"continuum emulator: {error}", file=sys.stderr)
        return 2
    try:
        if args.redis_url:
            server.backend.client.ping()
        server.start()
    except OSError as error:
        reason = error.strerror or error
        print(
            f"continuum emulator: cannot listen on {args.host}:{args.port}: {reason}",
            file=sys.stderr,
        )
        return 1
    except Exception as error:  # redis-py's connection errors, a bad URL
        print(
            f"continuum emulator: cannot use the backend: {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return 1

    def _terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    for name, value in server.env.items():
        print(f"{name}={value}")
    if args.readonly_token is None:
        print(f"# read-only token: {server.readonly_token}")
    print(f"# serving {server.backend.describe()}; Ctrl+C to stop", flush=True)
    if not is_loopback(args.host) and not args.tls_cert:
        print(
            "# warning: plain HTTP on a non-loopback address: pass --tls-cert/--tls-key "
            "or put TLS in front of it",
            file=sys.stderr,
            flush=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
