"""Values to stored bytes and back: JSON by default, MessagePack on request, never pickle.

Upstash bills stored bytes and bandwidth, and other clients (``@upstash/redis`` above all)
read the same keys, so the default format is plain compact JSON text: what that client
writes and what it ``JSON.parse``-s when it reads. Anything that is not plain JSON carries a
two-byte marker, ``b"\\x00"`` plus a kind, which no JSON text can start with:

    b"\\x00b"  raw Python ``bytes``, stored as they are
    b"\\x00m"  MessagePack
    b"\\x00z"  zlib-compressed JSON
    b"\\x00Z"  zlib-compressed MessagePack

Compression is used only above a size threshold and only when it actually saves bytes.
Decoding treats stored bytes as untrusted: decompression is bounded (no zip bombs),
MessagePack is unpacked with size limits, deep nesting is refused, and every failure is a
``DecodeError`` that says what was wrong without quoting the value. Bytes that another
client wrote and that are not JSON come back as ``str`` (or ``bytes`` when not UTF-8).

    >>> codec = make_codec()
    >>> codec.encode({"user": 1})
    b'{"user":1}'
    >>> codec.decode(b'{"user":1}')
    {'user': 1}
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from collections.abc import Callable
from json.encoder import c_make_encoder as _c_make_encoder  # type: ignore[attr-defined]
from json.encoder import encode_basestring as _encode_text
from typing import Any, Protocol

from continuum.errors import ConfigurationError, DecodeError, ValidationError

__all__ = ["Codec", "JsonCodec", "MsgpackCodec", "make_codec"]

MARKER = b"\x00"
KIND_BYTES = b"b"
KIND_MSGPACK = b"m"
KIND_ZJSON = b"z"
KIND_ZMSGPACK = b"Z"

_COMPRESS_LEVEL = 6
_BYTES_LIKE = (bytes, bytearray, memoryview)  # a tuple: isinstance checks it faster
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


#: Idle C encoders, each with its own ``markers`` dict (the circular-reference check).
_idle: list[tuple[Callable[[object, int], Any], dict[int, object]]] = []


def _json_text(value: object) -> str:
    """``_ENCODER.encode(value)``: the same text and the same errors, at half the cost.

    ``JSONEncoder.encode`` builds its C encoder anew on every call (``iterencode``'s
    ``_one_shot`` path); here one is built with the same arguments and reused. Each use
    takes an encoder off the idle list and puts it back only after a success, when the
    encoder has emptied its ``markers`` again: two threads never share one, and neither
    does an encoding that starts while another is running on the same thread (a dict
    subclass's ``items()`` may store a value). ``list.pop``/``append`` are atomic, so no
    lock is needed. A failed encoding's encoder is dropped with whatever ``markers`` it
    left. Where the C accelerator is missing the plain ``encode`` runs.
    """
    if _c_make_encoder is None:
        return _ENCODER.encode(value)
    try:
        pair = _idle.pop()
    except IndexError:
        markers: dict[int, object] = {}
        pair = (
            _c_make_encoder(
                markers, _ENCODER.default, _encode_text, None, ":", ",", False, False, False
            ),
            markers,
        )
    text = "".join(pair[0](value, 0))
    _idle.append(pair)
    return text


_DECODER = json.JSONDecoder()
_scan = _DECODER.scan_once  # type: ignore[attr-defined]  # set in __init__, not typed
_JSON_SPACE = " \t\n\r"


def _json_decode(text: str) -> object:
    """``json.loads(text)`` for text that starts with a value, without the two whitespace
    regex matches ``JSONDecoder.decode`` spends around it (half of what decoding a small
    value costs). Anything else, errors included, goes through ``decode`` itself."""
    if text and text[0] not in _JSON_SPACE:
        try:
            value, end = _scan(text, 0)
        except StopIteration:  # not JSON at the start: ``decode`` says why
            return _DECODER.decode(text)
        if end == len(text):
            return value
    return _DECODER.decode(text)


#: Deepest JSON nesting we decode. CPython turns deeper input into RecursionError, but
#: Pyodide (Cloudflare Workers) overflows its JS stack first and the whole isolate dies,
#: so hostile depth is refused before ``json.loads`` ever sees it, on every platform.
MAX_JSON_DEPTH = 512
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def json_too_deep(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether brackets outside JSON strings nest deeper than ``limit``.

    The common case is decided by two C-level counts; only text holding more brackets than
    ``limit`` is scanned, token by token (strings skipped whole by the regex).
    """
    if len(data) <= limit:  # too few characters for that many brackets
        return False
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for match in _JSON_TOKEN.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


class Codec(Protocol):
    """Turns a Python value into the bytes stored in Redis, and back."""

    name: str

    def encode(self, value: object) -> bytes: ...

    def decode(self, data: bytes) -> object: ...


def _load_msgpack() -> Any:
    try:
        import msgpack  # type: ignore[import-untyped]
    except ImportError:
        return None
    return msgpack


class _Base:
    """Shared decoding: every codec reads every format, so switching codecs keeps old keys."""

    name = "base"

    def __init__(self, *, compress_threshold: int | None, max_decoded_size: int) -> None:
        if compress_threshold is not None and compress_threshold < 0:
            raise ConfigurationError("compress_threshold must be >= 0 or None")
        if max_decoded_size <= 0:
            raise ConfigurationError("max_decoded_size must be positive")
        self.compress_threshold = compress_threshold
        self.max_decoded_size = max_decoded_size
        self._msgpack: Any = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(compress_threshold={self.compress_threshold!r}, "
            f"max_decoded_size={self.max_decoded_size!r})"
        )

    def _maybe_compress(self, data: bytes, kind: bytes, plain: bytes) -> bytes:
        """``plain`` is what is stored uncompressed; compress only if that saves bytes."""
        threshold = self.compress_threshold
        if threshold is None or len(data) <= threshold:
            return plain
        packed = zlib.compress(data, _COMPRESS_LEVEL)
        if len(packed) + 2 < len(plain):
            return MARKER + kind + packed
        return plain

    def decode(self, data: bytes) -> object:
        if type(data) is not bytes:
            if not isinstance(data, _BYTES_LIKE):
                raise DecodeError(f"expected stored bytes, got {type(data).__name__}")
            data = bytes(data)
        if len(data) > self.max_decoded_size:
            raise DecodeError(
                f"stored value is {len(data)} bytes, over max_decoded_size "
                f"({self.max_decoded_size})"
            )
        if not data or data[0]:  # no marker: plain JSON (the common case, inline)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return data
            if len(data) > MAX_JSON_DEPTH and json_too_deep(data):
                raise DecodeError(f"stored JSON nests deeper than {MAX_JSON_DEPTH} levels; refused")
            try:
                # _json_decode, inline: a value read in the fallback's hot loop pays for
                # no call beyond the decoding itself
                if text and text[0] not in _JSON_SPACE:
                    try:
                        value, end = _scan(text, 0)
                    except StopIteration:
                        return _DECODER.decode(text)  # not JSON: raises why
                    if end == len(text):
                        return value
                return _DECODER.decode(text)
            except ValueError:
                return text
            except RecursionError:
                raise DecodeError("stored JSON is nested too deeply to decode safely") from None
        kind = data[1:2]
        if kind == KIND_BYTES:
            return data[2:]
        if kind == KIND_ZJSON:
            return self._decode_json(self._inflate(data[2:]))
        if kind == KIND_MSGPACK:
            return self._unpack(data[2:])
        if kind == KIND_ZMSGPACK:
            return self._unpack(self._inflate(data[2:]))
        # Not one of ours: another client stored binary that happens to start with NUL.
        return data

    def _decode_json(self, data: bytes) -> object:
        if json_too_deep(data):
            raise DecodeError(f"stored JSON nests deeper than {MAX_JSON_DEPTH} levels; refused")
        try:
            return _json_decode(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise DecodeError("compressed JSON value is not valid UTF-8") from None
        except ValueError as exc:
            raise DecodeError(f"compressed JSON value is not valid JSON ({_where(exc)})") from None
        except RecursionError:
            raise DecodeError("stored JSON is nested too deeply to decode safely") from None

    def _inflate(self, payload: bytes) -> bytes:
        limit = self.max_decoded_size
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(payload, limit)
        except zlib.error:
            raise DecodeError("compressed value is corrupt (zlib could not inflate it)") from None
        if inflater.unconsumed_tail:
            raise DecodeError(
                f"compressed value inflates past max_decoded_size ({limit} bytes); refused"
            )
        if not inflater.eof:
            raise DecodeError("compressed value is truncated")
        return out

    def _unpack(self, payload: bytes) -> object:
        msgpack = self._msgpack or _load_msgpack()
        if msgpack is None:
            raise DecodeError(
                "value is stored as MessagePack but the 'msgpack' package is not installed "
                "(pip install 'continuum-cache[msgpack]')"
            )
        self._msgpack = msgpack
        limit = min(len(payload), self.max_decoded_size)
        try:
            return msgpack.unpackb(
                payload,
                raw=False,
                strict_map_key=True,
                max_str_len=limit,
                max_bin_len=limit,
                max_array_len=limit,
                max_map_len=limit,
                max_ext_len=limit,
            )
        except RecursionError:
            raise DecodeError("MessagePack value is nested too deeply to decode safely") from None
        except Exception as exc:  # msgpack raises several unrelated types for bad input
            raise DecodeError(f"MessagePack value is corrupt ({type(exc).__name__})") from None


def _where(exc: ValueError) -> str:
    pos = getattr(exc, "pos", None)
    return f"at byte {pos}" if pos is not None else "unparseable"


class JsonCodec(_Base):
    """Compact UTF-8 JSON; ``bytes`` values are kept exact under the ``\\x00b`` marker."""

    name = "json"

    def __init__(
        self, *, compress_threshold: int | None = 1024, max_decoded_size: int = 64 * 1024 * 1024
    ) -> None:
        super().__init__(compress_threshold=compress_threshold, max_decoded_size=max_decoded_size)

    def encode(self, value: object) -> bytes:
        if type(value) is bytes:
            return MARKER + KIND_BYTES + value
        if isinstance(value, _BYTES_LIKE):
            return MARKER + KIND_BYTES + bytes(value)
        try:
            data = _json_text(value).encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("value contains a lone surrogate: not valid UTF-8") from None
        except (TypeError, ValueError, RecursionError) as exc:
            raise ValidationError(
                f"cannot store a value of type {type(value).__name__} as JSON: {_reason(exc)}"
            ) from None
        threshold = self.compress_threshold
        if threshold is None or len(data) <= threshold:
            return data  # too small to compress: no further call
        return self._maybe_compress(data, KIND_ZJSON, data)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text = str(exc)
    if "Out of range float" in text:
        return "NaN and infinity are not JSON (other clients could not read them)"
    if "circular" in text.lower():
        return "it contains a reference to itself"
    return "only dict, list, str, int, float, bool, None and bytes are supported"


def _msgpack_reason(exc: BaseException) -> str:
    if isinstance(exc, OverflowError):
        return "integers must fit in 64 bits"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "only dict, list, str, int, float, bool, None and bytes are supported"


class MsgpackCodec(_Base):
    """MessagePack (smaller and faster for binary-heavy values); other clients see bytes."""

    name = "msgpack"

    def __init__(
        self, *, compress_threshold: int | None = 1024, max_decoded_size: int = 64 * 1024 * 1024
    ) -> None:
        super().__init__(compress_threshold=compress_threshold, max_decoded_size=max_decoded_size)
        msgpack = _load_msgpack()
        if msgpack is None:
            raise ConfigurationError(
                "use_msgpack=True needs the 'msgpack' package: "
                "pip install 'continuum-cache[msgpack]'"
            )
        self._msgpack = msgpack
        # packb builds a Packer per call: a shared Packer would not be thread-safe.
        self._packb: Callable[[object], bytes] = functools.partial(msgpack.packb, use_bin_type=True)

    def encode(self, value: object) -> bytes:
        try:
            data = self._packb(value)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise ValidationError(
                f"cannot store a value of type {type(value).__name__} as MessagePack: "
                f"{_msgpack_reason(exc)}"
            ) from None
        return self._maybe_compress(data, KIND_ZMSGPACK, MARKER + KIND_MSGPACK + data)


def make_codec(
    *,
    use_msgpack: bool = False,
    compress_threshold: int | None = 1024,
    max_decoded_size: int = 64 * 1024 * 1024,
) -> Codec:
    """The codec a cache uses; ``compress_threshold=None`` turns compression off."""
    cls: type[JsonCodec | MsgpackCodec] = MsgpackCodec if use_msgpack else JsonCodec
    return cls(compress_threshold=compress_threshold, max_decoded_size=max_decoded_size)
