"""Redis Functions (FUNCTION LOAD|LIST|STATS|DELETE|FLUSH, FCALL, FCALL_RO), served by the emulator.

Placeholder until the emulator serves them: Upstash's refusal applies (see ``commands``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from continuum.emulator.resp import Command

if TYPE_CHECKING:
    from continuum.emulator.backend import Backend, Plan


class FunctionLibrary:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def translate(self, args: Command) -> Plan:
        return args, None
