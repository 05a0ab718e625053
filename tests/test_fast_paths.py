"""The hot-path frame builders write exactly the bytes the general (dict + dumps) path writes."""

from __future__ import annotations

import pytest

from mockai.api import chat, responses
from mockai.api.base import ParseContext, RenderContext
from mockai.api.shaping import shape
from mockai.catalog import Catalog
from mockai.pipeline.reply import Choice, Reply
from mockai.wire import jsonbytes

PIECES = ["Hello", " wörld", ' "quoted"', "\n", "\\", " 🙂", "\u2028", "\x00"]


@pytest.mark.parametrize("refusal", [False, True])
def test_chat_delta_bytes_match_the_general_path(refusal: bool) -> None:
    exchange = chat.parse(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True},
        ParseContext({}, Catalog()),
    )
    text = "".join(PIECES)
    reply = Reply(choices=(Choice(refusal=text) if refusal else Choice(content=text),))
    (shaped,) = shape(reply, exchange, b"k" * 32)
    ctx = RenderContext(b"k" * 32, 0)
    for step, piece in enumerate(shaped.pieces):
        general = jsonbytes.dumps([chat._piece_delta(shaped, step, exchange, ctx)])
        assert chat._delta_bytes(shaped, piece) == general


def test_responses_delta_bytes_match_the_general_path() -> None:
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    for piece in PIECES:
        fast, general = responses._Events(), responses._Events()
        fast.emit_delta(
            "response.output_text.delta", jsonbytes.dumps(where)[1:-1], piece, b',"logprobs":[]'
        )
        general.emit("response.output_text.delta", **where, delta=piece, logprobs=[])
        assert fast.frames == general.frames
