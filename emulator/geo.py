"""Geo commands on fakeredis, with Redis's replies.

fakeredis stores a geohash *string* as a member's score and keeps exact coordinates, so
its GEOPOS, GEODIST and searches differ from Redis's (and Upstash's) in the last digits,
in order and in ZSCORE. Redis stores a 52-bit interleaved geohash as the score; a
position is the centre of that cell; distances use the haversine formula on a sphere of
6372797.560856 m and are printed with four decimals. These commands do the same, on
fakeredis's sorted sets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fakeredis._command_args_parsing import Float
from fakeredis._commands import Key
from fakeredis._core import CommandItem
from fakeredis._helpers import SimpleError
from fakeredis.model import ZSet

from continuum.emulator.extension import command

LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
LON_MIN, LON_MAX = -180.0, 180.0
STEP = 26
EARTH_RADIUS = 6372797.560856
UNITS = {b"m": 1.0, b"km": 1000.0, b"mi": 1609.34, b"ft": 0.3048}
_ALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"


def _spread(value: int) -> int:
    out = 0
    for bit in range(STEP):
        out |= ((value >> bit) & 1) << (2 * bit)
    return out


def _squash(value: int) -> int:
    out = 0
    for bit in range(STEP):
        out |= ((value >> (2 * bit)) & 1) << bit
    return out


def encode(lon: float, lat: float, lat_range: tuple[float, float] = (LAT_MIN, LAT_MAX)) -> int:
    """Redis's 52-bit geohash: latitude bits even, longitude bits odd."""
    lat_low, lat_high = lat_range
    lat_cell = int((lat - lat_low) / (lat_high - lat_low) * (1 << STEP))
    lon_cell = int((lon - LON_MIN) / (LON_MAX - LON_MIN) * (1 << STEP))
    return _spread(lat_cell) | (_spread(lon_cell) << 1)


def decode(bits: int) -> tuple[float, float]:
    """The centre of a geohash cell, as (longitude, latitude)."""
    lat_cell, lon_cell = _squash(bits), _squash(bits >> 1)
    # In Redis's order of operations, so the last digit matches too.
    lat_scale, lon_scale, cells = LAT_MAX - LAT_MIN, LON_MAX - LON_MIN, float(1 << STEP)
    lat_low = LAT_MIN + (lat_cell * 1.0 / cells) * lat_scale
    lat_high = LAT_MIN + ((lat_cell + 1) * 1.0 / cells) * lat_scale
    lon_low = LON_MIN + (lon_cell * 1.0 / cells) * lon_scale
    lon_high = LON_MIN + ((lon_cell + 1) * 1.0 / cells) * lon_scale
    lon, lat = (lon_low + lon_high) / 2, (lat_low + lat_high) / 2
    return max(LON_MIN, min(LON_MAX, lon)), max(LAT_MIN, min(LAT_MAX, lat))


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Metres between two points, as Redis computes them."""
    lat1r, lat2r = math.radians(lat1), math.radians(lat2)
    v = math.sin(math.radians(lon2 - lon1) / 2)
    if v == 0.0:
        return EARTH_RADIUS * abs(lat2r - lat1r)
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS * math.asin(math.sqrt(a))


def _number(value: float) -> bytes:
    return f"{value:.17g}".encode()


def _fixed(value: float) -> bytes:
    return f"{value:.4f}".encode()


def _unit(name: bytes) -> float:
    factor = UNITS.get(name.lower())
    if factor is None:
        raise SimpleError("ERR unsupported unit provided. please use M, KM, FT, MI")
    return factor


def _coordinates(lon: float, lat: float) -> None:
    if not (LON_MIN <= lon <= LON_MAX and LAT_MIN <= lat <= LAT_MAX):
        raise SimpleError(f"ERR invalid longitude,latitude pair {lon:f},{lat:f}")


@dataclass
class _Search:
    lon: float = 0.0
    lat: float = 0.0
    radius: float | None = None  # metres
    box: tuple[float, float] | None = None  # width, height in metres
    unit: float = 1.0
    order: str | None = None
    count: int | None = None
    any: bool = False
    with_coord: bool = False
    with_dist: bool = False
    with_hash: bool = False
    store: bytes | None = None
    store_dist: bool = False


class GeoCommands:
    """Mixed into the emulator's fakeredis socket."""

    @command("geoadd", (Key(ZSet), bytes), (bytes,))
    def geoadd(self, key: CommandItem, *args: bytes) -> int:
        flags = set()
        i = 0
        while i < len(args) and args[i].lower() in (b"nx", b"xx", b"ch"):
            flags.add(args[i].lower())
            i += 1
        data = args[i:]
        if {b"nx", b"xx"} <= flags:
            raise SimpleError("ERR XX and NX options at the same time are not compatible")
        if not data or len(data) % 3:
            raise SimpleError("ERR syntax error")
        zset = key.value
        added = changed = 0
        for j in range(0, len(data), 3):
            lon, lat = Float.decode(data[j]), Float.decode(data[j + 1])
            _coordinates(lon, lat)
            member, score = data[j + 2], float(encode(lon, lat))
            exists = member in zset
            if (exists and b"nx" in flags) or (not exists and b"xx" in flags):
                continue
            if not exists:
                added += 1
            if not exists or zset.get(member) != score:
                changed += 1
                zset[member] = score
        if changed:
            key.updated()
        return changed if b"ch" in flags else added

    @command("geopos", (Key(ZSet),), (bytes,))
    def geopos(self, key: CommandItem, *members: bytes) -> list[Any]:
        out: list[Any] = []
        for member in members:
            score = key.value.get(member)
            if score is None:
                out.append(None)
            else:
                lon, lat = decode(int(score))
                out.append([_number(lon), _number(lat)])
        return out

    @command("geodist", (Key(ZSet), bytes, bytes), (bytes,))
    def geodist(self, key: CommandItem, first: bytes, second: bytes, *args: bytes) -> Any:
        if len(args) > 1:
            raise SimpleError("ERR syntax error")
        unit = _unit(args[0]) if args else 1.0
        scores = [key.value.get(first), key.value.get(second)]
        if None in scores:
            return None
        (lon1, lat1), (lon2, lat2) = (decode(int(s or 0)) for s in scores)
        return _fixed(distance(lon1, lat1, lon2, lat2) / unit)

    @command("geohash", (Key(ZSet),), (bytes,))
    def geohash(self, key: CommandItem, *members: bytes) -> list[bytes | None]:
        out: list[bytes | None] = []
        for member in members:
            score = key.value.get(member)
            if score is None:
                out.append(None)
                continue
            lon, lat = decode(int(score))
            bits = encode(lon, lat, (-90.0, 90.0))
            chars = [_ALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1F] for i in range(10)]
            out.append(bytes([*chars, _ALPHABET[0]]))
        return out

    @command("georadius", (Key(ZSet), Float, Float, Float, bytes), (bytes,))
    def georadius(self, key: CommandItem, lon: float, lat: float, radius: float, *a: bytes) -> Any:
        return self._radius(key, lon, lat, radius, a, writes=True)

    @command("georadius_ro", (Key(ZSet), Float, Float, Float, bytes), (bytes,))
    def georadius_ro(
        self, key: CommandItem, lon: float, lat: float, radius: float, *a: bytes
    ) -> Any:
        return self._radius(key, lon, lat, radius, a, writes=False)

    @command("georadiusbymember", (Key(ZSet), bytes, Float, bytes), (bytes,))
    def georadiusbymember(self, key: CommandItem, member: bytes, radius: float, *a: bytes) -> Any:
        lon, lat = self._position(key, member)
        return self._radius(key, lon, lat, radius, a, writes=True)

    @command("georadiusbymember_ro", (Key(ZSet), bytes, Float, bytes), (bytes,))
    def georadiusbymember_ro(
        self, key: CommandItem, member: bytes, radius: float, *a: bytes
    ) -> Any:
        lon, lat = self._position(key, member)
        return self._radius(key, lon, lat, radius, a, writes=False)

    @command("geosearch", (Key(ZSet),), (bytes,))
    def geosearch(self, key: CommandItem, *args: bytes) -> Any:
        search = self._parse_search(key, args)
        return self._reply(self._find(key, search), search)

    @command("geosearchstore", (Key(), Key(ZSet)), (bytes,))
    def geosearchstore(self, dst: CommandItem, key: CommandItem, *args: bytes) -> int:
        rest = list(args)
        store_dist = any(a.lower() == b"storedist" for a in rest)
        rest = [a for a in rest if a.lower() != b"storedist"]
        search = self._parse_search(key, rest)
        if search.with_coord or search.with_dist or search.with_hash:
            raise SimpleError("ERR syntax error")
        return self._store(dst, self._find(key, search), store_dist, search.unit)

    # -- helpers ---------------------------------------------------------------------------

    def _position(self, key: CommandItem, member: bytes) -> tuple[float, float]:
        score = key.value.get(member)
        if score is None:
            raise SimpleError("ERR could not decode requested zset member")
        return decode(int(score))

    def _radius(
        self,
        key: CommandItem,
        lon: float,
        lat: float,
        radius: float,
        args: Sequence[bytes],
        *,
        writes: bool,
    ) -> Any:
        _coordinates(lon, lat)
        search = _Search(lon=lon, lat=lat)
        search.unit = _unit(args[0])
        search.radius = radius * search.unit
        store: bytes | None = None
        store_dist = False
        i = 1
        while i < len(args):
            option = args[i].lower()
            if writes and option in (b"store", b"storedist") and i + 1 < len(args):
                store, store_dist = args[i + 1], option == b"storedist"
                i += 2
                continue
            i = self._common_option(search, args, i)
        if store is not None:
            if search.with_coord or search.with_dist or search.with_hash:
                raise SimpleError(
                    "ERR STORE option in GEORADIUS is not compatible with WITHDIST, "
                    "WITHHASH and WITHCOORD options"
                )
            db: Any = getattr(self, "_db")  # noqa: B009 - the fakeredis socket's database
            target = CommandItem(store, db, item=db.get(store))
            stored = self._store(target, self._find(key, search), store_dist, search.unit)
            target.writeback()
            return stored
        return self._reply(self._find(key, search), search)

    def _common_option(self, search: _Search, args: Sequence[bytes], i: int) -> int:
        option = args[i].lower()
        if option == b"withcoord":
            search.with_coord = True
        elif option == b"withdist":
            search.with_dist = True
        elif option == b"withhash":
            search.with_hash = True
        elif option in (b"asc", b"desc"):
            search.order = option.decode()
        elif option == b"any":
            search.any = True
        elif option == b"count" and i + 1 < len(args):
            count = Float.decode(args[i + 1])
            if count <= 0 or count != int(count):
                raise SimpleError("ERR COUNT must be > 0")
            search.count = int(count)
            return i + 2
        else:
            raise SimpleError("ERR syntax error")
        if search.any and search.count is None and option == b"any":
            pass
        return i + 1

    def _parse_search(self, key: CommandItem, args: Sequence[bytes]) -> _Search:
        search = _Search()
        origin = shape = False
        i = 0
        while i < len(args):
            option = args[i].lower()
            if option == b"frommember" and i + 1 < len(args):
                search.lon, search.lat = self._position(key, args[i + 1])
                origin, i = True, i + 2
            elif option == b"fromlonlat" and i + 2 < len(args):
                search.lon, search.lat = Float.decode(args[i + 1]), Float.decode(args[i + 2])
                _coordinates(search.lon, search.lat)
                origin, i = True, i + 3
            elif option == b"byradius" and i + 2 < len(args):
                search.unit = _unit(args[i + 2])
                search.radius = Float.decode(args[i + 1]) * search.unit
                shape, i = True, i + 3
            elif option == b"bybox" and i + 3 < len(args):
                search.unit = _unit(args[i + 3])
                width, height = Float.decode(args[i + 1]), Float.decode(args[i + 2])
                search.box = (width * search.unit, height * search.unit)
                shape, i = True, i + 4
            else:
                i = self._common_option(search, args, i)
        if not origin:
            raise SimpleError("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified")
        if not shape:
            raise SimpleError("ERR exactly one of BYRADIUS and BYBOX can be specified")
        if search.any and search.count is None:
            raise SimpleError("ERR the ANY argument requires COUNT argument")
        return search

    def _find(self, key: CommandItem, search: _Search) -> list[tuple[bytes, float, float, int]]:
        found: list[tuple[bytes, float, float, int]] = []
        items = sorted(key.value.items(), key=lambda item: (item[1], item[0])) if key.value else []
        for member, score in items:
            lon, lat = decode(int(score))
            meters = distance(search.lon, search.lat, lon, lat)
            if search.box is not None:
                width, height = search.box
                across = distance(lon, lat, search.lon, lat)
                along = EARTH_RADIUS * abs(math.radians(lat) - math.radians(search.lat))
                if across > width / 2 or along > height / 2:
                    continue
            elif search.radius is not None and meters > search.radius:
                continue
            found.append((member, meters, score, int(score)))
            if search.any and search.count is not None and len(found) >= search.count:
                break
        order = search.order
        if order is None and search.count is not None and not search.any:
            order = "asc"
        if order is not None:
            found.sort(key=lambda hit: hit[1], reverse=order == "desc")
        if search.count is not None:
            found = found[: search.count]
        return found

    def _reply(self, found: list[tuple[bytes, float, float, int]], search: _Search) -> list[Any]:
        if not (search.with_coord or search.with_dist or search.with_hash):
            return [member for member, *_ in found]
        out: list[Any] = []
        for member, meters, _, bits in found:
            item: list[Any] = [member]
            if search.with_dist:
                item.append(_fixed(meters / search.unit))
            if search.with_hash:
                item.append(bits)
            if search.with_coord:
                lon, lat = decode(bits)
                item.append([_number(lon), _number(lat)])
            out.append(item)
        return out

    @staticmethod
    def _store(
        dst: CommandItem, found: list[tuple[bytes, float, float, int]], dist: bool, unit: float
    ) -> int:
        zset = ZSet()
        for member, meters, score, _ in found:
            zset[member] = meters / unit if dist else score
        dst.value = zset if len(zset) else None
        return len(zset)
