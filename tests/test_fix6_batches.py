"""Batches and files: what a bug hunt found wrong, each kept fixed by a test through the SDK or
HTTP against a real server.

- a batch cancelled while its lines are being answered ends with their answers in its output
  file (request_counts as the files hold them), not with them left behind;
- a batch created through a provider's routes (Azure, Groq) answers its lines as that provider
  answers them alone, and refuses an endpoint the provider does not have;
- answering a big batch leaves the server serving other requests meanwhile;
- `GET /batches` pages on while new batches make room by forgetting old ones (a cursor keeps its
  place);
- files and batches share one clock: a batch falls between its input and output files in time;
- an id holding an encoded `/` is the API's 404, never another route (a GET that cancels).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import openai
import pytest
from conformance import checked_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk import sdk
from service_support import RedisServer
from strategies import examples

from mockai import MockServer

TERMINAL = ("completed", "failed", "cancelled", "expired")


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def chat_lines(count: int, url: str = "/v1/chat/completions", model: str = "gpt-4o-mini") -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
    return jsonl(
        [{"custom_id": f"q{i}", "method": "POST", "url": url, "body": body} for i in range(count)]
    )


def create(client: openai.OpenAI, data: bytes, endpoint: str = "/v1/chat/completions") -> Any:
    upload = client.files.create(file=("requests.jsonl", data), purpose="batch")
    return client.batches.create(
        input_file_id=upload.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
    )


def finish(client: openai.OpenAI, batch: Any) -> Any:
    for _ in range(10):
        if batch.status in TERMINAL:
            return batch
        batch = client.batches.retrieve(batch.id)
    raise AssertionError(f"batch {batch.id} still {batch.status} after 10 polls")


def rows(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(row) for row in client.files.content(file_id).text.splitlines()]


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with checked_server() as running:
        yield running


@pytest.fixture(scope="module")
def unchecked() -> Iterator[MockServer]:
    """A server whose answers are not checked against OpenAI's spec (Groq's are Groq's:
    `service_tier: on_demand`)."""
    with MockServer(log_requests=False) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with sdk(server) as built:
        yield built


# --- 1. a batch cancelled while its lines are answered keeps their answers -----------------------


def journaled_lines(server: MockServer, batch_id: str) -> int:
    return sum(1 for entry in server.requests if entry.batch == batch_id)


def test_a_batch_cancelled_while_its_lines_run_keeps_their_answers(
    server: MockServer, client: openai.OpenAI
) -> None:
    cancelled_while_running(server, client)


def test_with_redis_a_batch_cancelled_while_its_lines_run_keeps_their_answers(
    redis: RedisServer,
) -> None:
    with checked_server(state=redis.url()) as shared, sdk(shared) as client:
        cancelled_while_running(shared, client)


def cancelled_while_running(server: MockServer, client: openai.OpenAI) -> None:
    # Pictures: each line is rendered off the loop (~30 ms), so requests come in between them.
    batch = client.batches.retrieve(create(client, image_lines(30), "/v1/images/generations").id)
    assert batch.status == "in_progress"
    ran: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: ran.setdefault("batch", client.batches.retrieve(batch.id))
    )
    runner.start()
    deadline = time.monotonic() + 5
    while not journaled_lines(server, batch.id) and time.monotonic() < deadline:
        time.sleep(0.002)
    cancelled = client.batches.cancel(batch.id)
    # (the race this test is about: the cancel came while the lines were being answered)
    assert cancelled.status == "cancelling" and cancelled.request_counts.completed == 0
    after = client.batches.retrieve(batch.id)
    runner.join(timeout=10)
    after = finish(client, after)
    assert after.status == "cancelled" and after.cancelled_at is not None
    kept = rows(client, after.output_file_id) + rows(client, after.error_file_id)
    counts = after.request_counts
    assert (counts.total, counts.completed + counts.failed) == (30, len(kept))
    assert len(rows(client, after.output_file_id)) == counts.completed > 0
    assert [row["custom_id"] for row in kept] == [f"p{i}" for i in range(30)]


# --- 2. a batch's lines are answered as the provider it was created through answers them ---------


def line_body(client: openai.OpenAI, batch: Any) -> dict[str, Any]:
    batch = finish(client, batch)
    assert batch.status == "completed", batch
    [row] = rows(client, batch.output_file_id)
    body: dict[str, Any] = row["response"]["body"]
    return body


def test_an_azure_batch_line_has_the_content_filter_results_of_the_same_request_alone(
    server: MockServer,
) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    with openai.AzureOpenAI(
        azure_endpoint=server.base_url, api_key="k", api_version="2024-10-21", max_retries=0
    ) as azure:
        alone = azure.chat.completions.create(**body).model_dump(exclude_unset=True)  # type: ignore[call-overload]
        line = {"custom_id": "a", "method": "POST", "url": "/chat/completions", "body": body}
        got = line_body(azure, create(azure, jsonl([line]), "/chat/completions"))
    assert "prompt_filter_results" in alone and "prompt_filter_results" in got
    assert "content_filter_results" in got["choices"][0]
    assert got.keys() == alone.keys()


def test_a_groq_batch_line_has_what_groq_answers_alone(unchecked: MockServer) -> None:
    body = {"model": "llama-3.1-8b-instant", "messages": [{"role": "user", "content": "Hi"}]}
    with openai.OpenAI(
        base_url=unchecked.provider_url("groq"), api_key="gsk-test", max_retries=0
    ) as groq:
        alone = groq.post("/chat/completions", body=body, cast_to=object)
        got = line_body(groq, create(groq, chat_lines(1, model="llama-3.1-8b-instant")))
    assert isinstance(alone, dict) and "x_groq" in alone and "x_groq" in got
    assert got.keys() == alone.keys()
    assert got["usage"].keys() == alone["usage"].keys() >= {"queue_time", "total_time"}


@pytest.mark.parametrize("endpoint", ["/v1/completions", "/v1/moderations"])
def test_a_groq_batch_of_an_endpoint_groq_lacks_is_refused(
    server: MockServer, endpoint: str
) -> None:
    with openai.OpenAI(
        base_url=server.provider_url("groq"), api_key="gsk-test", max_retries=0
    ) as groq:
        with pytest.raises(openai.NotFoundError):  # (alone: the provider's 404)
            groq.post(
                endpoint.removeprefix("/v1"), body={"model": "m", "input": "x"}, cast_to=object
            )
        upload = groq.files.create(file=("r.jsonl", chat_lines(1, url=endpoint)), purpose="batch")
        with pytest.raises(openai.BadRequestError) as refused:
            groq.batches.create(
                input_file_id=upload.id,
                endpoint=endpoint,  # type: ignore[arg-type]
                completion_window="24h",
            )
    assert refused.value.status_code == 400
    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == "endpoint"
    assert f"Invalid value: '{endpoint}'" in error["message"]
    assert (
        "'/v1/chat/completions'" in error["message"]
        and "'/v1/completions'" not in (error["message"].split("for", 1)[1])
    )


def test_under_the_groq_profile_a_batch_line_is_groqs() -> None:
    with MockServer(profile="groq", log_requests=False) as groq_server, sdk(groq_server) as client:
        got = line_body(client, create(client, chat_lines(1, model="llama-3.1-8b-instant")))
        assert "x_groq" in got
        upload = client.files.create(file=("r.jsonl", b"{}"), purpose="batch")
        with pytest.raises(openai.BadRequestError):
            client.batches.create(
                input_file_id=upload.id, endpoint="/v1/completions", completion_window="24h"
            )


@pytest.mark.parametrize("strict", [False, True])
def test_under_the_groq_profile_a_batch_takes_a_window_of_24h_to_7d(strict: bool) -> None:
    """Groq's batches run within any `completion_window` from 24h to 7d (its API reference and
    SDK); the Groq profile had refused all but OpenAI's `24h`."""
    with (
        MockServer(profile="groq", strict_requests=strict, log_requests=False) as groq_server,
        sdk(groq_server) as client,
    ):
        data = chat_lines(1, model="llama-3.1-8b-instant")
        upload = client.files.create(file=("r.jsonl", data), purpose="batch")

        def create_within(window: str) -> Any:
            return client.batches.create(
                input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window=window
            )

        for window, hours in (("24h", 24), ("48h", 48), ("3d", 72), ("7d", 168), ("168h", 168)):
            batch = create_within(window)
            assert (batch.completion_window, batch.expires_at - batch.created_at) == (
                window,
                hours * 3600,
            )
            assert client.batches.retrieve(batch.id).completion_window == window
        for window in ("23h", "8d", "169h", "1w", "48", "0d"):
            with pytest.raises(openai.BadRequestError) as refused:
                create_within(window)
            assert "'24h' to '7d'" in str(refused.value), window


def test_openai_batches_take_a_window_of_24h_alone(unchecked: MockServer) -> None:
    with sdk(unchecked) as client:
        upload = client.files.create(file=("r.jsonl", chat_lines(1)), purpose="batch")
        with pytest.raises(openai.BadRequestError) as refused:
            client.batches.create(
                input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="48h"
            )
    assert refused.value.body == {
        "message": "Invalid value: '48h'. Supported values are: '24h'.",
        "type": "invalid_request_error",
        "param": "completion_window",
        "code": "invalid_value",
    }


# --- 3. answering a big batch leaves the server serving ------------------------------------------


def test_the_server_answers_other_requests_while_a_big_batch_runs(unchecked: MockServer) -> None:
    with sdk(unchecked) as client:
        batch = client.batches.retrieve(create(client, chat_lines(20_000)).id)
        assert batch.status == "in_progress"
        ran: dict[str, Any] = {}

        def run() -> None:
            began = time.monotonic()
            ran["batch"] = client.batches.retrieve(batch.id)  # (answers the 20,000 lines)
            ran["took"] = time.monotonic() - began

        runner = threading.Thread(target=run)
        runner.start()
        deadline = time.monotonic() + 5
        while not any(e.batch == batch.id for e in unchecked.requests[-3:]):
            assert time.monotonic() < deadline, "the batch's lines never started"
            time.sleep(0.002)
        began = time.monotonic()
        assert client.models.list().data
        waited = time.monotonic() - began
        runner.join(timeout=30)
    assert ran["batch"].status == "finalizing"
    # (a blocked loop answers once the lines are done: as long as they took, ~2 s; yielding,
    # ~0.01-0.4 s, the server sharing its process with this test and a loaded machine)
    assert waited < ran["took"] / 2, (waited, ran["took"])


def test_the_server_answers_other_requests_while_a_big_input_file_is_read(
    unchecked: MockServer,
) -> None:
    """Reading a big input file (its validation, and counting its lines before they are
    answered) is done off the loop: 60 MB took the server ~2 s, twice, answering nothing (a
    health check included)."""
    # Lines that take long to read and no time to answer (a stream is refused at once): ~30 MB.
    question = [{"role": "user", "content": "tell me more. " * 100}]
    body = {"model": "gpt-4o-mini", "stream": True, "messages": question}
    line = {"method": "POST", "url": "/v1/chat/completions", "body": body}
    with sdk(unchecked) as client:
        batch = create(client, jsonl([{"custom_id": f"q{i}", **line} for i in range(20_000)]))
        for status in ("in_progress", "finalizing"):  # (read to validate it; to answer it)
            took, waited = retrieved_meanwhile(client, batch.id, status)
            # (a blocked loop answers once the file is read: nearly as long as the retrieval)
            assert waited < took / 3, (status, waited, took)


def retrieved_meanwhile(client: openai.OpenAI, batch_id: str, status: str) -> tuple[float, ...]:
    """How long retrieving the batch took, and how long a request sent meanwhile waited."""
    ran: dict[str, Any] = {}

    def run() -> None:
        began = time.monotonic()
        ran["batch"] = client.batches.retrieve(batch_id)
        ran["took"] = time.monotonic() - began

    runner = threading.Thread(target=run)
    runner.start()
    time.sleep(0.05)  # (the retrieval has come in: the file is being read)
    began = time.monotonic()
    assert client.models.list().data
    waited = time.monotonic() - began
    runner.join(timeout=60)
    assert ran["batch"].status == status
    return ran["took"], waited


# --- 4. paging the batches while new ones make room --------------------------------------------


def test_the_auto_pager_reaches_the_end_while_new_batches_forget_old_ones() -> None:
    with MockServer(log_requests=False) as fresh, sdk(fresh) as client:
        http = client._client  # (the SDK's own httpx client: raw requests, no model parsing)
        bad = client.files.create(file=("bad.jsonl", b"{not json"), purpose="batch").id
        made = {"input_file_id": bad, "endpoint": "/v1/embeddings", "completion_window": "24h"}

        def ended_batch() -> str:
            batch = http.post(fresh.url + "/batches", json=made).json()
            assert http.get(f"{fresh.url}/batches/{batch['id']}").json()["status"] == "failed"
            return str(batch["id"])

        held = [ended_batch() for _ in range(1000)]  # (the most a server holds)
        seen: list[str] = []
        for batch in client.batches.list(limit=100):
            seen.append(batch.id)
            if len(seen) == 850:  # mid-page: the next page's cursor is among the forgotten
                for _ in range(150):
                    ended_batch()
    # Newest first, each once, until the oldest still held: the 150 oldest were forgotten.
    assert seen == held[::-1][:850] + held[::-1][850:900]


# --- 5. one clock for files and batches ------------------------------------------------------------


def run_batch(client: openai.OpenAI, earlier: int, lines: int, cancel: bool) -> tuple[Any, ...]:
    """Upload `earlier` files, then run (or cancel) a batch of `lines` chat lines: the input
    file, the batch as it ended, and its output file."""
    for i in range(earlier):
        client.files.create(file=(f"other{i}.jsonl", b'{"x": %d}' % i), purpose="batch")
    upload = client.files.create(file=("in.jsonl", chat_lines(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch = client.batches.retrieve(batch.id)
    if cancel:
        client.batches.cancel(batch.id)
    batch = finish(client, batch)
    output = client.files.retrieve(batch.output_file_id) if batch.output_file_id else None
    return upload, batch, output


@settings(
    max_examples=examples(8),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(earlier=st.integers(0, 3), lines=st.integers(1, 3), cancel=st.booleans())
def test_a_batch_falls_between_its_input_and_output_files_in_time(
    client: openai.OpenAI, earlier: int, lines: int, cancel: bool
) -> None:
    upload, batch, output = run_batch(client, earlier, lines, cancel)
    if cancel:  # (before any retrieval ran its lines: no output)
        assert (batch.status, output) == ("cancelled", None)
        steps = [batch.in_progress_at, batch.cancelling_at, batch.cancelled_at]
    else:
        assert batch.status == "completed" and output is not None
        steps = [batch.in_progress_at, batch.finalizing_at, output.created_at, batch.completed_at]
    times = [upload.created_at, batch.created_at, *steps]
    assert times == sorted(times) and len(set(times)) == len(times), times


def test_on_a_fresh_server_the_one_clock_gives_the_same_ids_and_times_every_run() -> None:
    seen = []
    for _ in range(2):
        with MockServer(log_requests=False) as fresh, sdk(fresh) as client:
            upload, batch, output = run_batch(client, 2, 2, cancel=False)
            seen.append((upload.model_dump(), batch.model_dump(), output.model_dump()))
    upload, batch, output = seen[0]
    # (the uploads take the clock's first three seconds, the batch's steps and output the next)
    created = upload["created_at"] - 3
    assert [batch[f"{step}_at"] - created for step in ("created", "in_progress", "finalizing")] == [
        4,
        5,
        6,
    ]
    assert (output["created_at"] - created, batch["completed_at"] - created) == (7, 8)
    assert seen[0] == seen[1]


# --- 6. an encoded "/" in an id is part of the id, never another route -------------------------


def test_an_encoded_slash_in_an_id_reaches_no_other_route(
    server: MockServer, client: openai.OpenAI
) -> None:
    upload = client.files.create(file=("s.jsonl", chat_lines(1)), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    with httpx.Client(base_url=server.url, timeout=5) as http:
        cancel = http.get(f"/batches/{batch.id}%2Fcancel")  # (a GET must change nothing)
        delete = http.delete(f"/files/{upload.id}%2Fcontent")
        shown = http.get(f"/files/{upload.id}%2Fcontent%2Fx")
    assert (cancel.status_code, delete.status_code, shown.status_code) == (404, 404, 404)
    assert cancel.json()["error"]["message"] == f"No batch found with id '{batch.id}/cancel'."
    assert delete.json()["error"]["message"] == f"No such File object: {upload.id}/content"
    assert client.batches.retrieve(batch.id).status == "in_progress"  # (not cancelled)
    assert client.files.retrieve(upload.id).id == upload.id  # (not deleted)


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rest=st.lists(st.sampled_from(["cancel", "content", "x", ""]), min_size=1, max_size=3),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    kind=st.sampled_from(["files", "batches"]),
)
def test_any_id_holding_a_slash_is_the_apis_404(
    server: MockServer, client: openai.OpenAI, rest: list[str], method: str, kind: str
) -> None:
    made = client.files.create(file=("p.jsonl", chat_lines(1)), purpose="batch")
    held = made.id
    if kind == "batches":
        held = client.batches.create(
            input_file_id=made.id, endpoint="/v1/chat/completions", completion_window="24h"
        ).id
    named = "/".join([held, *rest])
    with httpx.Client(base_url=server.url, timeout=5) as http:
        answer = http.request(method, f"/{kind}/" + quote(named, safe=""))
        # (every route of an id takes GET, the ones that take the method: the API's 404/405)
        assert answer.status_code in (404, 405), answer.text
        if answer.status_code == 404:
            assert named in answer.json()["error"]["message"]
        assert http.get(f"/{kind}/{held}").json()["id"] == held  # still there
    if kind == "batches":
        assert client.batches.retrieve(held).status not in ("cancelling", "cancelled")


# --- 5. a cancel ends a batch whose answering failed; the clock moves only with a step -----------


def image_lines(count: int) -> bytes:
    line = {"model": "dall-e-2", "prompt": "a cat", "response_format": "b64_json"}
    return jsonl(
        [
            {"custom_id": f"p{i}", "method": "POST", "url": "/v1/images/generations", "body": line}
            for i in range(count)
        ]
    )


def test_a_refused_cancel_moves_no_clock(client: openai.OpenAI) -> None:
    batch = finish(client, create(client, chat_lines(1)))
    assert batch.status == "completed"
    before = client.files.create(file=("a.txt", b"a"), purpose="user_data")
    for _ in range(2):
        with pytest.raises(openai.ConflictError, match="status 'completed'"):
            client.batches.cancel(batch.id)
    after = client.files.create(file=("b.txt", b"b"), purpose="user_data")
    assert after.created_at == before.created_at + 1


def test_with_redis_a_cancel_ends_a_batch_whose_answering_failed(redis: RedisServer) -> None:
    import redis as redis_py

    shared = redis.url()  # (one namespace: two workers of one server)
    with (
        checked_server(state=shared) as runner,
        checked_server(state=shared) as other,
        sdk(runner) as first,
        sdk(other) as second,
    ):
        # Pictures: each line is rendered off the loop (~30 ms), so requests come in between them.
        created = create(first, image_lines(40), "/v1/images/generations")
        batch = first.batches.retrieve(created.id)
        assert batch.status == "in_progress"
        ran: dict[str, int] = {}

        def answer_lines() -> None:
            # (a failing test stops the servers under it: no unhandled error in the thread)
            with contextlib.suppress(httpx.HTTPError):
                answered = httpx.get(f"{runner.url}/batches/{batch.id}", timeout=30)
                ran["status"] = answered.status_code

        answering = threading.Thread(target=answer_lines)
        answering.start()
        deadline = time.monotonic() + 5
        while not journaled_lines(runner, batch.id) and time.monotonic() < deadline:
            time.sleep(0.002)
        # Polls of the other worker while `runner` answers the lines move nothing, nor the clock.
        before = second.files.create(file=("a.txt", b"a"), purpose="user_data")
        for _ in range(3):
            assert second.batches.retrieve(batch.id).status == "in_progress"
        after = second.files.create(file=("b.txt", b"b"), purpose="user_data")
        assert after.created_at == before.created_at + 1
        assert second.batches.cancel(batch.id).status == "cancelling"
        state = redis_py.Redis(port=redis.port)
        state.config_set("maxmemory", 1)  # (every write refused: the answers cannot be kept)
        try:
            answering.join(timeout=30)
            assert ran == {"status": 503}  # (the race this test is about: lines still running)
        finally:
            state.config_set("maxmemory", 0)
            state.close()
        ended = first.batches.retrieve(batch.id)
        assert ended.status == "cancelled" and ended.cancelled_at is not None
        assert (ended.output_file_id, ended.error_file_id) == (None, None)
        assert second.batches.retrieve(batch.id).status == "cancelled"


# --- a reset stops the lines of a batch being answered ------------------------------------------


def test_a_reset_stops_the_lines_of_a_batch_being_answered() -> None:
    with checked_server() as running, sdk(running) as client:
        reset_while_answered(running, running, client, after=1)


def test_with_redis_a_reset_on_another_server_stops_the_lines_it_answers(
    redis: RedisServer,
) -> None:
    """The server answering the lines never sees the reset itself (another worker took it):
    the batch's record, gone from the shared state, stops them."""
    state = redis.url()
    with (
        checked_server(state=state) as answering,
        MockServer(state=state, log_requests=False) as other,
        sdk(answering) as client,
    ):
        reset_while_answered(answering, other, client, after=2)


def reset_while_answered(
    answering: MockServer, resetting: MockServer, client: openai.OpenAI, after: int
) -> None:
    """A reset (between tests) forgot the batch, but its lines went on being answered after it:
    journaled (pushing the next test's requests out) and counted against the scenario's rules
    (`sequence` steps and `times` used up before the next test sent anything)."""
    batch = client.batches.retrieve(create(client, image_lines(30), "/v1/images/generations").id)
    assert batch.status == "in_progress"
    ended: dict[str, Any] = {}

    def retrieve() -> None:  # (this retrieval answers the lines; the reset forgets the batch)
        try:
            ended["batch"] = client.batches.retrieve(batch.id)
        except openai.NotFoundError as error:
            ended["error"] = error

    runner = threading.Thread(target=retrieve)
    runner.start()
    deadline = time.monotonic() + 5
    while not journaled_lines(answering, batch.id) and time.monotonic() < deadline:
        time.sleep(0.002)
    resetting.reset()
    runner.join(timeout=30)
    assert not runner.is_alive()
    # What came after the reset: at most the lines under way when it came, none of the rest.
    assert journaled_lines(answering, batch.id) <= after
    assert "error" in ended  # the batch is gone: the API's 404
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve(batch.id)
