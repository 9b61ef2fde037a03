"""The ``continuum`` command line.

Each sub-command lives in its own module, imported only when that sub-command runs, so
``continuum --help`` stays fast and no handler ever pays for the CLI. A sub-command
module provides ``configure(parser)`` to declare its arguments and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "dev": ("continuum.cli.dev", "serve the reference API on loopback over the embedded emulator"),
    "emulator": ("continuum.emulator.cli", "run the local Upstash-compatible REST emulator"),
    "new": ("continuum.cli.new", "create a starter project for lambda, vercel or cloudflare"),
    "doctor": ("continuum.cli.doctor", "check the configuration, the token and the connection"),
    "cost": ("continuum.cli.cost", "estimate the monthly Upstash bill"),
    "invalidate": ("continuum.cli.invalidate", "delete the keys matching a pattern, with progress"),
    "subscribe": ("continuum.cli.subscribe", "print the messages published on a channel"),
    "migrate": ("continuum.cli.migrate", "copy a Redis's keys into the Upstash database"),
}

# The optional extra a command's imports come from; a base install lacks it.
EXTRAS: dict[str, str] = {"dev": "emulator", "emulator": "emulator"}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: continuum <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run 'continuum <command> --help' for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0 if args else 2
    if args[0] in {"-V", "--version"}:
        from continuum import __version__

        print(f"continuum {__version__}")
        return 0
    name = args[0]
    if name not in COMMANDS:
        print(f"continuum: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"continuum {name}", description=text)
    module.configure(parser)
    namespace = parser.parse_args(args[1:])
    try:
        code = int(module.run(namespace))
        sys.stdout.flush()  # a closed pipe shows up here, not in the interpreter's exit
        return code
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if name not in EXTRAS or not missing or missing == "continuum":
            raise
        print(
            f"continuum {name}: needs the {EXTRAS[name]!r} extra (no module named "
            f"{missing!r}): pip install 'continuum-cache[{EXTRAS[name]}]'",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:
        # The reader went away (`continuum subscribe ... | head`): stop quietly, and keep
        # Python from complaining again when it flushes stdout at exit.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
