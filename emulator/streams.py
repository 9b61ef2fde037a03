"""Stream commands on fakeredis, answering as Redis does.

XACKDEL deletes an entry that is in the stream whether or not the group still has it
pending (-1 is only for an ID not in the stream); fakeredis answers -1 for an entry
already acknowledged or never read, and keeps it. XPENDING's summary of a group with
nothing pending is ``[0, nil, nil, nil]``; fakeredis ends it with an empty list.
"""

from __future__ import annotations

from typing import Any

from fakeredis._commands import Key
from fakeredis._core import CommandItem
from fakeredis.model import StreamGroup, XStream

from continuum.emulator.extension import command


class StreamCommands:
    """Mixed into the emulator's fakeredis socket (see ``continuum.emulator.fake``)."""

    @command("xackdel", (Key(XStream), bytes), (bytes,))
    def xackdel(self, key: CommandItem, group_name: bytes, *args: bytes) -> list[int]:
        mode, ids = self._parse_xdelex_args(args, "XACKDEL")  # type: ignore[attr-defined]
        stream = key.value
        group = stream.group_get(group_name) if stream is not None else None
        if group is None:
            return [-1] * len(ids)
        answers = [_ack_and_delete(stream, group, entry, mode) for entry in ids]
        key.updated()
        return answers

    @command("xpending", (Key(XStream), bytes), (bytes,))
    def xpending(self, key: CommandItem, group_name: bytes, *args: bytes) -> Any:
        answer = super().xpending(key, group_name, *args)  # type: ignore[misc]
        if not args and answer[0] == 0:
            return [0, None, None, None]
        return answer


def _ack_and_delete(stream: XStream, group: StreamGroup, entry: bytes, mode: bytes) -> int:
    index, found = stream.find_index_key_as_str(entry)
    if not found:
        return -1
    entry_key = stream._ids[index]
    if entry_key in group.pel:
        group.ack((entry,))
    if mode == b"ACKED" and stream._is_referenced(entry_key):
        return 2
    stream._delete_at(index)
    if mode == b"DELREF":
        stream._drop_references(entry_key)
    return 1
