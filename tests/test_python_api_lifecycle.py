"""`MockServer`'s lifecycle as a test uses it (docs/python.md): `with` / `async with`, and a
server the test stops itself to see its app cope with the API going away."""

from __future__ import annotations

import asyncio
import socket

import openai
import pytest

from mockai import MockServer


def test_a_server_the_block_stopped_is_left_stopped_and_its_error_is_the_one_raised() -> None:
    """Stopping the server inside `with` (the API going away) made the block's end raise
    ServerError 'Server is not running in the background', in place of the test's own failure."""
    server = MockServer(quiet=True)
    with pytest.raises(AssertionError, match="the app's own failure"), server:
        server.stop()
        client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
        with pytest.raises(openai.APIConnectionError):
            client.models.list()
        client.close()
        raise AssertionError("the app's own failure")
    assert not server.running
    with MockServer(quiet=True) as server:  # stopped and started again: stopped at the end
        server.stop()
        server.start()
    assert not server.running


def test_a_server_the_async_block_stopped_is_left_stopped() -> None:
    async def main() -> MockServer:
        async with MockServer(quiet=True) as server:
            await server.stop_async()
            client = openai.AsyncOpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
            with pytest.raises(openai.APIConnectionError):
                await client.models.list()
            await client.close()
        return server

    assert not asyncio.run(main()).running


def test_a_server_whose_loop_ended_without_a_stop_can_start_again() -> None:
    """A server started with `start_async` in a loop that was closed before its stop (an
    `asyncio.run`, or a pytest-asyncio test that failed before its `stop_async`) stayed
    `running` for good: every later start was 'Server is already running', and its port stayed
    open until the process exited."""
    server = MockServer(quiet=True)
    server.add_rule({"match": {"user": "ping"}, "reply": "pong"})

    async def start() -> int:
        await server.start_async()
        return server.port

    first_port = asyncio.run(start())  # (the loop closes with the server never stopped)
    assert not server.running

    async def serve_again() -> str | None:
        async with server:
            client = openai.AsyncOpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
            reply = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}]
            )
            await client.close()
            return reply.choices[0].message.content

    assert asyncio.run(serve_again()) == "pong"  # the rules stay, as for a stopped server
    assert not server.running
    with socket.socket() as probe:  # the first run's port was given back (closed, not leaked)
        probe.bind(("127.0.0.1", first_port))
