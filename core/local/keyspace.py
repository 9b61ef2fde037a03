"""The keyspace under ``LocalCache``: values, types, expiry, creation order and eviction.

Command handlers (:mod:`continuum.local.commands`, :mod:`continuum.local.collections`)
work on a ``Keyspace``; :class:`~continuum.local.store.LocalCache` builds on it with the
fast paths, command dispatch and scripts. Expiry is lazy (a key past its deadline vanishes
when touched) and the keyspace is bounded: at ``max_keys`` an expired key among the oldest
few goes first, else the oldest key.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable

from continuum.errors import CommandError
from continuum.local.glob import compile_glob
from continuum.local.values import WRONGTYPE, Reply

__all__ = ["Keyspace"]

_EVICTION_SAMPLE = 16


class Keyspace:
    """Redis's keyspace in dicts; callers hold ``_lock`` around anything that mutates it."""

    def __init__(
        self, *, max_keys: int | None = 100_000, clock: Callable[[], float] = time.time
    ) -> None:
        if max_keys is not None and max_keys < 1:
            raise ValueError("max_keys must be at least 1 (or None for unbounded)")
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.RLock()
        self._data: dict[bytes, bytes | dict[bytes, bytes] | dict[bytes, float]] = {}
        self._types: dict[bytes, str] = {}
        self._expires: dict[bytes, float] = {}
        # Creation order, for SCAN cursors that survive deletes and for eviction.
        self._seqs: dict[bytes, int] = {}
        self._order: list[tuple[int, bytes]] = []
        self._next_seq = 1
        self._stale = 0
        self._head = 0  # entries of _order before it are known stale
        self._loaded: set[str] = set()

    def __len__(self) -> int:
        with self._lock:
            self._sweep()
            return len(self._data)

    # -- keyspace bookkeeping ---------------------------------------------------------------

    def _live(self, k: bytes) -> bool:
        exp = self._expires.get(k)
        if exp is not None and exp <= self._clock():
            self._drop(k)
            return False
        return k in self._data

    def _typed(self, k: bytes, kind: str) -> bool:
        """Whether a live ``kind`` value is at ``k``; WRONGTYPE if something else is."""
        if not self._live(k):
            return False
        if self._types[k] != kind:
            raise CommandError(WRONGTYPE)
        return True

    def _create(self, k: bytes, kind: str) -> None:
        if self.max_keys is not None and len(self._data) >= self.max_keys:
            self._evict()
        seq = self._next_seq
        self._next_seq += 1
        self._seqs[k] = seq
        self._order.append((seq, k))
        self._types[k] = kind

    def _drop(self, k: bytes) -> int:
        if self._data.pop(k, None) is None:
            return 0
        del self._types[k]
        self._expires.pop(k, None)
        del self._seqs[k]
        self._stale += 1
        if self._stale > 1024 and self._stale * 2 > len(self._order):
            self._order = [(s, k2) for s, k2 in self._order if self._seqs.get(k2) == s]
            self._stale = 0
            self._head = 0
        return 1

    def _sweep(self) -> None:
        now = self._clock()
        for k in [k for k, exp in self._expires.items() if exp <= now]:
            self._drop(k)

    def _evict(self) -> None:
        """Make room for one key: an expired key among the oldest few, else the oldest.

        Looking at a bounded sample (like Redis's approximated eviction) keeps an insert
        into a full store O(1) instead of sweeping every key with a TTL.
        """
        now = self._clock()
        oldest: bytes | None = None
        sampled = 0
        order, i = self._order, self._head
        while i < len(order) and self._seqs.get(order[i][1]) != order[i][0]:
            i += 1  # evictions leave stale entries at the front: skip them once, for good
        self._head = i
        for idx in range(i, len(order)):
            seq, k = order[idx]
            if self._seqs.get(k) != seq:
                continue  # compaction keeps these to at most half of _order
            exp = self._expires.get(k)
            if exp is not None and exp <= now:
                self._drop(k)
                return
            if oldest is None:
                oldest = k
            sampled += 1
            if sampled >= _EVICTION_SAMPLE:
                break
        if oldest is not None:
            self._drop(oldest)

    def _store(self, k: bytes, value: bytes, *, keep_ttl: bool = False) -> None:
        if k in self._data:
            self._types[k] = "string"
        else:
            self._create(k, "string")
        self._data[k] = value
        if not keep_ttl:
            self._expires.pop(k, None)

    def _container(self, k: bytes, kind: str) -> dict[bytes, bytes] | dict[bytes, float]:
        if not self._typed(k, kind):
            self._create(k, kind)
            self._data[k] = {}
        value = self._data[k]
        assert isinstance(value, dict)
        return value

    def _drop_if_empty(self, k: bytes) -> None:
        if not self._data.get(k, True):
            self._drop(k)

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def scan_keys(
        self, cursor: int, count: int, match: bytes | None, kind: str | None
    ) -> tuple[int, list[bytes]]:
        """One SCAN step: keys created at or after ``cursor`` (a creation sequence).

        Costs O(count), not O(keys): expired keys met on the way are dropped after the step
        (dropping during it could compact ``_order`` under the walk).
        """
        matcher = compile_glob(match) if match is not None else None
        order, seqs, expires, now = self._order, self._seqs, self._expires, self._clock()
        out: list[bytes] = []
        expired: list[bytes] = []
        examined = 0
        i = bisect_left(order, (cursor, b""))
        while i < len(order) and examined < count:
            seq, k = order[i]
            i += 1
            if seqs.get(k) != seq:
                continue
            examined += 1
            exp = expires.get(k)
            if exp is not None and exp <= now:
                expired.append(k)
            elif (kind is None or self._types[k] == kind) and (matcher is None or matcher(k)):
                out.append(k)
        next_cursor = order[i][0] if i < len(order) else 0
        for k in expired:
            self._drop(k)
        return next_cursor, out

    def run_script(self, sha: str, keys: list[bytes], args: list[bytes]) -> Reply:
        """Run the script ``sha`` (EVAL/EVALSHA); the store that knows scripts answers."""
        raise CommandError("ERR scripts do not run on a bare keyspace")
