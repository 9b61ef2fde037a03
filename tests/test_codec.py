"""The stored format: what other clients read, what survives a round trip, what is refused."""

from __future__ import annotations

import json
import os
import zlib
from typing import Any

import msgpack
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from continuum.codec import make_codec
from continuum.errors import ConfigurationError, DecodeError, ValidationError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values)
def test_json_round_trip(value: object) -> None:
    codec = make_codec(compress_threshold=16)
    assert codec.decode(codec.encode(value)) == value


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(msgpack_values)
def test_msgpack_round_trip(value: object) -> None:
    codec = make_codec(use_msgpack=True, compress_threshold=16)
    assert codec.decode(codec.encode(value)) == value


def test_default_format_is_compact_json_other_clients_parse() -> None:
    codec = make_codec()
    stored = codec.encode({"user": "ana", "roles": ["a", "b"], "n": 1})
    assert stored == b'{"user":"ana","roles":["a","b"],"n":1}'
    assert json.loads(stored) == {"user": "ana", "roles": ["a", "b"], "n": 1}


def test_str_is_stored_as_a_json_string_in_utf8() -> None:
    codec = make_codec()
    assert codec.encode("hi") == b'"hi"'
    assert codec.encode("café") == '"café"'.encode()
    assert codec.decode('"café"'.encode()) == "café"


def test_reads_what_other_clients_wrote() -> None:
    codec = make_codec()
    assert codec.decode(b"42") == 42  # INCR counters
    assert codec.decode(b"plain text") == "plain text"  # a raw string, not JSON
    assert codec.decode(b"\xff\xfe\x01") == b"\xff\xfe\x01"  # binary written elsewhere
    assert codec.decode(b"\x00\x01rest") == b"\x00\x01rest"  # NUL-led but not our marker


def test_bytes_round_trip_exactly() -> None:
    for codec in (make_codec(), make_codec(use_msgpack=True)):
        blob = bytes(range(256)) * 10
        assert codec.decode(codec.encode(blob)) == blob


def test_compression_only_above_threshold_and_when_it_saves() -> None:
    codec = make_codec(compress_threshold=100)
    small = {"a": "x" * 50}
    assert codec.encode(small) == json.dumps(small, separators=(",", ":")).encode()
    big = {"a": "x" * 5000}
    stored = codec.encode(big)
    assert stored[:2] == b"\x00z" and len(stored) < 200
    assert codec.decode(stored) == big
    assert make_codec(compress_threshold=None).encode(big)[:1] == b"{"


def test_random_bytes_are_not_compressed_when_that_would_grow_them() -> None:
    blob = os.urandom(4000)
    stored = make_codec(use_msgpack=True, compress_threshold=10).encode(blob)
    assert stored[:2] == b"\x00m"


def test_msgpack_is_marked_and_smaller_for_numbers() -> None:
    codec = make_codec(use_msgpack=True, compress_threshold=None)
    value = list(range(1000, 1100))
    stored = codec.encode(value)
    assert stored[:2] == b"\x00m"
    assert len(stored) < len(make_codec(compress_threshold=None).encode(value))


def test_json_codec_reads_msgpack_values_so_switching_keeps_old_keys() -> None:
    stored = make_codec(use_msgpack=True).encode({"k": [1, 2]})
    assert make_codec().decode(stored) == {"k": [1, 2]}


UNSUPPORTED = "only dict, list, str, int, float, bool, None and bytes are supported"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (object(), f"cannot store a value of type object as JSON: {UNSUPPORTED}"),
        (
            float("nan"),
            "cannot store a value of type float as JSON: NaN and infinity are not JSON "
            "(other clients could not read them)",
        ),
        ({1, 2}, f"cannot store a value of type set as JSON: {UNSUPPORTED}"),
        ("\ud800", "value contains a lone surrogate: not valid UTF-8"),
    ],
)
def test_unstorable_values_are_refused_clearly(value: object, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make_codec().encode(value)
    assert str(caught.value) == message


_COMPACT: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False, "allow_nan": False}


@given(json_values)
def test_stored_json_is_exactly_what_json_dumps_writes(value: object) -> None:
    # The codec keeps its C encoder between calls instead of building one per value as
    # json.dumps does: the text must not differ by a byte.
    stored = make_codec(compress_threshold=None).encode(value)
    assert stored == json.dumps(value, **_COMPACT).encode("utf-8")


def test_a_value_stored_while_another_is_being_encoded_gets_its_own_encoder() -> None:
    # A dict subclass's items() is user code that runs in the middle of an encoding; if
    # it stores a value, that encoding must not disturb the outer one's bookkeeping.
    codec = make_codec()
    shared = {"a": [1, 2]}
    inner: list[bytes] = []

    class Storing(dict[str, object]):
        def items(self) -> Any:
            inner.append(codec.encode([shared, shared]))
            return super().items()

    stored = codec.encode([shared, Storing(x=shared), shared])
    assert stored == b'[{"a":[1,2]},{"x":{"a":[1,2]}},{"a":[1,2]}]'
    assert inner == [b'[{"a":[1,2]},{"a":[1,2]}]']


def test_a_refused_value_leaves_nothing_behind_for_the_next_one() -> None:
    codec = make_codec()
    box: dict[str, object] = {}
    box["self"] = box
    with pytest.raises(ValidationError):
        codec.encode(box)
    box["self"] = 1  # the same dict, no longer circular: nothing remembers the failure
    assert codec.encode([box, box]) == b'[{"self":1},{"self":1}]'


json_texts = (
    st.text()
    | json_values.map(json.dumps)
    | st.tuples(
        st.sampled_from(["", " ", "\n", "x", "[", "\ufeff"]),
        json_values.map(json.dumps),
        st.sampled_from(["", " ", "\t", "]", "1", ",2"]),
    ).map("".join)
)


@given(json_texts)
def test_stored_text_reads_as_json_loads_reads_it_or_as_the_text(text: str) -> None:
    # decode() parses plain JSON on an inlined path and compressed JSON on the shared
    # one: both must read exactly what json.loads reads, and refuse what it refuses.
    assume(not text.startswith("\x00"))  # a NUL first is one of the codec's markers
    codec = make_codec()
    try:
        expected = json.loads(text)
    except ValueError as refused:
        assert codec.decode(text.encode("utf-8")) == text
        with pytest.raises(DecodeError) as caught:
            codec.decode(b"\x00z" + zlib.compress(text.encode("utf-8")))
        assert str(caught.value) == (
            f"compressed JSON value is not valid JSON (at byte {refused.pos})"  # type: ignore[attr-defined]
        )
        return
    for got in (
        codec.decode(text.encode("utf-8")),
        codec.decode(b"\x00z" + zlib.compress(text.encode("utf-8"))),
    ):
        assert type(got) is type(expected) and repr(got) == repr(expected)


def test_self_referencing_value_is_refused() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValidationError) as caught:
        make_codec().encode(loop)
    assert str(caught.value) == (
        "cannot store a value of type list as JSON: it contains a reference to itself"
    )


def test_zip_bomb_is_refused_without_inflating_it() -> None:
    codec = make_codec(max_decoded_size=1 << 20)
    bomb = b"\x00z" + zlib.compress(b"[" + b"0," * (10 << 20) + b"0]", 9)
    assert len(bomb) < 100_000
    with pytest.raises(DecodeError) as caught:
        codec.decode(bomb)
    assert str(caught.value) == (
        "compressed value inflates past max_decoded_size (1048576 bytes); refused"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00znot zlib at all", "compressed value is corrupt (zlib could not inflate it)"),
        (b"\x00z" + zlib.compress(b'{"a": 1}')[:-4], "compressed value is truncated"),
        (
            b"\x00z" + zlib.compress(b"{not json"),
            "compressed JSON value is not valid JSON (at byte 1)",
        ),
        (b"\x00z" + zlib.compress(b"\xff\xfe"), "compressed JSON value is not valid UTF-8"),
        (b"\x00m\xc1", "MessagePack value is corrupt (FormatError)"),
        (b"\x00m\xdb\xff\xff\xff\xff", "MessagePack value is corrupt (ValueError)"),
        (b"\x00Z" + zlib.compress(b"\x92\x01"), "MessagePack value is corrupt (ValueError)"),
    ],
)
def test_corrupt_stored_bytes_raise_decode_error_without_quoting_them(
    data: bytes, message: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        make_codec().decode(data)
    assert str(caught.value) == message


def test_deep_nesting_is_refused() -> None:
    # Refused by a depth check before json.loads: Pyodide dies before RecursionError.
    too_deep = "stored JSON nests deeper than 512 levels; refused"
    for data in (b"[" * 100_000 + b"]" * 100_000, b"[" * 513 + b"]" * 513):
        with pytest.raises(DecodeError) as caught:
            make_codec().decode(data)
        assert str(caught.value) == too_deep
    assert make_codec().decode(b"[" * 512 + b"]" * 512) is not None
    # brackets inside strings do not count, and a wide value is not a deep one
    tricky = ["[" * 5000 + '\\"', '\\"' + "{" * 5000]
    assert make_codec().decode(json.dumps(tricky).encode()) == tricky
    assert make_codec().decode(b"[" + b"[]," * 5000 + b"[]]") == [[]] * 5001
    deep = b"\x91" * 100_000 + b"\x01"
    with pytest.raises(DecodeError) as caught:
        make_codec().decode(b"\x00m" + deep)
    assert str(caught.value) == "MessagePack value is corrupt (StackError)"


def test_oversized_stored_value_is_refused() -> None:
    with pytest.raises(DecodeError) as caught:
        make_codec(max_decoded_size=10).decode(b'"' + b"x" * 20 + b'"')
    assert str(caught.value) == "stored value is 22 bytes, over max_decoded_size (10)"


def test_msgpack_map_with_non_string_keys_is_refused() -> None:
    data = b"\x00m" + msgpack.packb({(1, 2): 1}, use_bin_type=True)
    with pytest.raises(DecodeError) as caught:
        make_codec().decode(data)
    assert str(caught.value) == "MessagePack value is corrupt (ValueError)"


def test_bad_settings_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError) as caught:
        make_codec(compress_threshold=-1)
    assert str(caught.value) == "compress_threshold must be >= 0 or None"
    with pytest.raises(ConfigurationError) as caught:
        make_codec(max_decoded_size=0)
    assert str(caught.value) == "max_decoded_size must be positive"


def test_missing_msgpack_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "msgpack", None)
    with pytest.raises(ConfigurationError) as caught:
        make_codec(use_msgpack=True)
    assert str(caught.value) == (
        "use_msgpack=True needs the 'msgpack' package: pip install 'continuum-cache[msgpack]'"
    )
    with pytest.raises(DecodeError) as caught_decode:
        make_codec().decode(b"\x00m\x01")
    assert str(caught_decode.value) == (
        "value is stored as MessagePack but the 'msgpack' package is not installed "
        "(pip install 'continuum-cache[msgpack]')"
    )


NODE_SCRIPT = """
import { Redis } from "@upstash/redis";
const redis = new Redis({ url: process.argv[1], token: process.argv[2] });
const read = {
  obj: await redis.get("py:obj"), str: await redis.get("py:str"), list: await redis.get("py:list"),
};
await redis.set("js:obj", { name: "Zoë", tags: ["a", "b"], n: 1.5 });
await redis.set("js:str", "plain text");
await redis.set("js:num", 42);
console.log(JSON.stringify(read));
"""


@pytest.mark.node
def test_upstash_js_client_reads_our_values_and_we_read_its(emulator: Any) -> None:
    import shutil
    import subprocess
    from pathlib import Path

    from continuum import UpstashCache

    root = Path(__file__).resolve().parents[1]
    node = shutil.which("node")
    if node is None or not (root / "node_modules" / "@upstash" / "redis").is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("node and node_modules/@upstash/redis are needed (npm ci)")
        pytest.skip("node or @upstash/redis missing (run npm ci)")
    with UpstashCache(rest_url=emulator.url, rest_token=emulator.token) as cache:
        cache.set("py:obj", {"name": "Zoë", "nested": {"ok": True}, "n": None})
        cache.set("py:str", "hello, world")
        cache.set("py:list", [1, 2.5, "x"])
        result = subprocess.run(
            [node, "--input-type=module", "-e", NODE_SCRIPT, emulator.url, emulator.token],
            capture_output=True, text=True, timeout=90, cwd=root,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        assert json.loads(result.stdout) == {
            "obj": {"name": "Zoë", "nested": {"ok": True}, "n": None},
            "str": "hello, world",
            "list": [1, 2.5, "x"],
        }
        assert cache.get("js:obj") == {"name": "Zoë", "tags": ["a", "b"], "n": 1.5}
        assert cache.get("js:str") == "plain text"
        assert cache.get("js:num") == 42
