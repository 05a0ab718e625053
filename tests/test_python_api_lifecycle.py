"""`MockServer`'s lifecycle as a test uses it (docs/python.md): `with` / `async with`, and a
server the test stops itself to see its app cope with the API going away."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

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


RECORDS_AND_EXITS = """
import sys
import threading

import httpx

from mockai import MockServer

upstream = MockServer(quiet=True).start()
recorder = MockServer(
    quiet=True, cassette=sys.argv[1], record_mode="once", upstream=upstream.url
).start()


def ask(number):
    answer = httpx.post(
        recorder.url + "/chat/completions",
        headers={"authorization": "Bearer sk-test"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPTS[number]}]},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


PROMPTS = [f"question {number} " + "word " * 20000 for number in range(6)]
# (at once, and long: saves are still being written as the last answers come)
asking = [threading.Thread(target=ask, args=(number,)) for number in range(6)]
for thread in asking:
    thread.start()
for thread in asking:
    thread.join()
print("exiting without a stop", flush=True)
"""


def test_a_recording_server_never_stopped_saves_its_cassette_at_exit(tmp_path: Path) -> None:
    """A script recording through a MockServer it never stopped lost its last recordings (with
    one request, the cassette was often never written): their save was still pending when the
    interpreter ended the server's daemon loop thread. docs/cassettes.md: saved after every
    interaction. (Stopped at exit, a save after the threads' pool has shut down is written on
    the loop's thread: without that, 4 or 5 of these 6 were saved.)"""
    cassette = tmp_path / "session.yaml"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", RECORDS_AND_EXITS, str(cassette)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "exiting without a stop" in done.stdout
    assert done.stderr == ""  # (no ResourceWarning, no save refused)
    with MockServer(quiet=True, cassette=str(cassette)) as replay:
        client = openai.OpenAI(base_url=replay.url, api_key="sk-test", max_retries=0)
        for number in range(6):  # every answer was saved, the last ones too
            prompt = f"question {number} " + "word " * 20000
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
            )
        client.close()
        assert {entry.source for entry in replay.requests} == {"cassette"}
