"""The ``continuum`` entry point itself: help, unknown commands, a reader that goes away."""

from __future__ import annotations

import subprocess
import sys

import pytest

from continuum.cli.main import main


def test_help_lists_every_command(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("dev", "emulator", "new", "doctor", "cost", "invalidate", "subscribe"):
        assert f"  {name}" in out


def test_unknown_command_is_a_usage_error(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["deploy"]) == 2
    assert "unknown command 'deploy'" in capsys.readouterr().err


def test_a_reader_that_closes_early_gets_no_traceback() -> None:
    """`continuum cost ... | head -1`: the pipe closes after one line."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from continuum.cli.main import main; raise SystemExit(main())",
         "cost", "--users", "1000000", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the command writes its first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 141, err
    assert "Traceback" not in err
    assert "BrokenPipe" not in err


@pytest.mark.parametrize("command", ["emulator", "dev"])
def test_a_command_whose_extra_is_not_installed_says_which_to_install(command: str) -> None:
    """A base `pip install continuum-cache` has no emulator dependencies: `continuum dev`
    and `continuum emulator` printed a ModuleNotFoundError traceback. The import system
    itself refuses `redis` here (a meta path finder), as it does in such an install."""
    hide = (
        "import sys\n"
        "class Missing:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'redis', 'fakeredis'}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Missing())\n"
        "from continuum.cli.main import main\n"
        "raise SystemExit(main())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", hide, command, "--port", "0"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        2,
        "",
        f"continuum {command}: needs the 'emulator' extra (no module named 'redis'): "
        "pip install 'continuum-cache[emulator]'\n",
    )
