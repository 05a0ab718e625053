"""Generated answers depend on what the request asks, whatever came before (hunt fixes).

- A Responses request continuing a stored response or conversation is answered in the context
  the server holds now, never with an answer cached from another chain or from before a reset.
- Numbers: `1`, `1.0` and `1e0` ask the same (Python's SDK writes floats, JavaScript's ints).
- A schema's property order: the answer follows the request's own order, and two orders are two
  requests (the values do not come from whichever order was asked first).
"""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from conformance import checked_server
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mockai import MockServer
from mockai.pipeline import fingerprint

SCHEMA_A = (
    'Answer in JSON matching {"type": "object", "properties": {"city": {"type": "string"}}, '
    '"required": ["city"]}'
)
SCHEMA_B = (
    'Answer in JSON matching {"type": "object", "properties": {"name": {"type": "string"}, '
    '"age": {"type": "integer"}}, "required": ["name", "age"]}'
)
JSON_MODE = {"format": {"type": "json_object"}}
# One client for the module (a new one loads its TLS context: ~60 ms a request).
HTTP = httpx.Client(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    HTTP.close()


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with checked_server(seed=7) as running:
        yield running


@pytest.fixture(scope="module")
def other() -> Iterator[MockServer]:
    """A second server with the same seed: what a request gets when nothing came before it."""
    with checked_server(seed=7) as running:
        yield running


def _post(server: MockServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = HTTP.post(f"{server.url}{path}", json=body)
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def _text(response: dict[str, Any]) -> str:
    text: str = response["output"][-1]["content"][0]["text"]
    return text


# --- 1. stored context -------------------------------------------------------------------------


def _chain(server: MockServer, schema: str) -> str:
    """The follow-up's answer in a chain whose first turn holds `schema`."""
    first = _post(
        server,
        "/responses",
        {
            "model": "gpt-4o-mini",
            "input": [
                {"role": "developer", "content": schema},
                {"role": "user", "content": "Hello, reply in json"},
            ],
            "text": JSON_MODE,
        },
    )
    follow_up = {
        "model": "gpt-4o-mini",
        "previous_response_id": first["id"],
        "input": "Give me the json now",
        "text": JSON_MODE,
    }
    return _text(_post(server, "/responses", follow_up))


def _in_conversation(server: MockServer, conversation: str) -> str:
    body = {
        "model": "gpt-4o-mini",
        "conversation": conversation,
        "input": "Give me the json now",
        "text": JSON_MODE,
    }
    return _text(_post(server, "/responses", body))


def _developer(schema: str) -> dict[str, Any]:
    return {"type": "message", "role": "developer", "content": schema}


def test_a_chain_is_answered_in_its_own_context(server: MockServer, other: MockServer) -> None:
    assert json.loads(_chain(server, SCHEMA_A)).keys() == {"city"}
    # The same follow-up in another chain: its own schema, as on a server that saw no chain A.
    answer = _chain(server, SCHEMA_B)
    assert json.loads(answer).keys() == {"name", "age"}
    assert answer == _chain(other, SCHEMA_B)


def test_a_conversation_is_answered_with_the_items_it_holds_now(server: MockServer) -> None:
    created = _post(server, "/conversations", {"items": [_developer(SCHEMA_A)]})
    assert json.loads(_in_conversation(server, created["id"])).keys() == {"city"}
    _post(server, f"/conversations/{created['id']}/items", {"items": [_developer(SCHEMA_B)]})
    # The same body again: the conversation's latest schema, not the answer given before.
    assert json.loads(_in_conversation(server, created["id"])).keys() == {"name", "age"}


def test_after_a_reset_a_conversation_with_an_old_id_is_answered_afresh(
    server: MockServer, other: MockServer
) -> None:
    def conversation_holding(running: MockServer, schema: str) -> str:
        made: str = _post(running, "/conversations", {})["id"]  # (the same id after a reset)
        _post(running, f"/conversations/{made}/items", {"items": [_developer(schema)]})
        return made

    reset = server.url_for("/_mockai/reset")
    HTTP.post(reset).raise_for_status()
    before = conversation_holding(server, SCHEMA_A)
    assert json.loads(_in_conversation(server, before)).keys() == {"city"}
    HTTP.post(reset).raise_for_status()
    after = conversation_holding(server, SCHEMA_B)
    assert after == before
    answer = _in_conversation(server, after)
    assert json.loads(answer).keys() == {"name", "age"}
    assert _in_conversation(other, conversation_holding(other, SCHEMA_B)) == answer


# --- 2. whole numbers ----------------------------------------------------------------------------

CHAT = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Describe a river"}],'


@pytest.mark.parametrize("written", [b"1.0", b"1e0", b"1.000", b"10e-1"])
def test_a_whole_number_asks_the_same_however_written(server: MockServer, written: bytes) -> None:
    def content(temperature: bytes) -> str:
        reply = HTTP.post(
            f"{server.url}/chat/completions",
            content=CHAT + b'"temperature":' + temperature + b"}",
            headers={"content-type": "application/json"},
        )
        assert reply.status_code == 200, reply.text
        text: str = reply.json()["choices"][0]["message"]["content"]
        return text

    assert content(written) == content(b"1")  # Python's SDK writes 1.0, JavaScript's 1
    assert content(b"1.5") != content(b"1")


def _wav() -> bytes:
    """One second of silence, 8 kHz mono."""
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\0\0" * 8000)
    return out.getvalue()


def test_a_form_number_asks_the_same_written_0_or_0_0(server: MockServer) -> None:
    recording = _wav()

    def transcript(temperature: str) -> str:
        reply = HTTP.post(
            f"{server.url}/audio/transcriptions",
            data={"model": "whisper-1", "temperature": temperature},
            files={"file": ("a.wav", recording, "audio/wav")},
        )
        assert reply.status_code == 200, reply.text
        text: str = reply.json()["text"]
        return text

    # The Python SDK sends `0.0`, openai-node `0`: a form's digits read as an int, `0.0` as a float.
    assert transcript("0.0") == transcript("0") == transcript("-0.0")


# (Text holding ".0" too: the keys look for floats only in bodies whose JSON holds it.)
TEXT = st.text(alphabet="ab.0", max_size=4)
# (and the keywords whose order in a schema counts: `properties`, data)
NAMES_IN_SCHEMAS = TEXT | st.sampled_from(["properties", "enum", "const"])
JSON_SCALARS = st.none() | st.booleans() | TEXT | st.integers(-(2**53), 2**53)
JSON_VALUES = st.recursive(
    JSON_SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(NAMES_IN_SCHEMAS, inner, max_size=3)
    ),
    max_leaves=10,
)
BODIES = st.dictionaries(st.sampled_from(["model", "messages", "tools", "x"]), JSON_VALUES)


def _floated(value: Any, draw: Callable[[st.SearchStrategy[bool]], bool]) -> Any:
    """`value` with some of its ints written as floats (and some zeros as -0.0)."""
    if isinstance(value, int) and not isinstance(value, bool) and draw(st.booleans()):
        return -0.0 if value == 0 and draw(st.booleans()) else float(value)
    if isinstance(value, dict):
        return {name: _floated(item, draw) for name, item in value.items()}
    if isinstance(value, list):
        return [_floated(item, draw) for item in value]
    return value


NUMBERS = st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=60)
@given(
    body=BODIES,
    data=st.data(),
    endpoint=st.sampled_from(["chat", "transcriptions"]),
    fraction=st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer()),
    other=NUMBERS,
)
def test_whole_numbers_written_as_floats_get_the_same_keys(
    body: dict[str, Any], data: st.DataObject, endpoint: str, fraction: float, other: float
) -> None:
    def keys(asked: dict[str, Any]) -> tuple[bytes, bytes]:
        return fingerprint.request_keys(7, endpoint, asked)

    # (and numbers in a schema's data, whose objects' key order the keys look at)
    constant = data.draw(JSON_VALUES)
    schema = {"const": constant, "properties": {"p": {"enum": [constant]}}}
    body = {**body, "tools": [{"type": "function", "parameters": schema}]}
    floated = _floated(body, data.draw)
    assert keys(floated) == keys(body)
    # (`n` is a presentation field: the exact key sees it)
    assert keys({**floated, "n": 2.0}) == keys({**body, "n": 2})
    # A number that is not whole is not taken for another.
    assume(fraction != other)
    assert keys({**floated, "x": fraction})[0] != keys({**body, "x": other})[0]


# --- 3. property order ---------------------------------------------------------------------------

PERSON = {
    "name": {"type": "string"},
    "age": {"type": "integer"},
    "city": {"type": "string"},
    "email": {"type": "string", "format": "email"},
}


def _object(order: list[str], kinds: dict[str, Any] = PERSON) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: kinds[name] for name in order},
        "required": sorted(order),  # (the same list whatever the order of `properties`)
        "additionalProperties": False,
    }


def _structured(server: MockServer, order: list[str], kinds: dict[str, Any] = PERSON) -> str:
    schema = {"name": "p", "strict": True, "schema": _object(order, kinds)}
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "a person"}],
        "response_format": {"type": "json_schema", "json_schema": schema},
    }
    content: str = _post(server, "/chat/completions", body)["choices"][0]["message"]["content"]
    return content


def _arguments(server: MockServer, order: list[str]) -> str:
    tool = {"type": "function", "function": {"name": "f", "parameters": _object(order)}}
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "weather for a person"}],
        "tools": [tool],
        "tool_choice": "required",
    }
    message = _post(server, "/chat/completions", body)["choices"][0]["message"]
    arguments: str = message["tool_calls"][0]["function"]["arguments"]
    return arguments


FORWARD = ["name", "age", "city", "email"]
BACKWARD = ["email", "city", "age", "name"]


@pytest.mark.parametrize("ask", [_structured, _arguments], ids=["response_format", "tool"])
def test_a_schema_is_answered_in_its_own_order_whatever_came_first(
    server: MockServer, other: MockServer, ask: Callable[[MockServer, list[str]], str]
) -> None:
    forward_first, backward_then = ask(server, FORWARD), ask(server, BACKWARD)
    backward_first, forward_then = ask(other, BACKWARD), ask(other, FORWARD)
    assert list(json.loads(backward_then)) == BACKWARD
    assert list(json.loads(forward_then)) == FORWARD
    assert (forward_first, backward_then) == (forward_then, backward_first)


NAMES = st.lists(
    st.text(alphabet="abcdefgh", min_size=1, max_size=5), min_size=2, max_size=5, unique=True
)
KINDS = st.sampled_from([{"type": "string"}, {"type": "integer"}, {"type": "boolean"}])


@settings(max_examples=10, deadline=None)
@given(names=NAMES, data=st.data())
def test_each_order_of_a_schema_gets_its_own_answer_in_its_order(
    server: MockServer, other: MockServer, names: list[str], data: st.DataObject
) -> None:
    kinds = {name: data.draw(KINDS) for name in names}
    shuffled = data.draw(st.permutations(names))
    first = _structured(server, names, kinds), _structured(server, shuffled, kinds)
    second = _structured(other, shuffled, kinds), _structured(other, names, kinds)
    assert first == second[::-1]
    assert list(json.loads(first[0])) == names
    assert list(json.loads(first[1])) == shuffled


@settings(max_examples=60)
@given(names=NAMES, data=st.data())
def test_property_order_counts_in_the_key_and_other_field_order_does_not(
    names: list[str], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(names))
    kinds = {name: {"type": "string"} for name in names}
    format_ = {"type": "json_schema", "json_schema": {"name": "p", "schema": _object(names, kinds)}}
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": format_,
    }
    reordered = {name: body[name] for name in reversed(body)}
    reshuffled = {
        **body,
        "response_format": {
            **format_,
            "json_schema": {"name": "p", "schema": _object(shuffled, kinds)},
        },
    }

    def key(asked: dict[str, Any]) -> bytes:
        return fingerprint.request_keys(7, "chat", asked)[0]

    assert key(reordered) == key(body)
    assert (key(reshuffled) == key(body)) == (shuffled == names)
    # An object a schema holds as data is answered as written: its key order counts too.
    constant = {name: index for index, name in enumerate(names)}
    same = {name: constant[name] for name in shuffled}
    with_const = {**body, "tools": [{"type": "function", "parameters": {"const": constant}}]}
    with_same = {**body, "tools": [{"type": "function", "parameters": {"const": same}}]}
    assert (key(with_const) == key(with_same)) == (shuffled == names)


# --- batches: the output file --------------------------------------------------------------------


def _batch_output(server: MockServer) -> str:
    client = openai.OpenAI(base_url=server.url, api_key="sk-test", http_client=HTTP)
    lines = [
        {
            "custom_id": f"line-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"{n}"}]},
        }
        for n in range(3)
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    upload = client.files.create(file=("lines.jsonl", data), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    for _ in range(100):  # (each retrieval moves the batch on)
        batch = client.batches.retrieve(batch.id)
        if batch.status == "completed":
            break
    assert batch.status == "completed" and batch.output_file_id is not None
    return client.files.content(batch.output_file_id).text


def test_a_batch_output_file_is_the_same_bytes_on_a_fresh_server_with_the_seed() -> None:
    """Each line's `request_id` in the output file was the random one of an `x-request-id`
    header, so the file differed on every run, where docs/media.md says a batch's ids are
    reproducible for the seed (a test comparing it with a saved copy failed each time)."""
    with MockServer(seed=7, quiet=True) as first, MockServer(seed=7, quiet=True) as second:
        output = _batch_output(first)
        assert output == _batch_output(second)
        first.reset()
        assert _batch_output(first) == output
        # The line's journal entry carries the same id, so a test finds what answered a line.
        request_ids = {json.loads(line)["response"]["request_id"] for line in output.splitlines()}
        assert request_ids == {entry.request_id for entry in first.requests if entry.batch}


# --- 5. how a Responses answer is delivered ------------------------------------------------------


def test_a_responses_answer_is_the_same_in_the_background_or_with_more_included(
    server: MockServer,
) -> None:
    """`background: true` (poll for the answer) and `include` (logprobs, encrypted reasoning:
    more alongside the answer) changed the generated text, where chat's `logprobs` and `stream`
    do not: a test of an app's background path, or of one asking for logprobs, got another
    answer than the same question waited on (docs/endpoints.md: only what a request asks)."""
    client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
    question = {"model": "gpt-4o-mini", "input": "Describe a lighthouse at dusk"}
    waited = client.responses.create(**question)  # type: ignore[call-overload]
    asked = [
        {"background": True},
        {"include": ["message.output_text.logprobs"], "top_logprobs": 2},
        {"include": ["reasoning.encrypted_content"], "store": False},
    ]
    for more in asked:
        response = client.responses.create(**question, **more)  # type: ignore[call-overload]
        for _ in range(100):  # (a background response moves on as it is polled)
            if response.status == "completed":
                break
            response = client.responses.retrieve(response.id)
        assert response.output_text == waited.output_text, more
        assert response.id != waited.id  # (still another request: its own ids)


# --- 6. one body, several providers -----------------------------------------------------------


def _per_provider(first: str, then: str) -> dict[str, Any]:
    """What each provider's path answered the same body (its id, or the chaos's status), on a
    fresh server, `first` asked before `then`."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Describe a river"}]}
    seen: dict[str, Any] = {}
    with MockServer(seed=7, chaos={"rate_limit": 0.5}, quiet=True) as server:
        root = server.url.removesuffix("/v1")
        for prefix in (first, then):
            reply = HTTP.post(f"{root}{prefix}/chat/completions", json=body)
            seen[prefix] = reply.json()["id"] if reply.status_code == 200 else reply.status_code
    return seen


def test_the_same_body_to_two_providers_gets_the_same_ids_and_faults_in_either_order() -> None:
    """The same body sent to `/v1` and to `/groq/openai/v1` counted as repeats of one request:
    the second got the next ids and chaos draw, so which provider got the 429 (and which id)
    followed the order the two came in, run to run under concurrency (a multi-provider app
    asking both at once), where docs/faults.md promises the same faults whatever the
    concurrency."""
    one = _per_provider("/v1", "/groq/openai/v1")
    other = _per_provider("/groq/openai/v1", "/v1")
    assert one == other
    assert 429 in one.values()  # (this seed's chaos draws a fault for one of them)


# --- 7. a list of one prompt ------------------------------------------------------------------


def test_a_list_of_one_prompt_asks_what_the_prompt_asks(server: MockServer) -> None:
    """Legacy completions generated another text for `prompt: ["Once upon"]` than for
    `prompt: "Once upon"`: LangChain's `OpenAI` LLM always sends a list, the SDK what it is
    given, so the same app got two answers (the docs: every SDK gets the same answer)."""

    def text(prompt: Any) -> str:
        body = {"model": "gpt-3.5-turbo-instruct", "prompt": prompt, "max_tokens": 30}
        choices = _post(server, "/completions", body)["choices"]
        assert len(choices) == 1
        said: str = choices[0]["text"]
        return said

    assert text(["Once upon a time"]) == text("Once upon a time")
    assert text([[7454, 2402, 257, 640]]) == text([7454, 2402, 257, 640])
    assert text(["Once upon a time"]) != text("Once upon a river")


# --- 8. caching and prediction ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "more"),
    [
        ("/chat/completions", {"prompt_cache_retention": "24h"}),
        ("/chat/completions", {"prompt_cache_options": {"ttl": "1h", "mode": "implicit"}}),
        ("/chat/completions", {"prediction": {"type": "content", "content": "A river runs"}}),
        ("/responses", {"prompt_cache_retention": "24h"}),
        ("/responses", {"truncation": "disabled"}),
        ("/responses", {"truncation": "auto"}),
    ],
)
def test_how_a_prompt_is_cached_or_predicted_changes_no_answer(
    server: MockServer, path: str, more: dict[str, Any]
) -> None:
    """`prompt_cache_retention` changed the generated text where `prompt_cache_key` does not
    (both say how the prompt is cached, billed and timed otherwise), and so did chat's
    `prediction` (Predicted Outputs: what the model writes anyway, sooner) and the Responses
    API's `truncation` (what is dropped past the context window: within it, nothing; its
    default `disabled` sent explicitly was another answer than leaving it out)."""

    def text(extra: dict[str, Any]) -> str:
        if path == "/responses":
            body: dict[str, Any] = {"model": "gpt-4o-mini", "input": "Describe a canal", **extra}
            return _text(_post(server, path, body))
        messages = [{"role": "user", "content": "Describe a canal"}]
        answer = _post(server, path, {"model": "gpt-4o-mini", "messages": messages, **extra})
        said: str = answer["choices"][0]["message"]["content"]
        return said

    assert text(more) == text({})


# --- 9. kept answers, per provider -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "openai_model"),
    [
        (
            "/chat/completions",
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Describe a lake"}]},
            "gpt-4o-mini-2024-07-18",
        ),
        (
            "/embeddings",
            {"model": "text-embedding-ada-002", "input": "a lake"},
            "text-embedding-ada-002-v2",
        ),
    ],
)
def test_an_answer_kept_for_one_provider_names_no_model_to_another(
    path: str, body: dict[str, Any], openai_model: str
) -> None:
    """A body answered a few times (kept: its repeats skip rendering) then asked under another
    provider's path got the first provider's `model`: after OpenAI's, Groq's answer named
    OpenAI's snapshot `gpt-4o-mini-2024-07-18`; after Groq's, OpenAI's answer the bare alias
    (and `text-embedding-ada-002-v2` the same way), so the model an app saw depended on what
    the test sent before."""

    def models(first: str, then: str) -> list[str]:
        with MockServer(seed=7, quiet=True) as server:
            root = server.url.removesuffix("/v1")
            asked = [f"{root}{first}{path}"] * 3 + [f"{root}{then}{path}"]
            return [HTTP.post(url, json=body).json()["model"] for url in asked]

    asked = body["model"]
    assert models("/v1", "/groq/openai/v1") == [openai_model] * 3 + [asked]
    assert models("/groq/openai/v1", "/v1") == [asked] * 3 + [openai_model]


def test_a_vectors_size_is_its_providers_whichever_provider_asked_first() -> None:
    """The generator keeps a reply per question, and its key left out the vectors' size, which
    the catalog of the request's provider gives: `nomic-embed-text:latest` asked of Ollama (768)
    then of `/v1` (1536, by its name) got 768 twice, asked the other way round 1536 twice."""
    body = {"model": "nomic-embed-text:latest", "input": "a lake"}

    def sizes(*prefixes: str) -> dict[str, int]:
        with MockServer(seed=7, quiet=True) as server:
            root = server.url.removesuffix("/v1")
            answers = {p: HTTP.post(f"{root}{p}/embeddings", json=body).json() for p in prefixes}
        return {prefix: len(answer["data"][0]["embedding"]) for prefix, answer in answers.items()}

    expected = {"/ollama/v1": 768, "/v1": 1536}
    assert sizes("/ollama/v1", "/v1") == expected
    assert sizes("/v1", "/ollama/v1") == expected


# --- 10. one question, spelt as each client spells it --------------------------------------------


def test_a_question_spelt_long_or_short_gets_one_answer(server: MockServer) -> None:
    """A Responses `input` string (the SDK), the one user message it means (the Agents SDK's
    `[{"role": "user", "content": ...}]`, LangChain's with `"type": "message"`) and that
    message's one `input_text` part (others) each got their own answer, and so did chat's
    content as a string or as one `text` part, where docs/endpoints.md says what a request asks
    is read parsed."""
    said = "Describe a harbour"
    inputs: list[Any] = [
        said,
        [{"role": "user", "content": said}],
        [{"type": "message", "role": "user", "content": said}],
        [{"role": "user", "content": [{"type": "input_text", "text": said}]}],
        [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": said}]}],
    ]
    answers = {
        _text(_post(server, "/responses", {"model": "gpt-4o-mini", "input": given}))
        for given in inputs
    }
    assert len(answers) == 1
    chats = set()
    for content in (said, [{"type": "text", "text": said}]):
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
        chats.add(_post(server, "/chat/completions", body)["choices"][0]["message"]["content"])
    assert len(chats) == 1
    # (another question is still its own)
    other = [{"role": "user", "content": [{"type": "input_text", "text": said + "!"}]}]
    assert (
        _text(_post(server, "/responses", {"model": "gpt-4o-mini", "input": other})) not in answers
    )
