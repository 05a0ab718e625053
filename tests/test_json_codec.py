"""`mockai.wire.jsonbytes` (orjson underneath) against the standard library it replaced.

Invariants, over arbitrary JSON (integers of any size, every float, any Unicode, odd keys):
- `loads` reads what the standard library reads, with the same types (a 2**70 stays an int);
- `dumps` writes the standard library's compact `ensure_ascii=False` bytes, except floats the
  standard library writes with an exponent, which read back as the same double either way;
- `canonical` ignores key order, and is the old canonical text wherever `dumps` is the old text;
- what no encoder can write (lone surrogates) still fails the way callers expect;
- what `dumps` and `canonical` return holds its own length in memory and no more (orjson hands
  back its working buffer, 4 KiB and up, unshrunk).
"""

from __future__ import annotations

import json
import math
import sys
import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import keys, texts

from mockai.wire import jsonbytes

STDLIB = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: beyond 64 bits too
    st.floats(allow_nan=False, allow_infinity=False),
    texts(max_size=8),
)
values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(keys(), inner, max_size=4)
    ),
    max_leaves=16,
)


def typed(value: Any) -> Any:
    """`value` with its types spelled out, so that 1 == 1.0 and True == 1 do not hide changes."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def exponent_floats(value: Any) -> bool:
    """Whether the standard library writes some float of `value` with an exponent."""
    if isinstance(value, dict):
        return any(exponent_floats(item) for item in value.values())
    if isinstance(value, list):
        return any(exponent_floats(item) for item in value)
    return isinstance(value, float) and "e" in repr(value)


@given(values)
def test_loads_reads_what_the_standard_library_reads(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert typed(jsonbytes.loads(text.encode())) == typed(json.loads(text))
    assert typed(jsonbytes.loads(text)) == typed(json.loads(text))
    ascii_text = json.dumps(value)  # \\u escapes, surrogate pairs included
    assert typed(jsonbytes.loads(ascii_text.encode())) == typed(json.loads(ascii_text))


@given(values)
def test_dumps_writes_the_standard_librarys_bytes(value: Any) -> None:
    written = jsonbytes.dumps(value)
    assert typed(json.loads(written)) == typed(value)
    assert jsonbytes.dumps_str(value) == written.decode()
    if not exponent_floats(value):
        assert written == STDLIB.encode(value).encode()


@given(texts(max_size=30))
def test_string_is_how_dumps_writes_a_string(text: str) -> None:
    assert jsonbytes.string(text) == jsonbytes.dumps(text) == STDLIB.encode(text).encode()


@given(st.dictionaries(keys(), values, max_size=6), st.randoms(use_true_random=False))
def test_canonical_ignores_key_order(value: dict[str, Any], rng: Any) -> None:
    items = list(value.items())
    rng.shuffle(items)
    assert jsonbytes.canonical(dict(items)) == jsonbytes.canonical(value)
    if not exponent_floats(value):
        old = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert jsonbytes.canonical(value) == old.encode()


def _held(write: Any, value: Any, times: int = 50) -> tuple[bytes, float]:
    """What `write(value)` returns, and how many bytes each of `times` results kept holds (over
    many, so that the interpreter's own odd allocation does not count; after a first write, which
    may leave the value's strings holding their UTF-8 form)."""
    kept: list[bytes] = [write(value)] * times
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for index in range(times):
            kept[index] = write(value)
        return kept[0], (tracemalloc.get_traced_memory()[0] - before) / times
    finally:
        tracemalloc.stop()


@given(
    st.one_of(
        values,
        st.dictionaries(keys(), values, max_size=6),
        # long texts: past orjson's first buffer, which then doubles
        st.tuples(st.integers(0, 60_000), texts(min_size=1, max_size=3)).map(
            lambda pair: {"text": pair[1] * pair[0]}
        ),
    )
)
def test_what_is_written_holds_its_own_length_in_memory(value: Any) -> None:
    """The journal, the stores and the caches bound what they keep by the bytes' length: a result
    that held orjson's buffer would weigh ~4 KiB whatever its length, and up to twice it."""
    for write in (jsonbytes.dumps, jsonbytes.canonical):
        written, held = _held(write, value)
        assert held <= sys.getsizeof(written) + 32, (write.__name__, len(written), held)


def test_floats_with_exponents_read_back_exactly() -> None:
    for number in (1e-05, 9.99e-05, 1e-07, 1e16, 1.5e300, 5e-324, -2.5e-10):
        written = jsonbytes.dumps([number])
        assert json.loads(written) == [number]
        assert jsonbytes.loads(written) == [number]


@pytest.mark.parametrize("number", [2**64, 2**70, -(2**63) - 1, 10**30])
def test_integers_beyond_64_bits_stay_exact(number: int) -> None:
    assert jsonbytes.loads(f'{{"n": {number}}}'.encode()) == {"n": number}
    assert type(jsonbytes.loads(str(number).encode())) is int
    assert jsonbytes.dumps({"n": number}) == f'{{"n":{number}}}'.encode()
    assert jsonbytes.canonical({"n": number}) == f'{{"n":{number}}}'.encode()


def test_what_cannot_be_written_fails_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        jsonbytes.dumps({"x": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        jsonbytes.string("\udc80")
    with pytest.raises(ValueError):
        jsonbytes.loads(b'{"x": "\\ud800"}')
    for bad in (b"NaN", b"[Infinity]", b"1e999", b'{"a": 1} x', b"\xef\xbb\xbf{}", b"\xff"):
        with pytest.raises(ValueError):
            jsonbytes.loads(bad)
    assert math.isfinite(jsonbytes.loads(b"1e308"))
    # Non-string keys are written as the standard library writes them.
    assert jsonbytes.dumps({1: "a", None: "b"}) == STDLIB.encode({1: "a", None: "b"}).encode()
