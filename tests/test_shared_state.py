"""One state for many workers: the same behaviour tests against three servers.

- `memory`: the default in-process state (a MockServer);
- `redis`: a MockServer with `state=redis://...` (a real redis-server on a free loopback port);
- `workers`: `mockai serve --workers 3 --state redis://...`, driven over a new connection per
  request, so consecutive requests land on different processes (checked: several pids answer).

Each test must pass identically on all three: rules added through the admin API, sequences and
`times`, rate-limit budgets, stored responses, conversations, stored completions, files,
batches, pictures answered by URL, ids, the journal and reset behave as one server.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from service_support import RedisServer, ServeProcess, fresh_connections, worker_pids

from mockai import MockServer

MODEL = "gpt-4o-mini"
BUDGET_MODEL = "gpt-4o"  # the only model with a budget: 5 requests a minute
SCENARIO = """\
mockai: 1
fallback: generate
rules:
  - name: flaky
    match: {user: flaky}
    sequence:
      - error: rate_limit
      - error: {status: 503}
      - reply: {content: recovered}
  - name: twice
    match: {user: twice}
    times: 2
    reply: {content: limited}
"""
OPTIONS = {"limits": f"{BUDGET_MODEL}:rpm=5", "fallback": "generate"}


@dataclass
class Target:
    """A running server, as the tests reach it."""

    kind: str
    base_url: str

    @property
    def url(self) -> str:
        return self.base_url + "/v1"

    def sdk(self) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.url, api_key="sk-test", max_retries=0, http_client=fresh_connections()
        )

    def admin(self) -> httpx.Client:
        client = fresh_connections()
        client.base_url = httpx.URL(self.base_url + "/_mockai")
        return client


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shared") / "rules.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture(scope="module", params=["memory", "redis", "workers"])
def target(
    request: pytest.FixtureRequest, redis: RedisServer, scenario_file: Path
) -> Iterator[Target]:
    kind = request.param
    if kind == "workers":
        args = ["--workers", "3", "--state", redis.url(), "--scenario", str(scenario_file)]
        args += ["--limits", OPTIONS["limits"], "--fallback", "generate", "--quiet"]
        with ServeProcess(args) as served:
            yield Target(kind, served.base_url)
        return
    state = redis.url() if kind == "redis" else None
    with MockServer(
        scenarios=(str(scenario_file),), state=state, log_requests=False, **OPTIONS
    ) as server:
        yield Target(kind, server.base_url)


@pytest.fixture(autouse=True)
def _fresh_state(target: Target) -> None:
    with target.admin() as admin:
        assert admin.post("/reset").json() == {"reset": True}


def _ask(client: openai.OpenAI, text: str, model: str = MODEL) -> str:
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}]
    )
    return answer.choices[0].message.content or ""


def test_the_workers_target_spans_several_processes(target: Target) -> None:
    pids = worker_pids(target.base_url)
    assert len(pids) == (3 if target.kind == "workers" else 1)


def test_a_rule_added_over_http_answers_on_every_worker(target: Target) -> None:
    with target.admin() as admin, target.sdk() as client:
        added = admin.post("/rules", json={"name": "hello", "match": {"user": "hi"}, "reply": "yo"})
        assert added.status_code == 200, added.text
        assert [_ask(client, "hi there") for _ in range(6)] == ["yo"] * 6
        listed = {rule["name"]: rule for rule in admin.get("/rules").json()["data"]}
        assert listed["hello"]["served"] == 6
        assert admin.delete("/rules/hello").json() == {"deleted": "hello"}
        assert all(_ask(client, "hi there") != "yo" for _ in range(4))
        assert "hello" not in {rule["name"] for rule in admin.get("/rules").json()["data"]}


def test_default_rule_names_are_unique_across_workers(target: Target) -> None:
    with target.admin() as admin:
        names = [
            admin.post("/rules", json={"match": {"user": f"n{i}"}, "reply": "x"}).json()["data"][0][
                "name"
            ]
            for i in range(5)
        ]
        assert len(set(names)) == 5
        assert admin.delete("/rules").json() == {"deleted": 5}


def test_a_sequence_advances_once_per_call_whichever_worker_answers(target: Target) -> None:
    with target.sdk() as client:
        with pytest.raises(openai.RateLimitError):
            _ask(client, "flaky call")
        with pytest.raises(openai.InternalServerError) as failed:
            _ask(client, "flaky call")
        assert failed.value.status_code == 503
        assert [_ask(client, "flaky call") for _ in range(3)] == ["recovered"] * 3


def test_times_is_one_count_under_concurrency(target: Target) -> None:
    with target.sdk() as client, concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _ask(client, "twice please"), range(8)))
    assert answers.count("limited") == 2


def test_the_rate_limit_budget_is_one_budget(target: Target) -> None:
    statuses, remaining = [], []
    with fresh_connections() as http:
        for _ in range(9):
            answer = http.post(
                target.url + "/chat/completions",
                json={"model": BUDGET_MODEL, "messages": [{"role": "user", "content": "budget"}]},
            )
            statuses.append(answer.status_code)
            remaining.append(answer.headers.get("x-ratelimit-remaining-requests"))
            if answer.status_code == 429:
                assert answer.json()["error"]["code"] == "rate_limit_exceeded"
                assert float(answer.headers["retry-after-ms"]) > 0
    assert statuses == [200] * 5 + [429] * 4
    assert remaining[:5] == ["4", "3", "2", "1", "0"]


def test_identical_requests_get_distinct_ids_across_workers(target: Target) -> None:
    with target.sdk() as client:
        made = [
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "same question"}]
            ).id
            for _ in range(6)
        ]
    assert len(set(made)) == 6


def test_stored_responses_are_one_store(target: Target) -> None:
    with target.sdk() as client:
        first = client.responses.create(model=MODEL, input="remember me")
        assert {client.responses.retrieve(first.id).id for _ in range(4)} == {first.id}
        items = client.responses.input_items.list(first.id)
        assert [item.type for item in items.data] == ["message"]
        chained = client.responses.create(
            model=MODEL, input="and then?", previous_response_id=first.id
        )
        assert client.responses.retrieve(chained.id).previous_response_id == first.id
        unstored = client.responses.create(model=MODEL, input="forget me", store=False)
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(model=MODEL, input="x", previous_response_id=unstored.id)
        assert "store: false" in refused.value.message
        assert client.responses.delete(first.id) is None
        for _ in range(3):
            with pytest.raises(openai.NotFoundError):
                client.responses.retrieve(first.id)


def test_a_background_run_advances_one_step_per_retrieval(target: Target) -> None:
    with target.sdk() as client:
        queued = client.responses.create(model=MODEL, input="slow job", background=True)
        assert queued.status == "queued"
        stages = [client.responses.retrieve(queued.id).status for _ in range(3)]
    assert stages == ["in_progress", "completed", "completed"]


def test_conversations_are_one_store(target: Target) -> None:
    with target.sdk() as client:
        conversation = client.conversations.create(
            items=[{"type": "message", "role": "user", "content": "hello"}],
            metadata={"topic": "demo"},
        )
        client.responses.create(model=MODEL, input="next turn", conversation=conversation.id)
        listed = client.conversations.items.list(conversation.id, order="asc")
        texts = [item.content[0].text for item in listed.data if item.type == "message"]
        assert texts[:2] == ["hello", "next turn"]
        assert len(listed.data) == 3  # the two messages and the answer
        client.conversations.update(conversation.id, metadata={"topic": "changed"})
        assert client.conversations.retrieve(conversation.id).metadata == {"topic": "changed"}
        client.conversations.delete(conversation.id)
        with pytest.raises(openai.NotFoundError):
            client.conversations.retrieve(conversation.id)


def test_stored_chat_completions_are_one_store(target: Target) -> None:
    with target.sdk() as client:
        made = [
            client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": f"keep {i}"}],
                store=True,
                metadata={"run": "a"},
            ).id
            for i in range(3)
        ]
        listed = client.chat.completions.list(metadata={"run": "a"})
        assert [c.id for c in listed.data] == made
        client.chat.completions.update(made[0], metadata={"run": "b"})
        assert client.chat.completions.retrieve(made[0]).metadata == {"run": "b"}
        client.chat.completions.delete(made[1])
        assert [c.id for c in client.chat.completions.list(metadata={"run": "a"}).data] == [made[2]]


def test_the_journal_holds_every_workers_requests_and_pages(target: Target) -> None:
    with target.sdk() as client:
        for i in range(7):
            _ask(client, f"journal {i}")
    with target.admin() as admin:
        newest = admin.get("/requests", params={"limit": 3}).json()
        assert len(newest["data"]) == 3 and newest["has_more"] is True
        assert [e["body"]["messages"][0]["content"] for e in newest["data"]] == [
            "journal 4",
            "journal 5",
            "journal 6",
        ]
        seen, after = [], 0
        while True:
            page = admin.get("/requests", params={"limit": 2, "after": after}).json()
            seen += page["data"]
            after = page["last_seq"]
            if not page["has_more"]:
                break
        assert [e["body"]["messages"][0]["content"] for e in seen] == [
            f"journal {i}" for i in range(7)
        ]
        assert [e["seq"] for e in seen] == sorted({e["seq"] for e in seen})
        assert all(e["status"] == 200 and e["duration_ms"] > 0 for e in seen)
        # Each entry as answered, whichever worker asks (a JSON answer is published once,
        # complete, just before it goes out): the headers sent, the rule that answered.
        for entry in seen:
            sent = entry["response_headers"]
            assert sent["x-request-id"] == entry["request_id"] and "openai-processing-ms" in sent
            assert sent["x-ratelimit-limit-requests"] and entry["source"] == "generator"
        bad = admin.get("/requests", params={"after": "yesterday"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "after"
        # No entries asked for: whether there are any (Redis said there were none).
        none = admin.get("/requests", params={"limit": 0}).json()
        assert none["data"] == [] and none["has_more"] is True


def test_reset_forgets_everything_on_every_worker(target: Target) -> None:
    with target.admin() as admin, target.sdk() as client:
        admin.post("/rules", json={"name": "temp", "match": {"user": "temp"}, "reply": "t"})
        kept = client.responses.create(model=MODEL, input="kept")
        for _ in range(5):
            _ask(client, "use budget", model=BUDGET_MODEL)
        assert admin.post("/reset").json() == {"reset": True}
        # Runtime rules stay (reset forgets what was served, not what was scripted)...
        assert [r["served"] for r in admin.get("/rules").json()["data"] if r["name"] == "temp"] == [
            0
        ]
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(kept.id)
        _ask(client, "budget is back", model=BUDGET_MODEL)
        journal = admin.get("/requests").json()["data"]
        assert [e["path"] for e in journal] == [f"/v1/responses/{kept.id}", "/v1/chat/completions"]


# --- the media stores: files, batches, pictures answered by URL ---------------------------------


def test_files_are_one_store(target: Target) -> None:
    with target.sdk() as client:
        made = [
            client.files.create(file=(f"notes-{i}.txt", f"note {i}".encode()), purpose="user_data")
            for i in range(4)
        ]
        assert len({f.id for f in made}) == 4
        assert [f.created_at for f in made] == sorted(f.created_at for f in made)
        assert [f.id for f in client.files.list(order="asc").data] == [f.id for f in made]
        for i, uploaded in enumerate(made):  # each read on whichever worker the connection hits
            assert client.files.retrieve(uploaded.id).filename == f"notes-{i}.txt"
            assert client.files.content(uploaded.id).content == f"note {i}".encode()
        assert client.files.delete(made[0].id).deleted is True
        for _ in range(3):
            with pytest.raises(openai.NotFoundError):
                client.files.retrieve(made[0].id)
        assert [f.id for f in client.files.list(order="asc").data] == [f.id for f in made[1:]]
    with target.admin() as admin:
        admin.post("/reset")
    with target.sdk() as client:
        assert client.files.list().data == []


def _batch_line(custom_id: str, text: str) -> dict[str, object]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": MODEL, "messages": [{"role": "user", "content": text}]},
    }


def test_a_batch_is_answered_once_whichever_worker_is_polled(target: Target) -> None:
    lines = [_batch_line(f"line-{i}", "flaky line") for i in range(5)]
    data = "\n".join(json.dumps(line) for line in lines).encode() + b"\n"
    with target.sdk() as client:
        upload = client.files.create(file=("in.jsonl", data), purpose="batch")
        batch = client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        seen = [batch.status]
        # A poll on the worker answering the lines waits for them; polls on the others show
        # the batch as it stands meanwhile: bounded, never slept on.
        deadline = time.monotonic() + 60
        while seen[-1] not in ("completed", "failed", "cancelled") and time.monotonic() < deadline:
            seen.append(client.batches.retrieve(batch.id).status)
        done = client.batches.retrieve(batch.id)
        assert done.status == "completed", seen
        statuses = [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
        assert statuses == ["validating", "in_progress", "finalizing", "completed"]
        counts = done.request_counts
        assert counts is not None and (counts.total, counts.completed, counts.failed) == (5, 3, 2)
        # The sequence's steps went to the lines in file order, each line answered once.
        errors = [
            json.loads(x) for x in client.files.content(done.error_file_id or "").text.splitlines()
        ]
        outputs = client.files.content(done.output_file_id or "").text.splitlines()
        assert [(e["custom_id"], e["response"]["status_code"]) for e in errors] == [
            ("line-0", 429),
            ("line-1", 503),
        ]
        assert [json.loads(x)["custom_id"] for x in outputs] == ["line-2", "line-3", "line-4"]
        assert all(
            json.loads(x)["response"]["body"]["choices"][0]["message"]["content"] == "recovered"
            for x in outputs
        )
        assert {b.id: b.status for b in client.batches.list().data} == {batch.id: "completed"}
    with target.admin() as admin:
        journal = admin.get("/requests").json()["data"]
        answered = [e for e in journal if e.get("batch") == batch.id]
        assert len(answered) == 5  # once each, on one worker


def test_a_batch_cancelled_on_one_worker_is_cancelled_on_every_other(target: Target) -> None:
    data = json.dumps(_batch_line("only", "hello")).encode() + b"\n"
    with target.sdk() as client:
        upload = client.files.create(file=("in.jsonl", data), purpose="batch")
        batch = client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert client.batches.cancel(batch.id).status == "cancelling"
        with pytest.raises(openai.ConflictError):
            client.batches.cancel(batch.id)
        assert client.batches.retrieve(batch.id).status == "cancelled"
        assert {client.batches.retrieve(batch.id).status for _ in range(4)} == {"cancelled"}


def test_a_picture_link_works_on_every_worker(target: Target) -> None:
    with target.sdk() as client:
        made = client.images.generate(
            model="dall-e-2", prompt="a red square", size="256x256", response_format="url"
        )
    assert made.data is not None and made.data[0].url is not None
    link = made.data[0].url
    with fresh_connections() as http:
        fetched = [http.get(link) for _ in range(6)]
        assert [f.status_code for f in fetched] == [200] * 6
        assert {f.content[:8] for f in fetched} == {b"\x89PNG\r\n\x1a\n"}
        with target.admin() as admin:
            admin.post("/reset")
        # The picture is gone everywhere, the link still the server's own: the blob's 404.
        gone = [http.get(link) for _ in range(3)]
        assert [g.status_code for g in gone] == [404] * 3
        assert all(b"BlobNotFound" in g.content for g in gone)


def test_concurrent_polls_move_a_batch_once(target: Target) -> None:
    lines = [_batch_line(f"line-{i}", f"question {i}") for i in range(6)]
    data = "\n".join(json.dumps(line) for line in lines).encode() + b"\n"
    with target.sdk() as client:
        upload = client.files.create(file=("in.jsonl", data), purpose="batch")
        batch = client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )

        def poll(_: int) -> list[str]:
            seen: list[str] = []
            deadline = time.monotonic() + 60
            while not seen or seen[-1] not in ("completed", "failed", "cancelled"):
                assert time.monotonic() < deadline, seen
                seen.append(client.batches.retrieve(batch.id).status)
            return seen

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            polled = list(pool.map(poll, range(8)))
        assert all(seen[-1] == "completed" for seen in polled)
        done = client.batches.retrieve(batch.id)
        times = [done.in_progress_at, done.finalizing_at, done.completed_at]
        assert done.created_at < (times[0] or 0) < (times[1] or 0) < (times[2] or 0)
        # One output file (every line answered once), no error file, nothing written twice.
        assert done.error_file_id is None and done.output_file_id is not None
        outputs = client.files.content(done.output_file_id).text.splitlines()
        assert sorted(json.loads(x)["custom_id"] for x in outputs) == [
            f"line-{i}" for i in range(6)
        ]
        assert {f.id for f in client.files.list().data} == {upload.id, done.output_file_id}
    with target.admin() as admin:
        journal = admin.get("/requests").json()["data"]
        assert len([e for e in journal if e.get("batch") == batch.id]) == 6


def test_a_batch_of_inputs_is_answered_input_by_input_on_shared_counts(target: Target) -> None:
    pinned = [
        {
            "name": "pin-alpha",
            "match": {"endpoint": "embeddings", "user": {"equals": "alpha"}},
            "times": 1,
            "reply": {"vector": [1.0, 0.0, 0.0]},
        },
        {
            "name": "pin-beta",
            "match": {"endpoint": "embeddings", "user": {"startswith": "beta"}},
            "reply": {"vector": [0.0, 0.6, 0.8]},
        },
    ]

    def vectors(client: openai.OpenAI, inputs: list[str]) -> list[list[float]]:
        answer = client.embeddings.create(
            model="text-embedding-3-small", input=inputs, encoding_format="float"
        )
        return [item.embedding for item in answer.data]

    with target.admin() as admin, target.sdk() as client:
        assert admin.post("/rules", json=pinned).status_code == 200
        try:
            first = vectors(client, ["alpha", "beta one", "gamma"])
            assert first[:2] == [[1.0, 0.0, 0.0], [0.0, 0.6, 0.8]] and len(first[2]) > 3
            # `times: 1` is used up on every worker: alpha is generated now, beta still pinned.
            second = vectors(client, ["alpha", "beta two"])
            assert len(second[0]) > 3 and second[1] == [0.0, 0.6, 0.8]
            served = {r["name"]: r["served"] for r in admin.get("/rules").json()["data"]}
            assert (served["pin-alpha"], served["pin-beta"]) == (1, 2)
        finally:
            admin.delete("/rules")


def test_many_literal_rules_answer_by_their_text_with_times_counted_once(target: Target) -> None:
    """Thirty `user: contains` rules (the rule index narrows them, shared or not): each text is
    answered by its own rule, an ungated rule in the middle still answers what it matches, and
    a `times: 1` rule is used up once across the workers."""
    rules: list[dict[str, object]] = [
        {"name": f"topic-{i}", "match": {"user": f"topic {i:02d}!"}, "reply": f"answer {i}"}
        for i in range(30)
    ]
    rules.insert(15, {"name": "regex", "match": {"user": {"regex": "^zebra"}}, "reply": "stripes"})
    rules.insert(0, {"name": "once", "match": {"user": "only once"}, "times": 1, "reply": "first"})
    with target.admin() as admin, target.sdk() as client:
        assert admin.post("/rules", json=rules).status_code == 200
        try:
            assert [_ask(client, f"about topic {i:02d}!") for i in (29, 0, 17)] == [
                "answer 29",
                "answer 0",
                "answer 17",
            ]
            # File order decides, ungated rule or not: it comes after topic 03 and before topic 20.
            assert _ask(client, "zebra crossing") == "stripes"
            assert _ask(client, "zebra crossing, topic 20!") == "stripes"
            assert _ask(client, "zebra crossing, topic 03!") == "answer 3"
            assert [_ask(client, "only once, topic 05!") for _ in range(3)] == [
                "first",
                "answer 5",
                "answer 5",
            ]
            served = {rule["name"]: rule["served"] for rule in admin.get("/rules").json()["data"]}
            assert served["once"] == 1 and served["topic-5"] == 2 and served["regex"] == 2
        finally:
            admin.delete("/rules")  # (a reset keeps runtime rules)
