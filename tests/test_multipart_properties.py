"""The multipart parser against the encoders clients use (httpx, aiohttp), over arbitrary forms.

Invariants: what httpx or aiohttp encodes, `parse` + `fields` give back (names, texts, file
names, bytes); the SDK's bracket flattening of lists and objects is undone; any bytes at all
either parse or raise MultipartError (never another exception, never a hang).
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
from aiohttp import FormData
from aiohttp.payload import Payload
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._qs import Querystring

from mockai.wire import multipart

# Names and file names as clients write them: quotes, backslashes, angle brackets (`<draft>`:
# an email-address unquoting once took them off) and control characters (percent-encoded by
# httpx) included. Not `%`: HTML5 form encoding writes `"` as `%22` and leaves `%` as it is, so
# a name holding `%22` itself cannot be told from one holding `"`.
NAMES = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="%"),
    min_size=1,
    max_size=12,
)
TEXTS = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)
FILE_NAMES = NAMES | st.sampled_from(["<draft>", "<>", '"quoted"', "C:\\path\\x.txt", "a\\"])
# aiohttp refuses to write control characters into a header at all.
AIOHTTP_NAMES = NAMES.filter(lambda name: name.isprintable())
DATA = st.binary(max_size=300)


@settings(max_examples=60)
@given(
    texts=st.dictionaries(NAMES, TEXTS, max_size=5),
    files=st.dictionaries(NAMES, st.tuples(FILE_NAMES, DATA), max_size=3),
)
def test_httpx_forms_parse_back(texts: dict[str, str], files: dict[str, Any]) -> None:
    files = {name: value for name, value in files.items() if name not in texts and name != "_"}
    texts.pop("_", None)
    request = httpx.Request(
        "POST",
        "http://test/",
        data=texts,
        # (one file at least: httpx sends a form without files url-encoded)
        files={
            name: (filename, data, "application/octet-stream")
            for name, (filename, data) in {**files, "_": ("_", b"")}.items()
        },
    )
    body = request.read()
    boundary = multipart.boundary_of(request.headers["content-type"])
    assert boundary is not None and multipart.sniff_boundary(body) == boundary
    parts = multipart.parse(body, boundary)
    found = {part.name: part for part in parts}
    for name, text in texts.items():
        assert found[name].filename is None
        assert found[name].data.decode() == text
    for name, (filename, data) in files.items():
        assert (found[name].filename, found[name].data) == (filename, data)


@settings(max_examples=40)
@given(files=st.lists(st.tuples(AIOHTTP_NAMES, AIOHTTP_NAMES, DATA), min_size=1, max_size=4))
def test_aiohttp_forms_parse_back(files: list[tuple[str, str, bytes]]) -> None:
    form = FormData(quote_fields=False)  # (quoted, aiohttp percent-encodes every name)
    for name, filename, data in files:
        form.add_field(name, data, filename=filename, content_type="application/octet-stream")
    payload = form()
    assert isinstance(payload, Payload)
    body = _payload_bytes(payload)
    boundary = multipart.boundary_of(payload.content_type)
    assert boundary is not None
    parts = multipart.parse(body, boundary)
    assert [(p.name, p.filename, p.data) for p in parts] == files


def _payload_bytes(payload: Payload) -> bytes:
    import asyncio

    chunks: list[bytes] = []

    class Writer:
        async def write(self, data: bytes) -> None:
            chunks.append(bytes(data))

    asyncio.run(payload.write(Writer()))  # type: ignore[arg-type]
    return b"".join(chunks)


LEAVES = st.text(alphabet="abc xyz0123", min_size=1, max_size=6)
VALUES = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(LEAVES, min_size=1, max_size=3)
        | st.dictionaries(
            st.text(alphabet="klmn", min_size=1, max_size=3), children, min_size=1, max_size=3
        )
    ),
    max_leaves=8,
)


@settings(max_examples=80)
@given(
    st.dictionaries(
        st.text(alphabet="pqrs_", min_size=1, max_size=6), VALUES, min_size=1, max_size=4
    )
)
def test_the_sdks_bracket_flattening_is_undone(value: dict[str, Any]) -> None:
    # The SDK flattens a multipart request's parameters with `qs` in "brackets" form:
    # timestamp_granularities[]=word, expires_after[seconds]=3600.
    items = Querystring().stringify_items(value, array_format="brackets")
    parts = [multipart.Part(name, text.encode()) for name, text in items]
    assert multipart.fields(parts) == value


@settings(max_examples=200)
@given(body=st.binary(max_size=400), boundary=st.sampled_from(["b", "xyz", "----abc123"]))
def test_any_bytes_parse_or_raise_multipart_error(body: bytes, boundary: str) -> None:
    try:
        parts = multipart.parse(body, boundary)
    except multipart.MultipartError:
        return
    fields = multipart.fields(parts)
    assert isinstance(multipart.summarised(fields), dict)


@settings(max_examples=100)
@given(
    st.lists(
        st.sampled_from(
            [
                b"--b\r\n",
                b"--b--",
                b"\r\n",
                b'Content-Disposition: form-data; name="a"',
                b'; filename="f"',
                b"\r\n\r\n",
                b"x",
                b"\r\n--b",
            ]
        ),
        max_size=30,
    )
)
def test_near_miss_forms_parse_or_raise_multipart_error(pieces: list[bytes]) -> None:
    body = b"".join(pieces)
    with contextlib.suppress(multipart.MultipartError):
        multipart.fields(multipart.parse(body, "b"))


def test_a_form_with_too_many_parts_is_refused() -> None:
    part = b'--b\r\nContent-Disposition: form-data; name="a[]"\r\n\r\nx\r\n'
    body = part * (multipart.MAX_PARTS + 1) + b"--b--\r\n"
    try:
        multipart.parse(body, "b")
    except multipart.MultipartError as error:
        assert "more than" in str(error)
    else:
        raise AssertionError("a form of too many parts was accepted")


def test_quoted_and_encoded_file_names() -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="say \\"hi\\".mp3"\r\n\r\n'
        b"1\r\n--b\r\nContent-Disposition: form-data; name=\"f2\"; filename*=UTF-8''%C3%A9t%C3%A9.wav"
        b'\r\n\r\n2\r\n--b\r\nContent-Disposition: form-data; name="f3"; filename="a%22b.png"\r\n'
        b'\r\n3\r\n--b\r\nContent-Disposition: form-data; name="<>"; filename="<draft>"\r\n'
        b'\r\n4\r\n--b\r\nContent-Disposition: form-data; name="\\"q\\""; filename="tab%09.txt"\r\n'
        b"\r\n5\r\n--b\r\nContent-Disposition: form-data; name=\"f6\"; filename*=UTF-8''100%2522.txt"
        b"\r\n\r\n6\r\n--b--"
    )
    parts = multipart.parse(body, "b")
    assert [part.filename for part in parts] == [
        'say "hi".mp3',
        "été.wav",
        'a"b.png',
        "<draft>",  # (not `draft`: brackets are not quotes)
        "tab\t.txt",  # (httpx writes every control character but ESC as its percent code)
        "100%22.txt",  # (RFC 2231's percent codes are decoded once)
    ]
    # A name is decoded as a file name is, and unquoted once: its own quotes stay.
    assert [part.name for part in parts][3:5] == ["<>", '"q"']
