"""The hot-path frame builders write exactly the bytes the general (dict + dumps) path writes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples, texts

from mockai.api import chat, obfuscation, responses
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
    for step, piece in enumerate(shaped.pieces):
        # (no logprobs asked: their key, the last argument, is not read)
        general = jsonbytes.dumps([chat._piece_delta(shaped, step, exchange, b"")])
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


def test_the_shipped_word_list_is_fakers() -> None:
    """Generated prose draws from a copy of Faker's en_US lorem list, so that it needs no Faker
    (slow to import): the copy must stay Faker's list, word for word and in order."""
    from faker import Faker

    from mockai.generate import prose

    assert list(prose.words()) == list(Faker("en_US").get_words_list())


def test_a_plain_server_loads_none_of_the_heavy_libraries() -> None:
    """`mockai serve` starts fast because what most servers never use loads on first use (the
    whole list, through the CLI: tests/test_startup_imports.py)."""
    import subprocess
    import sys

    code = (
        "import sys; from mockai.server import serving; from mockai.config import Config; "
        "from mockai.server.app import create_app; create_app(Config()); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'faker', 'jinja2', 'jsonschema', 'numpy', 'rstr', 'vcr', 'yaml', 'PIL', 'av', "
        "'redis', 'watchfiles'} | "
        "{m for m in sys.modules if m.startswith(('mockai.generate.schema', "
        "'mockai.scenario.', 'mockai.cassette', 'mockai.stores.', 'mockai.pipeline.batch'))} "
        "- {'mockai.scenario.book', 'mockai.stores.kept'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


@given(
    texts(max_size=40),
    st.sampled_from([{}, {"include_usage": True}, {"include_obfuscation": False}]),
)
@settings(max_examples=examples(60))
def test_a_single_choice_streams_the_frames_the_general_path_writes(
    text: str, options: dict[str, bool]
) -> None:
    """One choice, no logprobs: each piece's frame is spliced from bytes made once per stream;
    it must equal the frame the per-piece path closes (usage, obfuscation padding, brace)."""
    body: dict[str, object] = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
    }
    if options:
        body["stream_options"] = options
    exchange = chat.parse(body, ParseContext({}, Catalog()))
    reply = Reply(choices=(Choice(content=text),))
    ctx = RenderContext(b"k" * 32, 0)
    frames = chat.render(reply, exchange, ctx).frames
    (shaped,) = shape(reply, exchange, ctx.key)
    prefix = frames[0][: frames[0].index(b'"choices":') + len(b'"choices":')]
    usage_null = b',"usage":null' if options.get("include_usage") else b""
    padding = obfuscation.padding(exchange, ctx)
    for piece, frame in zip(shaped.pieces, frames[1:], strict=False):
        chunk = prefix + chat._delta_bytes(shaped, piece) + usage_null
        if padding is not None:
            chunk += padding.field(len(chunk) - 6)
        assert frame == chunk + b"}\n\n"
    assert len(frames) >= len(shaped.pieces) + 3
