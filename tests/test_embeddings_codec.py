"""The `/v1/embeddings` codec and the embedding generator, called directly (no server).

Covers every `input` shape, the API's errors (exact `param`), the vectors' properties (unit length,
determinism, lexical similarity good enough for a RAG test), base64 vs float, `dimensions`, spec
conformance, and the real openai SDK reading the rendered bytes over an in-memory transport.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import random
import struct
import subprocess
import sys
import unicodedata
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # `conformance` lives next to this file

import conformance
import embeddings_reference as reference
import httpx2
import openai
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples, texts

from mockai.api import embeddings as codec
from mockai.api.base import ParseContext, RenderContext
from mockai.catalog import Catalog
from mockai.errors import ApiError
from mockai.generate import embeddings as gen
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import Reply
from mockai.wire.outgoing import Body

MODEL = "text-embedding-3-small"
KEY = b"embeddings-codec-test-key"
CATALOG = Catalog()

DOCUMENTS = {
    "cats": "Cats are small domesticated carnivorous mammals. A cat likes to sleep, purr and "
    "hunt mice.",
    "dogs": "Dogs are loyal companions; a dog needs daily walks, training and plenty of exercise.",
    "finance": "Stock markets, bonds and interest rates drive personal finance and investment "
    "returns.",
    "python": "Python is a programming language with dynamic typing, garbage collection and a "
    "large standard library.",
    "weather": "The weather forecast calls for heavy rain, strong winds and cooler temperatures "
    "tomorrow.",
    "cooking": "Baking bread requires flour, water, yeast and salt; knead the dough and let it "
    "rise.",
}
QUERIES = {
    "Tell me about cats": "cats",
    "How do I train my dog?": "dogs",
    "What are good investments for my finances?": "finance",
    "Is it going to rain tomorrow?": "weather",
    "How do I bake bread at home?": "cooking",
    "Which programming language has garbage collection?": "python",
}


# --- helpers -------------------------------------------------------------------------------------


def parse(body: dict[str, Any], catalog: Catalog = CATALOG) -> Exchange:
    return codec.parse(body, ParseContext(headers={}, catalog=catalog))


def answer(body: dict[str, Any], *, seed: int = 0, honor_base64: bool = True) -> dict[str, Any]:
    """Parse, generate (as the fallback generator does) and render; the decoded JSON body."""
    exchange = parse(body)
    reply = gen.reply_for(exchange, CATALOG.get(exchange.model).dimensions, seed)
    return decode(render(reply, exchange, honor_base64=honor_base64))


def render(reply: Reply, exchange: Exchange, *, honor_base64: bool = True) -> Body:
    out = codec.render(reply, exchange, RenderContext(KEY, 1_700_000_000, honor_base64))
    assert isinstance(out, Body)
    assert out.status == 200
    return out


def decode(out: Body) -> dict[str, Any]:
    body = json.loads(out.body)
    assert isinstance(body, dict)
    return body


def vectors(body: dict[str, Any]) -> list[Any]:
    """The `embedding` of every item: float lists, or base64 strings."""
    return [item["embedding"] for item in body["data"]]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


def f32(values: Sequence[float]) -> list[float]:
    return array("f", values).tolist()


def error_of(body: dict[str, Any], catalog: Catalog = CATALOG) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse(body, catalog)
    return caught.value


# --- input shapes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "texts", "prompt_tokens"),
    [
        ("hello world", ("hello world",), 2),
        (["hello", "big world"], ("hello", "big world"), 3),
        ([1212, 318, 257], ("<1212> <318> <257>",), 3),
        ([[1212, 318], [257]], ("<1212> <318>", "<257>"), 3),
        (["hello", [7, 8]], ("hello", "<7> <8>"), 3),
    ],
    ids=["string", "strings", "token-array", "token-arrays", "mixed"],
)
def test_every_input_shape_gives_one_vector_per_input(
    raw: Any, texts: tuple[str, ...], prompt_tokens: int
) -> None:
    exchange = parse({"model": MODEL, "input": raw})
    assert exchange.endpoint is Endpoint.EMBEDDINGS
    assert exchange.inputs == texts
    assert exchange.user_text == "\n".join(texts)
    assert exchange.prompt_tokens == prompt_tokens
    assert exchange.encoding_format == "float"
    assert exchange.dimensions is None
    body = answer({"model": MODEL, "input": raw})
    assert [item["index"] for item in body["data"]] == list(range(len(texts)))
    assert all(len(v) == 1536 for v in vectors(body))
    assert body["usage"] == {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}


def test_body_shape_and_key_order() -> None:
    body = answer({"model": MODEL, "input": "hi there"})
    assert list(body) == ["object", "data", "model", "usage"]
    assert list(body["data"][0]) == ["object", "index", "embedding"]
    assert body["object"] == "list"
    assert body["data"][0]["object"] == "embedding"
    assert body["model"] == MODEL


def test_token_arrays_embed_like_words() -> None:
    exchange = parse({"model": MODEL, "input": [[5, 6, 7], [5, 6, 7], [7, 6, 5], [9]]})
    got = gen.reply_for(exchange, 1536, 0).embeddings
    assert got is not None
    assert list(got[0]) == gen.embed_tokens([5, 6, 7], 1536, 0)
    assert list(got[0]) == list(got[1])
    # Same bag of tokens in another order: very close but not identical; no shared token: far.
    assert 0.8 < cosine(got[0], got[2]) < 1.0
    assert abs(cosine(got[0], got[3])) < 0.2


def test_a_model_the_catalog_only_guesses_at_is_accepted() -> None:
    # (A chat model the catalog knows is the API's 403: tests/test_model_endpoints.py.)
    body = answer({"model": "my-model", "input": "hello"})
    assert body["model"] == "my-model"
    assert len(vectors(body)[0]) == 1536


def test_large_model_has_3072_dimensions() -> None:
    body = answer({"model": "text-embedding-3-large", "input": "hello"})
    assert len(vectors(body)[0]) == 3072


# --- errors --------------------------------------------------------------------------------------

INVALID_INPUT = (
    "'$.input' is invalid. Please check the API reference: "
    "https://platform.openai.com/docs/api-reference."
)


@pytest.mark.parametrize(
    ("body", "param", "code", "message"),
    [
        ({"model": MODEL, "input": ""}, None, None, INVALID_INPUT),
        ({"model": MODEL, "input": []}, None, None, INVALID_INPUT),
        ({"model": MODEL, "input": ["ok", ""]}, None, None, INVALID_INPUT),
        ({"model": MODEL, "input": [[1], []]}, None, None, INVALID_INPUT),
        (
            {"model": MODEL, "input": ["ok", 3]},
            "input[1]",
            "invalid_type",
            (
                "Invalid type for 'input[1]': expected one of a string or an array, but got an "
                "integer instead."
            ),
        ),
        (
            {"model": MODEL, "input": [[1, "x"]]},
            "input[0][1]",
            "invalid_type",
            "Invalid type for 'input[0][1]': expected an integer, but got a string instead.",
        ),
        (
            {"model": MODEL, "input": ["a"] * 2049},
            "input",
            "array_above_max_length",
            (
                "Invalid 'input': array too long. Expected an array with maximum length 2048, but "
                "got an array with length 2049 instead."
            ),
        ),
        (
            {"model": MODEL, "input": 5},
            "input",
            "invalid_type",
            (
                "Invalid type for 'input': expected one of a string or an array, but got an "
                "integer instead."
            ),
        ),
        ({"model": MODEL}, "input", "missing_required_parameter", None),
        ({"input": "hi"}, None, None, "you must provide a model parameter"),
        ({"model": MODEL, "input": "hi", "encoding_format": "hex"}, "encoding_format", None, None),
        (
            {"model": "text-embedding-ada-002", "input": "hi", "dimensions": 256},
            "dimensions",
            None,
            "This model does not support specifying dimensions.",
        ),
        (
            {"model": MODEL, "input": "hi", "dimensions": 0},
            "dimensions",
            "integer_below_min_value",
            None,
        ),
        (
            {"model": MODEL, "input": "hi", "dimensions": 1537},
            "dimensions",
            "integer_above_max_value",
            (
                "Invalid 'dimensions': integer above maximum value. Expected a value <= 1536, but "
                "got 1537 instead."
            ),
        ),
        (
            {"model": MODEL, "input": "hi", "dimensions": "256"},
            "dimensions",
            "invalid_type",
            None,
        ),
    ],
    ids=[
        "empty-string",
        "empty-list",
        "empty-string-in-list",
        "empty-token-array",
        "number-in-list",
        "string-in-token-array",
        "too-many-inputs",
        "number",
        "no-input",
        "no-model",
        "bad-encoding",
        "dimensions-unsupported",
        "dimensions-zero",
        "dimensions-too-large",
        "dimensions-string",
    ],
)
def test_bad_requests_get_the_apis_400(
    body: dict[str, Any], param: str | None, code: str | None, message: str | None
) -> None:
    error = error_of(body)
    assert error.status == 400
    assert error.type == "invalid_request_error"
    assert error.param == param
    if code is not None:
        assert error.code == code
    if message is not None:
        assert error.message == message


def test_invalid_encoding_lists_the_supported_values() -> None:
    error = error_of({"model": MODEL, "input": "hi", "encoding_format": "hex"})
    assert error.code == "invalid_value"
    assert error.message.startswith("Invalid value: 'hex'. Supported values are: 'float'")


def test_an_input_longer_than_the_context_is_refused() -> None:
    error = error_of({"model": MODEL, "input": [[1] * 8193]})
    assert error.status == 400
    assert error.message.startswith("This model's maximum context length is 8192 tokens")
    assert "8193 in your prompt" in error.message


def test_more_than_300k_tokens_per_request_is_refused() -> None:
    error = error_of({"model": MODEL, "input": [[1] * 8000] * 38})
    assert error.status == 400
    assert error.type == error.code == "max_tokens_per_request"
    assert error.message == "Requested 304000 tokens, max 300000 tokens per request"
    assert error.param is None


def test_restricted_catalog_refuses_unknown_models() -> None:
    error = error_of({"model": "nope-embed", "input": "hi"}, Catalog(["text-embedding-3-small"]))
    assert error.status == 404
    assert error.code == "model_not_found"


def test_null_optional_fields_mean_not_given() -> None:
    exchange = parse({"model": MODEL, "input": "hi", "encoding_format": None, "dimensions": None})
    assert exchange.encoding_format == "float"
    assert exchange.dimensions is None


# --- vector properties ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["hello world", "", "the of and a", "!!!", "ünïcödé 漢字 text", "x" * 5000]
)
@pytest.mark.parametrize("dimensions", [1536, 3072, 256, 1])
def test_vectors_are_unit_length_float32(text: str, dimensions: int) -> None:
    vector = gen.embed(text, dimensions, 7)
    assert len(vector) == dimensions
    assert abs(math.hypot(*vector) - 1.0) < 1e-6
    assert vector == f32(vector)  # every value is exactly a float32
    if dimensions > 1:
        assert len(set(vector)) > dimensions // 2  # dense, like a real embedding


def test_vectors_are_deterministic_and_depend_on_the_seed() -> None:
    first = gen.embed("The quick brown fox", 1536, 3)
    assert gen.embed("The quick brown fox", 1536, 3) == first
    assert gen.embed("The quick brown fox", 1536, 4) != first
    other_seed = gen.embed("The quick brown fox", 1536, 4)
    # The seed changes the vector's space, so vectors from different seeds are unrelated.
    assert abs(cosine(first, other_seed)) < 0.2


def test_vectors_are_the_same_in_another_process() -> None:
    code = (
        "import hashlib, struct; from mockai.generate.embeddings import embed; "
        "v = embed('Tell me about cats', 1536, 11); "
        "print(hashlib.sha256(struct.pack('<%df' % len(v), *v)).hexdigest())"
    )
    root = Path(__file__).parent.parent
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    here = gen.embed("Tell me about cats", 1536, 11)
    expected = hashlib.sha256(struct.pack(f"<{len(here)}f", *here)).hexdigest()
    assert done.stdout.strip() == expected


def test_same_text_in_two_requests_gives_the_same_vector() -> None:
    one = vectors(answer({"model": MODEL, "input": ["alpha", "Tell me about cats"]}))[1]
    two = vectors(answer({"model": MODEL, "input": "Tell me about cats"}))[0]
    assert one == two


@pytest.mark.parametrize("dimensions", [None, 512, 256])
def test_rag_retrieval_ranks_the_right_document_first(dimensions: int | None) -> None:
    extra = {} if dimensions is None else {"dimensions": dimensions}
    docs = vectors(answer({"model": MODEL, "input": list(DOCUMENTS.values()), **extra}))
    names = list(DOCUMENTS)
    for query, wanted in QUERIES.items():
        q = vectors(answer({"model": MODEL, "input": query, **extra}))[0]
        ranked = sorted(names, key=lambda name: -cosine(q, docs[names.index(name)]))
        assert ranked[0] == wanted, (query, ranked)
        best = cosine(q, docs[names.index(wanted)])
        runner_up = cosine(q, docs[names.index(ranked[1])])
        assert best - runner_up > 0.1, (query, best, runner_up)


def test_similarity_grows_with_word_overlap() -> None:
    base = gen.embed("the red car drives fast on the highway", 1536, 0)
    candidates = [
        "the red car drives fast on the highway!",  # same words
        "a red car drives fast",  # 4 shared content words
        "the red car was parked",  # 2 shared
        "a red umbrella",  # 1 shared
        "bananas grow in tropical climates",  # none
    ]
    sims = [cosine(base, gen.embed(text, 1536, 0)) for text in candidates]
    assert sims == sorted(sims, reverse=True), sims
    assert sims[0] > 0.85
    assert abs(sims[-1]) < 0.15


def test_stemming_and_trigrams_bring_word_forms_together() -> None:
    cat = gen.embed("cat", 1536, 0)
    assert cosine(cat, gen.embed("Cats!", 1536, 0)) > 0.8
    assert cosine(gen.embed("running", 1536, 0), gen.embed("runs", 1536, 0)) > 0.8
    assert cosine(gen.embed("finance", 1536, 0), gen.embed("financial", 1536, 0)) > 0.05
    assert gen.words("The cats were running and jumped over boxes") == [
        "cat",
        "run",
        "jump",
        "box",
    ]


def test_unrelated_texts_are_near_orthogonal() -> None:
    pairs = [
        ("quantum physics lecture", "chocolate cake recipe"),
        ("mountain hiking trails", "database index tuning"),
        ("violin concerto", "tax deduction rules"),
    ]
    for left, right in pairs:
        assert abs(cosine(gen.embed(left, 1536, 0), gen.embed(right, 1536, 0))) < 0.15


# --- encodings -----------------------------------------------------------------------------------


def test_base64_decodes_to_exactly_the_float_form() -> None:
    request = {"model": MODEL, "input": ["Tell me about cats", "dogs"]}
    floats = vectors(answer(request))
    encoded = vectors(answer({**request, "encoding_format": "base64"}))
    for as_floats, as_text in zip(floats, encoded, strict=True):
        assert isinstance(as_text, str)
        raw = base64.b64decode(as_text)
        decoded = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        assert decoded == f32(as_floats)  # the 9-digit float text round-trips every float32
        assert gen.from_base64(as_text) == decoded


def test_base64_of_known_values() -> None:
    # The wire contract's example: 0.5, -1.25, 3.0.
    assert gen.to_base64([0.5, -1.25, 3.0]) == "AAAAPwAAoL8AAEBA"
    assert gen.from_base64("AAAAPwAAoL8AAEBA") == [0.5, -1.25, 3.0]


def test_base64_can_be_switched_off() -> None:
    body = answer({"model": MODEL, "input": "hi", "encoding_format": "base64"}, honor_base64=False)
    assert isinstance(vectors(body)[0], list)


def test_floats_are_written_compactly() -> None:
    out = render(*_generated({"model": MODEL, "input": "Tell me about cats"}))
    numbers = out.body.split(b'"embedding":[', 1)[1].split(b"]", 1)[0].split(b",")
    assert len(numbers) == 1536
    # At most 9 significant digits (what float32 needs), as in "-0.00931223296" or "1.5e-05".
    digits = [n.lstrip(b"-").split(b"e")[0].replace(b".", b"").lstrip(b"0") for n in numbers]
    assert max(len(d) for d in digits) <= 9


def _generated(body: dict[str, Any]) -> tuple[Reply, Exchange]:
    exchange = parse(body)
    return gen.reply_for(exchange, 1536, 0), exchange


# --- dimensions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 64, 256, 1024])
def test_dimensions_truncate_and_renormalise(size: int) -> None:
    full = vectors(answer({"model": MODEL, "input": "Tell me about cats"}))[0]
    cut = vectors(answer({"model": MODEL, "input": "Tell me about cats", "dimensions": size}))[0]
    assert len(cut) == size
    assert abs(math.hypot(*cut) - 1.0) < 1e-6
    norm = math.hypot(*full[:size])
    assert all(abs(a - b / norm) < 1e-6 for a, b in zip(cut, full[:size], strict=True))


def test_dimensions_equal_to_native_change_nothing() -> None:
    full = vectors(answer({"model": MODEL, "input": "hello"}))[0]
    same = vectors(answer({"model": MODEL, "input": "hello", "dimensions": 1536}))[0]
    assert same == full


# --- scripted vectors ----------------------------------------------------------------------------


def test_scripted_vectors_are_sent_as_given_and_cycled() -> None:
    exchange = parse({"model": MODEL, "input": ["a", "b", "c"]})
    body = decode(render(Reply(embeddings=((0.1, 0.2), (0.3, -0.4))), exchange))
    assert vectors(body) == [[0.1, 0.2], [0.3, -0.4], [0.1, 0.2]]
    assert b"[0.1,0.2]" in render(Reply(embeddings=((0.1, 0.2),)), exchange).body


def test_scripted_vectors_are_cut_to_dimensions() -> None:
    exchange = parse({"model": MODEL, "input": "a", "dimensions": 2})
    body = decode(render(Reply(embeddings=((3.0, 4.0, 12.0),)), exchange))
    assert f32(vectors(body)[0]) == f32([0.6, 0.8])


def test_a_reply_without_vectors_gets_generated_ones() -> None:
    exchange = parse({"model": MODEL, "input": "Tell me about cats"})
    body = decode(render(Reply(), exchange))
    assert f32(vectors(body)[0]) == gen.embed("Tell me about cats", 1536, 0)


def test_non_finite_scripted_values_are_refused() -> None:
    exchange = parse({"model": MODEL, "input": "a"})
    with pytest.raises(ValueError, match="finite"):
        render(Reply(embeddings=((0.1, math.nan),)), exchange)


def test_usage_override() -> None:
    exchange = parse({"model": MODEL, "input": "a"})
    body = decode(render(Reply(usage={"prompt_tokens": 42}), exchange))
    assert body["usage"] == {"prompt_tokens": 42, "total_tokens": 42}


# --- conformance and the SDK ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["hello", ["a", "b"], [1, 2, 3], [[1], [2, 3]]], ids=["str", "strs", "tok", "toks"]
)
def test_float_bodies_validate_against_the_spec(raw: Any) -> None:
    conformance.validate("CreateEmbeddingResponse", answer({"model": MODEL, "input": raw}))
    cut = answer({"model": MODEL, "input": raw, "dimensions": 8})
    conformance.validate("CreateEmbeddingResponse", cut)


def sdk(seen: list[dict[str, Any]]) -> openai.OpenAI:
    """The real SDK, answered in memory by parse -> generate -> render."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        seen.append(body)
        exchange = parse(body)
        reply = gen.reply_for(exchange, CATALOG.get(exchange.model).dimensions, 0)
        out = render(reply, exchange)
        return httpx2.Response(
            out.status, content=out.body, headers={"content-type": "application/json"}
        )

    transport = httpx2.MockTransport(handler)
    return openai.OpenAI(
        base_url="http://test/v1", api_key="x", http_client=httpx2.Client(transport=transport)
    )


def test_the_sdk_decodes_base64_to_the_float_form() -> None:
    seen: list[dict[str, Any]] = []
    client = sdk(seen)
    texts = ["Tell me about cats", "How do I train my dog?"]
    default = client.embeddings.create(model=MODEL, input=texts)
    explicit = client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    assert seen[0]["encoding_format"] == "base64"  # the SDK's default request
    assert seen[1]["encoding_format"] == "float"
    assert len(default.data) == 2
    for a, b in zip(default.data, explicit.data, strict=True):
        assert a.index == b.index
        assert isinstance(a.embedding, list)
        assert a.embedding == f32(b.embedding)
    assert default.usage.prompt_tokens == explicit.usage.prompt_tokens > 0
    assert default.model == MODEL


def test_the_sdk_reads_token_inputs_and_dimensions() -> None:
    client = sdk([])
    result = client.embeddings.create(model=MODEL, input=[[1, 2], [3]], dimensions=64)
    assert [len(item.embedding) for item in result.data] == [64, 64]
    assert result.usage.total_tokens == 3


# --- the vectors of the pure-Python generator this replaced -------------------------------------

_REFERENCE_WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "while",
    "quarterly",
    "revenue",
    "churn",
    "hiring",
    "region",
    "running",
    "dogs",
    "houses",
    "financial",
    "finance",
    "report",
    "alpha",
    "beta",
    "Paris",
    "weather",
    "tokyo",
    "naïve",
    "café",
    "日本語",
]


def _reference_texts() -> list[str]:
    rng = random.Random(5)
    texts = ["Tell me about cats", "", "the a an", "x" * 300, "e\u0301 \U0001f468\u200d\U0001f469"]
    for _ in range(60):
        words = [
            rng.choice(_REFERENCE_WORDS) + (str(rng.randint(0, 9999)) if rng.random() < 0.2 else "")
            for _ in range(rng.randint(1, 40))
        ]
        texts.append(" ".join(words))
    return texts


@pytest.mark.parametrize(("dimensions", "seed"), [(1536, 0), (3072, 7), (256, 0), (7, 3)])
def test_vectors_are_exactly_the_pure_python_generators(dimensions: int, seed: int) -> None:
    """numpy does the arithmetic now, in the same order: every float32 value is unchanged (so
    similarity is too), for text and for token arrays."""
    for text in _reference_texts():
        assert gen.embed(text, dimensions, seed) == reference.embed(text, dimensions, seed), text
    for ids in ([1, 2, 3], [5] * 10, list(range(200))):
        assert gen.embed_tokens(ids, dimensions, seed) == reference.embed_tokens(
            ids, dimensions, seed
        )


@given(texts(max_size=30))
@settings(max_examples=examples(40))
def test_vectors_equal_the_pure_python_generators_for_any_text(text: str) -> None:
    assert gen.embed(text, 1536, 0) == reference.embed(text, 1536, 0)


def test_generated_floats_are_the_shortest_text_of_each_float32() -> None:
    out = render(*_generated({"model": MODEL, "input": "Tell me about cats"}))
    numbers = out.body.split(b'"embedding":[', 1)[1].split(b"]", 1)[0].split(b",")
    for text in numbers:
        value = f32([float(text)])[0]
        # no shorter text (fewer significant digits) reads back as the same float32
        digits = len(text.lstrip(b"-").split(b"e")[0].replace(b".", b"").strip(b"0"))
        if digits > 1:
            assert f32([float(f"{value:.{digits - 2}e}")])[0] != value


@pytest.mark.parametrize(("dimensions", "seed"), [(1536, 0), (3072, 7), (7, 3)])
def test_many_inputs_in_one_request_each_get_the_vector_they_get_alone(
    dimensions: int, seed: int
) -> None:
    """A request's inputs are embedded together, in blocks of rows sized to the vectors; where
    a block ends changes no value: every input gets exactly its pure-Python reference vector,
    in order (64 texts and 40 token arrays span several blocks at 1536 and 3072 dimensions;
    at 7, one block holds them all)."""
    texts = [text for text in _reference_texts() if text]  # (the API refuses an empty input)
    reply = gen.reply_for(parse({"model": MODEL, "input": texts}), dimensions, seed)
    assert reply.embeddings is not None
    made = [list(map(float, vector)) for vector in reply.embeddings]
    assert made == [reference.embed(text, dimensions, seed) for text in texts]
    arrays = [[index % 7, index, 99] * (1 + index % 3) for index in range(40)]
    reply = gen.reply_for(parse({"model": MODEL, "input": arrays}), dimensions, seed)
    assert reply.embeddings is not None
    made = [list(map(float, vector)) for vector in reply.embeddings]
    assert made == [reference.embed_tokens(ids, dimensions, seed) for ids in arrays]


_TOKEN_ARRAY = st.lists(st.integers(0, 200_000), min_size=1, max_size=12)


@given(
    st.one_of(
        st.lists(texts(min_size=1, max_size=30).filter(bool), min_size=1, max_size=25),
        st.lists(_TOKEN_ARRAY, min_size=2, max_size=25),
    ),
    st.sampled_from([256, 1536, 3072]),
)
@settings(max_examples=examples(25))
def test_inputs_embedded_together_equal_each_embedded_alone(
    batch: list[str] | list[list[int]], dimensions: int
) -> None:
    """Whatever the texts or token arrays and however many (blocks of 60, 10 and 5 rows at 256,
    1536 and 3072 dimensions), a request's vectors are exactly those its inputs get one by
    one, in order."""
    reply = gen.reply_for(parse({"model": MODEL, "input": batch}), dimensions, 0)
    assert reply.embeddings is not None
    alone = [
        gen.embed(item, dimensions, 0)
        if isinstance(item, str)
        else gen.embed_tokens(item, dimensions, 0)
        for item in batch
    ]
    assert [list(map(float, vector)) for vector in reply.embeddings] == alone


@given(texts(), st.sampled_from(["NFC", "NFD"]))
@settings(max_examples=examples(50))
def test_canonically_equal_texts_get_the_same_vector(text: str, form: str) -> None:
    """What a text says, not how its code points spell it: the same text composed (NFC) or
    decomposed (NFD, as macOS names and pasted text come) is one vector."""
    assert gen.embed(unicodedata.normalize(form, text), 256, 0) == gen.embed(text, 256, 0)


def test_a_decomposed_accent_keeps_its_word_for_retrieval() -> None:
    composed, decomposed = "Café au lait recipe", "Cafe\u0301 au lait recipe"
    assert composed != decomposed
    assert gen.embed(decomposed, 1536, 7) == gen.embed(composed, 1536, 7)
