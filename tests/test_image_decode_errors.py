"""Uploaded pictures that Pillow cannot decode are the API's 400, never a 500: a PNG whose chunk
after IDAT is cut (Pillow raises SyntaxError), a header announcing 20000x20000 pixels (Pillow's
DecompressionBombError, raised before mockai's own 4096x4096 bound could answer), and any
mutation of a valid picture (openai-node retries a 500 twice, with backoff, on a fixture that
can never work)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from strategies import examples

from mockai import MockServer

# A 1x1 PNG whose IEND chunk lost a byte of its length: Pillow reads `END\xae` as a chunk type.
BROKEN_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63"
    "f8ffff3f0005fe02fea7d6a4e30000000049454e44ae426082"
)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _announcing(width: int, height: int) -> bytes:
    """A PNG whose header announces `width` x `height` pixels (and holds almost nothing)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\0\0"))
        + _chunk(b"IEND", b"")
    )


def _valid_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (4, 4), (200, 30, 30, 255)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as made:
        yield made


def test_a_png_with_a_chunk_out_of_place_is_an_invalid_image_file(
    server: MockServer, client: openai.OpenAI
) -> None:
    for model in ("gpt-image-1", "dall-e-2"):
        with pytest.raises(openai.BadRequestError) as refused:
            client.images.edit(model=model, prompt="add a hat", image=("a.png", BROKEN_PNG))
        assert refused.value.code == "invalid_image_file"
        assert refused.value.body["param"] == "image"  # type: ignore[index]
    # (variations over raw HTTP: the SDK's method warns that it is deprecated)
    varied = httpx.post(
        server.url + "/images/variations",
        data={"model": "dall-e-2"},
        files={"image": ("a.png", BROKEN_PNG, "image/png")},
    )
    assert varied.status_code == 400
    assert varied.json()["error"]["code"] == "invalid_image_file"


@pytest.mark.parametrize("side", [5000, 20000, 65535])
def test_a_header_announcing_a_huge_picture_is_too_large_whatever_it_claims(
    client: openai.OpenAI, side: int
) -> None:
    """5000x5000 was refused by mockai's bound; 20000x20000 (past Pillow's own) was a 500."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.edit(
            model="gpt-image-1", prompt="x", image=("big.png", _announcing(side, side))
        )
    assert refused.value.code == "mockai_image_too_large"
    assert "4096x4096" in refused.value.message


@settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_no_mutation_of_a_picture_is_a_server_error(
    server: MockServer, data: st.DataObject
) -> None:
    """Whatever bytes an upload holds (a valid PNG with bytes changed, cut or inserted), the
    answer is the picture's edit or a 400, never a 500."""
    picture = bytearray(_valid_png())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(picture) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            picture[at] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del picture[at : at + data.draw(st.integers(1, 16))]
        else:
            picture[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        if not picture:
            picture = bytearray(b"\x89")
    answer = httpx.post(
        server.url + "/images/edits",
        data={"model": "dall-e-2", "prompt": "x"},
        files={"image": ("a.png", bytes(picture), "image/png")},
        timeout=30,
    )
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        assert answer.json()["error"]["code"] in ("invalid_image_file", "mockai_image_too_large")
