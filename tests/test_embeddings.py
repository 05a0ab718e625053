"""Embeddings through the real SDK: the SDK's default base64, floats, dimensions, and retrieval."""

from __future__ import annotations

import math

import openai
import pytest

from mockai import MockServer

MODEL = "text-embedding-3-small"

DOCUMENTS = [
    "Cats are small domesticated felines that purr and love to nap in the sun.",
    "The stock market fell sharply as interest rates rose and investors sold bonds.",
    "Python is a programming language with dynamic typing and a large standard library.",
    "Heavy rain and thunderstorms are expected across the region this weekend.",
]


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_default_base64_equals_float(client: openai.OpenAI) -> None:
    decoded = client.embeddings.create(model=MODEL, input=["hello world", "cats"])
    floats = client.embeddings.create(
        model=MODEL, input=["hello world", "cats"], encoding_format="float"
    )
    assert [d.index for d in decoded.data] == [0, 1]
    for a, b in zip(decoded.data, floats.data, strict=True):
        assert len(a.embedding) == 1536
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)
        assert math.isclose(math.fsum(x * x for x in b.embedding), 1.0, abs_tol=1e-5)
    assert floats.usage.prompt_tokens == floats.usage.total_tokens > 0


def test_dimensions_and_token_inputs(client: openai.OpenAI) -> None:
    short = client.embeddings.create(model="text-embedding-3-large", input="hi", dimensions=256)
    assert len(short.data[0].embedding) == 256
    tokens = client.embeddings.create(
        model=MODEL, input=[[1, 2, 3], [1, 2, 3]], encoding_format="float"
    )
    assert tokens.data[0].embedding == tokens.data[1].embedding


def test_rag_retrieval_finds_the_right_document(client: openai.OpenAI) -> None:
    docs = [d.embedding for d in client.embeddings.create(model=MODEL, input=DOCUMENTS).data]
    queries = {
        "Tell me about cats": 0,
        "Why did the market and bonds fall?": 1,
        "Which programming language has a standard library?": 2,
        "Will there be rain this weekend?": 3,
    }
    for query, expected in queries.items():
        vector = client.embeddings.create(model=MODEL, input=query).data[0].embedding
        ranked = sorted(range(len(docs)), key=lambda i: -_cosine(vector, docs[i]))
        assert ranked[0] == expected, query


@pytest.mark.asyncio
async def test_async(aclient: openai.AsyncOpenAI) -> None:
    result = await aclient.embeddings.create(model=MODEL, input="async")
    assert len(result.data[0].embedding) == 1536


@pytest.mark.parametrize("sent", ["", [], ["ok", ""], [[1], []]])
def test_an_empty_input_is_the_apis_400_without_a_param(
    client: openai.OpenAI, sent: object
) -> None:
    # The API's answer, as the SDK's tracebacks quote it: `'param': None`, `'code': None`.
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL, input=sent)  # type: ignore[arg-type]
    assert caught.value.body == {
        "message": "'$.input' is invalid. Please check the API reference: "
        "https://platform.openai.com/docs/api-reference.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_rag_retrieval_in_chinese_japanese_and_korean(client: openai.OpenAI) -> None:
    # Written without spaces between words (and Korean with its particles on): a run of such
    # characters was one "word", so a question shared no word with its document and retrieval
    # picked at random ("股票市场怎么样" and "股票市场今天大幅下跌": cosine 0.003).
    pairs = {
        "股票市场怎么样": "股票市场今天大幅下跌。",
        "编程语言": "Python是一种编程语言。",
        "法国的首都是哪里": "巴黎是法国的首都。",
        "日本の首都はどこ": "東京は日本の首都です。",
        "可愛い猫": "猫はとても可愛い動物です。",
        "한국의 수도": "서울은 한국의 수도입니다.",
        "고양이에 대해 알려줘": "고양이는 귀여운 동물입니다.",
    }
    documents = list(pairs.values())
    docs = [d.embedding for d in client.embeddings.create(model=MODEL, input=documents).data]
    for query, expected in pairs.items():
        vector = client.embeddings.create(model=MODEL, input=query).data[0].embedding
        ranked = sorted(range(len(docs)), key=lambda i: -_cosine(vector, docs[i]))
        assert documents[ranked[0]] == expected, query
        assert _cosine(vector, docs[ranked[0]]) > 0.15, query


@pytest.mark.parametrize("model", ["embeddings", "prod-vectors"])
def test_dimensions_on_a_model_the_catalog_does_not_know(server: MockServer, model: str) -> None:
    # An Azure deployment is named as its owner likes, and is text-embedding-3 more often than
    # not: refused as ada-002 is, `dimensions` failed here and worked against Azure.
    with openai.AzureOpenAI(
        azure_endpoint=server.base_url, api_key="test", api_version="2024-10-21", max_retries=0
    ) as azure:
        answer = azure.embeddings.create(model=model, input=["cats", "dogs"], dimensions=256)
    assert [len(item.embedding) for item in answer.data] == [256, 256]
    assert math.isclose(math.fsum(x * x for x in answer.data[0].embedding), 1.0, abs_tol=1e-5)
    with openai.OpenAI(base_url=server.url, api_key="test", max_retries=0) as client:
        short = client.embeddings.create(model=model, input="x", dimensions=8)
        assert len(short.data[0].embedding) == 8
        # the API's own refusal stands for the model it knows does not take it
        with pytest.raises(openai.BadRequestError, match="does not support specifying dimensions"):
            client.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=8)


def test_an_ada_002_answer_names_the_model_as_the_api_does(client: openai.OpenAI) -> None:
    # The API's answers to text-embedding-ada-002 say `text-embedding-ada-002-v2` (apps that
    # price or log by the answer's model meet that name); text-embedding-3's their own.
    for encoding in ("float", "base64"):
        ada = client.embeddings.create(
            model="text-embedding-ada-002",
            input="hello",
            encoding_format=encoding,  # type: ignore[arg-type]
        )
        assert ada.model == "text-embedding-ada-002-v2"
    assert client.embeddings.create(model=MODEL, input="hello").model == MODEL
