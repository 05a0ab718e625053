"""Files through the real SDK: upload, list by purpose (paged), retrieve, content, delete."""

from __future__ import annotations

import httpx
import openai
import pytest

from mockai import MockServer


def test_upload_retrieve_download_delete(client: openai.OpenAI) -> None:
    uploaded = client.files.create(file=("notes.txt", b"hello, files"), purpose="user_data")
    assert uploaded.id.startswith("file-") and uploaded.object == "file"
    assert (uploaded.filename, uploaded.bytes, uploaded.purpose) == ("notes.txt", 12, "user_data")
    assert uploaded.status == "processed" and uploaded.expires_at is None
    assert client.files.wait_for_processing(uploaded.id).id == uploaded.id  # at once
    assert client.files.retrieve(uploaded.id) == uploaded
    assert client.files.content(uploaded.id).read() == b"hello, files"
    deleted = client.files.delete(uploaded.id)
    assert (deleted.id, deleted.deleted) == (uploaded.id, True)
    with pytest.raises(openai.NotFoundError) as missing:
        client.files.retrieve(uploaded.id)
    assert missing.value.body["message"] == f"No such File object: {uploaded.id}"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.files.content(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(uploaded.id)


def test_list_pages_and_filters_by_purpose(client: openai.OpenAI) -> None:
    made = [
        client.files.create(
            file=(f"f{i}.jsonl", b"{}\n"), purpose="batch" if i % 2 else "fine-tune"
        )
        for i in range(7)
    ]
    newest_first = [f.id for f in reversed(made)]
    assert [f.id for f in client.files.list().data] == newest_first
    # The SDK's auto-pagination follows `after` across pages of 2.
    assert [f.id for f in client.files.list(limit=2)] == newest_first
    first_page = client.files.list(limit=2)
    assert first_page.has_more and len(first_page.data) == 2
    batch = [f.id for f in client.files.list(purpose="batch")]
    assert batch == [f.id for f in reversed(made) if f.purpose == "batch"]
    oldest = client.files.list(order="asc", limit=1).data[0]
    assert oldest.id == made[0].id
    created = [f.created_at for f in made]
    assert created == sorted(created) and len(set(created)) == 7


def test_batch_files_expire_in_30_days_and_expiry_can_be_set(client: openai.OpenAI) -> None:
    batch = client.files.create(file=("in.jsonl", b"{}\n"), purpose="batch")
    assert batch.expires_at == batch.created_at + 30 * 24 * 3600
    kept = client.files.create(
        file=("in.jsonl", b"{}\n"),
        purpose="user_data",
        expires_after={"anchor": "created_at", "seconds": 7200},
    )
    assert kept.expires_at == kept.created_at + 7200


@pytest.mark.parametrize(
    ("name", "purpose", "extra", "message"),
    [
        ("data.csv", "batch", {}, "Invalid file format for Batch API. Must be .jsonl"),
        ("data.txt", "fine-tune", {}, "Invalid file format for Fine-Tuning API. Must be .jsonl"),
        ("a.txt", "wallpaper", {}, "Supported values are"),
        (
            "a.txt",
            "user_data",
            {"expires_after": {"anchor": "created_at", "seconds": 60}},
            "between 3600 and 2592000",
        ),
    ],
)
def test_uploads_the_api_refuses(
    client: openai.OpenAI, name: str, purpose: str, extra: dict[str, object], message: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=(name, b"x"), purpose=purpose, **extra)  # type: ignore[arg-type]
    assert message in refused.value.message


def test_hostile_and_half_forms_get_clear_errors(server: MockServer) -> None:
    no_boundary = httpx.post(
        server.url + "/files",
        content=b"--x\r\n",
        headers={"Content-Type": "multipart/form-data"},
    )
    assert no_boundary.status_code == 400
    assert "no boundary" in no_boundary.json()["error"]["message"]
    cut = httpx.post(
        server.url + "/files",
        content=b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert cut.status_code == 400
    assert cut.json()["error"]["message"].startswith("Could not parse multipart form")
    no_file = httpx.post(server.url + "/files", data={"purpose": "batch"}, files={"x": b""})
    assert no_file.status_code == 400
    assert no_file.json()["error"]["param"] == "file"
    empty = httpx.post(server.url + "/files")
    assert empty.status_code == 400
    assert empty.json()["error"]["message"] == "Missing required parameter: 'file'."
    empty_batch = httpx.post(server.url + "/batches")
    assert empty_batch.status_code == 400
    text_file = httpx.post(server.url + "/files", data={"purpose": "batch", "file": "abc"})
    assert text_file.status_code == 400
    assert "multipart/form-data" in text_file.json()["error"]["message"]
    # The journal keeps a form's fields and each file's summary, never its bytes.
    httpx.post(server.url + "/files", data={"purpose": "vision"}, files={"file": ("a.png", b"PNG")})
    body = server.requests[-1].body
    assert body["file"]["filename"] == "a.png" and body["file"]["bytes"] == 3
    assert len(body["file"]["sha256"]) == 64


def test_rules_and_faults_apply_to_file_routes(client: openai.OpenAI, server: MockServer) -> None:
    server.add_rule(
        {
            "match": {"endpoint": "files", "file": {"endswith": ".pdf"}},
            "error": {"status": 413, "message": "Too big for this test"},
        }
    )
    with pytest.raises(openai.APIStatusError) as refused:
        client.files.create(file=("big.pdf", b"%PDF"), purpose="assistants")
    assert refused.value.status_code == 413
    uploaded = client.files.create(file=("ok.txt", b"fine"), purpose="assistants")
    with openai.OpenAI(base_url=server.url, api_key="k", max_retries=1) as retrying:
        again = retrying.files.retrieve(
            uploaded.id, extra_headers={"x-mockai-fault": "server_error;attempts=1"}
        )
    assert again.id == uploaded.id
    sources = [(e.method, e.status, e.source) for e in server.requests]
    assert sources[-3:] == [
        ("POST", 200, "store"),
        ("GET", 500, "fault"),
        ("GET", 200, "store"),
    ]


def test_sync_raw_responses(client: openai.OpenAI) -> None:
    raw = client.files.with_raw_response.create(file=("a.txt", b"abc"), purpose="user_data")
    assert raw.status_code == 200 and raw.headers["x-request-id"].startswith("req_")
    listed = client.files.with_raw_response.list(purpose="user_data")
    assert [f.id for f in listed.parse().data] == [raw.parse().id]
    content = client.files.with_raw_response.content(raw.parse().id)
    assert content.headers["content-type"] == "application/octet-stream"
    assert content.content == b"abc"


def test_a_reset_forgets_files() -> None:
    with MockServer() as server, openai.OpenAI(base_url=server.url, api_key="k") as sdk:
        uploaded = sdk.files.create(file=("a.txt", b"a"), purpose="user_data")
        server.reset()
        assert sdk.files.list().data == []
        with pytest.raises(openai.NotFoundError):
            sdk.files.retrieve(uploaded.id)


@pytest.mark.asyncio
async def test_async_and_raw(aclient: openai.AsyncOpenAI) -> None:
    raw = await aclient.files.with_raw_response.create(
        file=("a.jsonl", b'{"a": 1}\n'), purpose="evals"
    )
    assert raw.status_code == 200 and raw.headers["x-request-id"].startswith("req_")
    uploaded = raw.parse()
    listed = [f.id async for f in aclient.files.list(purpose="evals")]
    assert listed == [uploaded.id]
    content = await aclient.files.content(uploaded.id)
    assert content.read() == b'{"a": 1}\n'


def test_file_routes_spend_no_rate_limit_budget() -> None:
    with (
        MockServer(limits="rpm=2") as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as sdk,
    ):
        for _ in range(4):
            sdk.files.list()
        hello = [{"role": "user", "content": "hi"}]
        sdk.chat.completions.create(model="gpt-4o-mini", messages=hello)  # type: ignore[arg-type]
        sdk.chat.completions.create(model="gpt-4o-mini", messages=hello)  # type: ignore[arg-type]
        with pytest.raises(openai.RateLimitError):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=hello)  # type: ignore[arg-type]
