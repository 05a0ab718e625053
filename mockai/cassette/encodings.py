"""A recorded body's content codings undone: gzip, deflate, br and zstd, within a size bound.

vcrpy records what the wire carried, so a cassette holds a compressed body as compressed bytes
with its `Content-Encoding`; replay must send the JSON itself. Not vcrpy's `decode_response`: it
knows gzip and deflate (br with brotli) and leaves any other body compressed, which replay would
then send as if it were the JSON (httpx asks for zstd whenever `zstandard` is installed).

Decoding is bounded: a body may come out at most `MAX_DECODED_BYTES`. A few kilobytes of gzip
can stand for a gigabyte, and of zstd or brotli for far more, so a hostile (or corrupted)
cassette could otherwise take all the memory of every server and test that loads it. The bound
is above any answer the API gives (the largest, 2,048 inputs of 3,072-dimensional embeddings as
JSON floats, is ~130 MB); a body past it is refused, naming the bound, and nothing past it is
ever held: each decoder gives out its output in slices and stops.

A body that does not decode is kept as recorded only when it is text: vcrpy's stubs for clients
that decompress (aiohttp) record the decoded JSON or event stream under the original header.
Compressed bytes are binary (gzip's header alone holds NUL and control bytes), so a binary body
that does not decode, or one that starts with its coding's magic, is damaged or truncated and is
refused: sent raw, it reached the SDK as bytes it could not read.
"""

from __future__ import annotations

import importlib
import re
import zlib
from collections.abc import Callable
from typing import Any

# The most bytes one recorded body may decode to.
MAX_DECODED_BYTES = 256 << 20
# Input fed to a decoder that cannot bound its own output (zstd, brotli) per step. A zstd block
# of 128 KiB can be a 4-byte RLE block, and a brotli meta-block of 16 MiB a few bytes, so a step
# of this many bytes overshoots the bound by tens of MiB at most before the check sees it.
_ZSTD_STEP = 1024
_BROTLI_STEP = 16
# What starts a stream of the coding: a body that does, and does not decode, is damaged, whatever
# its bytes after (a zstd frame may hold stored, printable blocks).
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Bytes no text body of the API holds (JSON escapes them; an event stream has none).
_CONTROLS = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class UndecodableBody(ValueError):
    """A body mockai will not replay decoded: an unknown coding, a missing decoder, too big."""


def decoded(body: bytes, encodings: list[str]) -> bytes:
    """`body` with `encodings` (as the header lists them, in the order applied) undone."""
    # Applied in the order listed, so undone from the last (RFC 9110, 8.4).
    for encoding in reversed([e for e in encodings if e and e != "identity"]):
        decode = _DECODERS.get(encoding)
        if decode is None:
            raise UndecodableBody(
                f"its response body is {encoding}-encoded, which mockai cannot decode "
                f"(it decodes {', '.join(_DECODERS)}): record it again without it"
            )
        body = decode(body)
    return body


def _too_big(encoding: str) -> UndecodableBody:
    return UndecodableBody(
        f"its {encoding}-encoded response body decodes to more than {MAX_DECODED_BYTES >> 20} "
        "MiB, more than any answer of the API: the cassette is damaged or hostile"
    )


def _damaged(encoding: str) -> UndecodableBody:
    return UndecodableBody(
        f"its {encoding} body is damaged or truncated: it does not decode, and is not text "
        "recorded already decoded; record it again"
    )


def _kept_as_recorded(body: bytes, encoding: str, magic: bytes = b"") -> bytes:
    """`body`, which did not decode as `encoding`: kept when it is text (recorded decoded while
    its header was kept, as vcrpy assumes too), refused as damaged otherwise."""
    if magic and body.startswith(magic):
        raise _damaged(encoding)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise _damaged(encoding) from None
    if _CONTROLS.search(body):
        raise _damaged(encoding)
    return body


def _inflate(body: bytes, encoding: str, *wbits: int, magic: bytes = b"") -> bytes:
    for bits in wbits:
        inflater = zlib.decompressobj(bits)
        try:
            out = inflater.decompress(body, MAX_DECODED_BYTES + 1)
        except zlib.error:
            continue
        if len(out) > MAX_DECODED_BYTES:
            raise _too_big(encoding)
        if inflater.eof:  # (what `zlib.decompress` asks too: a whole stream)
            return out
    return _kept_as_recorded(body, encoding, magic)


def _gunzip(body: bytes) -> bytes:
    return _inflate(body, "gzip", zlib.MAX_WBITS | 16, magic=_GZIP_MAGIC)


def _deflate(body: bytes) -> bytes:
    # zlib-wrapped as the RFC says, or raw deflate as some servers send it (httpx reads both).
    return _inflate(body, "deflate", zlib.MAX_WBITS, -zlib.MAX_WBITS)


def _unbrotli(body: bytes) -> bytes:
    brotli = _library("br", ("brotli", "brotlicffi"))
    decompressor = brotli.Decompressor()
    parts: list[bytes] = []
    size = 0
    try:
        for start in range(0, len(body), _BROTLI_STEP):
            part = bytes(decompressor.process(body[start : start + _BROTLI_STEP]))
            size += len(part)
            if size > MAX_DECODED_BYTES:
                raise _too_big("br")
            parts.append(part)
        if not decompressor.is_finished():
            return _kept_as_recorded(body, "br")  # (cut short, or text that is not brotli)
    except brotli.error:
        return _kept_as_recorded(body, "br")
    return b"".join(parts)


def _unzstd(body: bytes) -> bytes:
    zstandard = _library("zstd", ("zstandard",))
    parts: list[bytes] = []
    size = 0
    at = 0  # (an offset: slicing off what was fed would copy the rest at every step)
    try:
        while at < len(body):  # (one frame per decompressor: a body may hold several)
            frame = zstandard.ZstdDecompressor().decompressobj()
            while at < len(body) and not frame.eof:
                step = body[at : at + _ZSTD_STEP]
                at += len(step)
                part = frame.decompress(step)
                size += len(part)
                if size > MAX_DECODED_BYTES:
                    raise _too_big("zstd")
                parts.append(part)
            if not frame.eof:  # (cut short, or text that is not zstd)
                return _kept_as_recorded(body, "zstd", _ZSTD_MAGIC)
            at -= len(frame.unused_data)  # (the next frame's first bytes)
    except zstandard.ZstdError:
        return _kept_as_recorded(body, "zstd", _ZSTD_MAGIC)
    return b"".join(parts)


def _library(encoding: str, modules: tuple[str, ...]) -> Any:
    """The first importable of `modules` (mockai does not depend on them: a body that needs one
    is refused, naming what to install)."""
    for module in modules:
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    raise UndecodableBody(
        f"its response body is {encoding}-encoded and mockai needs the {modules[0]} package to "
        f"decode it: pip install {modules[0]}"
    )


_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": _gunzip,
    "x-gzip": _gunzip,
    "deflate": _deflate,
    "br": _unbrotli,
    "zstd": _unzstd,
}
