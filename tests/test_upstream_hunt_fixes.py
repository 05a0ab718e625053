"""The upstream (`--upstream`, recording and passthrough): what mockai forwards, and what it
answers when the upstream misbehaves (redirects, errors, odd bodies).

Each test runs a real mockai in front of a loopback upstream (a small aiohttp app) and talks to
it with the `openai` SDK or httpx, as an app does.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conformance
import httpx
import openai
import pytest
from aiohttp import web
from cassette_support import LoopbackApp, chat_completion

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}
QUERY_KEY = "Qk7fT2mZ9xW4vB8nR1cY5pL3"  # a key in the upstream URL's query (Azure's style)


@contextlib.contextmanager
def sdk(url: str, **options: Any) -> Iterator[openai.OpenAI]:
    """The real SDK, no retries (a retry would hide the first answer)."""
    client = openai.OpenAI(base_url=url, api_key="sk-test-0000", max_retries=0, **options)
    try:
        yield client
    finally:
        client.close()


async def answer_chat(request: web.Request) -> web.Response:
    return web.json_response(chat_completion("chatcmpl-1", "gpt-4o-mini", "answered"))


def test_a_redirect_loop_is_a_502_that_shows_no_query_key(tmp_path: Path) -> None:
    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.path_qs)

    with (
        LoopbackApp({"/v1/chat/completions": loop}) as app,
        conformance.checked_server(upstream=f"{app.url}?api-key={QUERY_KEY}") as proxy,
        sdk(proxy.url) as client,
        pytest.raises(openai.InternalServerError) as raised,
    ):
        client.chat.completions.create(**CHAT)
    assert raised.value.status_code == 502
    error = raised.value.body
    assert isinstance(error, dict)
    # aiohttp's TooManyRedirects text had spelled the request URL, its query key included.
    assert QUERY_KEY not in error["message"]
    assert error["message"] == f"mockai: the upstream {app.url} redirected more than 10 times"
    assert error["code"] == "upstream_unreachable"


def test_a_redirect_to_another_host_takes_no_key_along(tmp_path: Path) -> None:
    elsewhere: list[dict[str, str]] = []

    async def other_host(request: web.Request) -> web.Response:
        elsewhere.append(dict(request.headers))
        return web.json_response(chat_completion("chatcmpl-2", "gpt-4o-mini", "from elsewhere"))

    with LoopbackApp({"/v1/chat/completions": other_host}) as other:

        async def moved(request: web.Request) -> web.Response:
            # `localhost` is another origin than `127.0.0.1`, as another host is.
            raise web.HTTPTemporaryRedirect(f"http://localhost:{other.port}/v1/chat/completions")

        async def same_host(request: web.Request) -> web.Response:
            raise web.HTTPPermanentRedirect("/v1/moved/chat/completions")

        keys = {"api-key": "azure-key-0123456789", "x-api-key": "anthropic-key-0123456789"}
        routes = {
            "/v1/chat/completions": moved,
            "/v1/here/chat/completions": same_host,
            "/v1/moved/chat/completions": answer_chat,
        }
        with LoopbackApp(routes) as app:
            with (
                conformance.checked_server(upstream=app.url) as proxy,
                sdk(proxy.url, default_headers=keys) as client,
            ):
                answer = client.chat.completions.create(**CHAT)
            assert answer.choices[0].message.content == "from elsewhere"
            # (aiohttp's own following had dropped Authorization and Cookie only.)
            sent = {name.lower() for name in elsewhere[0]}
            assert sent & {"api-key", "x-api-key", "authorization"} == set()
            assert elsewhere[0]["Content-Type"] == "application/json"  # (a 307 keeps the POST)
            # A redirect within the upstream's origin keeps every key: the upstream needs them.
            with (
                conformance.checked_server(upstream=app.url + "/here") as proxy,
                sdk(proxy.url, default_headers=keys) as client,
            ):
                answer = client.chat.completions.create(**CHAT)
            assert answer.choices[0].message.content == "answered"
        moved_there = [h for path, h, _ in app.requests if path == "/v1/moved/chat/completions"]
        assert moved_there[0]["api-key"] == keys["api-key"]
        assert moved_there[0]["x-api-key"] == keys["x-api-key"]
        assert moved_there[0]["Authorization"] == "Bearer sk-test-0000"


def test_the_required_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from mockai.wire import credentials

    compared: list[tuple[bytes, bytes]] = []
    constant_time = hmac.compare_digest

    def compare_digest(given: bytes, required: bytes) -> bool:
        compared.append((given, required))
        return constant_time(given, required)

    # (`==` stops at the first differing character: how fast a guess is refused tells how much
    # of it was right.)
    monkeypatch.setattr(credentials.hmac, "compare_digest", compare_digest)
    key = "sk-required-0123456789"
    with conformance.checked_server(require_api_key=key) as server:
        with openai.OpenAI(base_url=server.url, api_key=key, max_retries=0) as client:
            assert client.models.list().data
        with (
            openai.OpenAI(base_url=server.url, api_key="sk-wrong-0123456789", max_retries=0) as c,
            pytest.raises(openai.AuthenticationError),
        ):
            c.models.list()
        # Azure OpenAI's clients send the key as `api-key`.
        with openai.AzureOpenAI(
            azure_endpoint=server.url.removesuffix("/v1"),
            api_key=key,
            api_version="2024-10-21",
            max_retries=0,
        ) as azure:
            answer = azure.chat.completions.create(**CHAT)
            assert answer.choices[0].message.content
        # A key past ASCII, or bytes that are no UTF-8, is a 401, not a 500.
        for sent in ("Bearer sk-clé-0123456789".encode(), b"Bearer sk-\xff\xfe-0123456789"):
            response = httpx.get(server.url + "/models", headers={"Authorization": sent})
            assert response.status_code == 401, response.text
    assert (b"sk-required-0123456789", key.encode()) in compared
    assert (b"sk-wrong-0123456789", key.encode()) in compared
    assert len(compared) == 5


def test_a_cookie_the_upstream_sets_for_one_client_goes_to_no_other() -> None:
    cookies: list[str | None] = []

    async def login(request: web.Request) -> web.Response:
        cookies.append(request.headers.get("Cookie"))
        response = web.json_response(chat_completion("chatcmpl-1", "gpt-4o-mini", "answered"))
        response.set_cookie("session", "alice-session-0123456789")
        return response

    with LoopbackApp({"/v1/chat/completions": login}) as app:
        # (A host name, not 127.0.0.1: aiohttp's jar keeps no cookie of an IP address.)
        upstream = app.url.replace("127.0.0.1", "localhost")
        with conformance.checked_server(upstream=upstream) as proxy:
            with sdk(proxy.url) as alice:
                raw = alice.chat.completions.with_raw_response.create(**CHAT)
                assert "alice-session-0123456789" in raw.headers["set-cookie"]
            with sdk(proxy.url) as bob:  # another app, which was never given that cookie
                bob.chat.completions.create(**CHAT)
            with sdk(proxy.url, default_headers={"Cookie": "session=own"}) as carol:
                carol.chat.completions.create(**CHAT)
    # mockai's session had kept Alice's cookie and sent it with Bob's and Carol's requests.
    assert cookies == [None, None, "session=own"]


def test_every_value_of_a_header_the_upstream_repeats_reaches_the_client() -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        body = chat_completion("chatcmpl-1", "gpt-4o-mini", "answered")
        if request.query.get("fail"):
            error = {"message": "slow down", "type": "requests", "param": None, "code": None}
            response = web.json_response({"error": error}, status=429)
        else:
            response = web.json_response(body)
        # As api.openai.com answers: Cloudflare's two cookies, two `vary` lines.
        response.set_cookie("__cf_bm", "bm-0123456789")
        response.set_cookie("_cfuvid", "uv-0123456789")
        response.headers.add("Vary", "Origin")
        response.headers.add("Vary", "Accept-Encoding")
        return response

    with (
        LoopbackApp({"/v1/chat/completions": answer}) as app,
        conformance.checked_server(upstream=app.url) as proxy,
    ):
        for query in ("", "?fail=1"):  # (an answer relayed as it comes, and an error read whole)
            response = httpx.post(proxy.url + "/chat/completions" + query, json=CHAT)
            cookies = [c.split(";")[0] for c in response.headers.get_list("set-cookie")]
            assert cookies == ["__cf_bm=bm-0123456789", "_cfuvid=uv-0123456789"]
            assert response.headers.get_list("vary") == ["Origin", "Accept-Encoding"]
            assert len(response.headers.get_list("x-request-id")) == 1


def test_a_prompt_past_the_catalogs_window_is_the_upstreams_to_answer() -> None:
    forwarded: list[str] = []

    async def takes_it(request: web.Request) -> web.Response:
        forwarded.append(request.path)
        if request.path.endswith(("/responses", "/completions")) and "chat" not in request.path:
            error = {"message": "busy", "type": "server_error", "param": None, "code": None}
            return web.json_response({"error": error}, status=503)
        if request.path.endswith("/embeddings"):
            vector = {"object": "embedding", "index": 0, "embedding": [0.5]}
            usage = {"prompt_tokens": 1, "total_tokens": 1}
            return web.json_response(
                {
                    "object": "list",
                    "data": [vector],
                    "model": "Qwen/Qwen3-Embedding-8B",
                    "usage": usage,
                }
            )
        return web.json_response(chat_completion("chatcmpl-1", "gemini-2.5-pro", "read it all"))

    # ~150,000 tokens by mockai's count: past the 128,000 it gives a model it does not know,
    # well inside what Gemini (a million) or Llama 4 take.
    long = "lorem ipsum dolor sit amet " * 30_000
    with (
        LoopbackApp({"/v1/{route:.*}": takes_it}) as app,
        conformance.checked_server(upstream=app.url) as proxy,
        sdk(proxy.url) as client,
    ):
        answer = client.chat.completions.create(
            model="gemini-2.5-pro", messages=[{"role": "user", "content": long}]
        )
        assert answer.choices[0].message.content == "read it all"
        client.embeddings.create(model="Qwen/Qwen3-Embedding-8B", input=long[:60_000])  # (32k)
        # (Here the upstream says what it says of the Responses and legacy requests: its 503.)
        with pytest.raises(openai.InternalServerError):
            client.responses.create(model="gemini-2.5-pro", input=long)
        with pytest.raises(openai.InternalServerError):
            client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi " * 5000)
    # mockai had answered them all with its own 400, never asking the upstream.
    assert forwarded == [
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/completions",
    ]
    # Without a cassette or an upstream, mockai's own check still answers as the API does.
    with conformance.checked_server() as server, sdk(server.url) as client:
        with pytest.raises(openai.BadRequestError) as raised:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": long}]
            )
        assert raised.value.code == "context_length_exceeded"


def test_a_request_naming_the_model_as_empty_is_the_upstreams_to_answer() -> None:
    """`"model": ""` is OpenAI's router's 400, but a server that serves one model (llama.cpp's)
    takes it: over an upstream (and a cassette recorded from one) mockai had answered its own
    400 and never forwarded the request."""
    forwarded: list[str] = []

    async def takes_it(request: web.Request) -> web.Response:
        forwarded.append(request.path)
        return web.json_response(chat_completion("chatcmpl-1", "llama", "the one model"))

    message = [{"role": "user", "content": "hi"}]
    with (
        LoopbackApp({"/v1/{route:.*}": takes_it}) as app,
        conformance.checked_server(upstream=app.url) as proxy,
        httpx.Client(base_url=proxy.url, timeout=30) as http,
    ):
        for path, body in (
            ("/chat/completions", {"model": "", "messages": message}),
            ("/completions", {"model": "", "prompt": "hi"}),
            ("/embeddings", {"model": "", "input": "hi"}),
        ):
            assert http.post(path, json=body).status_code == 200
    assert forwarded == ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]


def test_dimensions_a_known_model_refuses_are_the_upstreams_to_answer() -> None:
    """The catalog's refusal of `dimensions` (text-embedding-ada-002 takes none; none above a
    model's size) is left to an upstream, as its other refusals are: one serving its own model
    under that name may take them, and mockai had answered its own 400, never forwarding."""
    forwarded: list[str] = []

    async def takes_it(request: web.Request) -> web.Response:
        forwarded.append(request.path)
        vector = {"object": "embedding", "index": 0, "embedding": [0.6, 0.8]}
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        model = "text-embedding-ada-002"
        return web.json_response(
            {"object": "list", "data": [vector], "model": model, "usage": usage}
        )

    with (
        LoopbackApp({"/v1/{route:.*}": takes_it}) as app,
        conformance.checked_server(upstream=app.url) as proxy,
        sdk(proxy.url) as client,
    ):
        for model, dimensions in (("text-embedding-ada-002", 2), ("text-embedding-3-small", 4096)):
            answer = client.embeddings.create(model=model, input="hi", dimensions=dimensions)
            assert answer.data[0].embedding == [0.6, 0.8]
    assert forwarded == ["/v1/embeddings", "/v1/embeddings"]
    # Without an upstream, mockai's own check still answers as the API does.
    with conformance.checked_server() as server, sdk(server.url) as client:
        with pytest.raises(openai.BadRequestError) as raised:
            client.embeddings.create(model="text-embedding-ada-002", input="hi", dimensions=2)
        assert raised.value.param == "dimensions"


def test_the_upstream_is_reached_through_the_environments_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The proxy, the only way to `api.example.test` (a name no resolver knows): an HTTP forward
    # proxy gets the absolute URL, and answers for that host here.
    async def proxied(request: web.Request) -> web.Response:
        return web.json_response(chat_completion("chatcmpl-1", "gpt-4o-mini", "via the proxy"))

    with LoopbackApp({"/v1/chat/completions": proxied}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://corp:s3cret@127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # (the SDK reaches mockai direct)
        with (
            conformance.checked_server(upstream="http://api.example.test/v1") as server,
            sdk(server.url) as client,
        ):
            answer = client.chat.completions.create(**CHAT)
            assert answer.choices[0].message.content == "via the proxy"
            # (mockai had gone straight to the host, unreachable here: a 502.)
            _, headers, _ = proxy.requests[0]
            assert headers["Host"] == "api.example.test"
            assert headers["Proxy-Authorization"] == "Basic Y29ycDpzM2NyZXQ="  # corp:s3cret
            assert headers["Authorization"] == "Bearer sk-test-0000"
            # A host NO_PROXY names is reached directly (here: not at all).
            monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,.example.test")
            with pytest.raises(openai.InternalServerError) as raised:
                client.chat.completions.create(**CHAT)
            assert raised.value.status_code == 502
            assert len(proxy.requests) == 1
