"""Chat completions kept with `store: true`, through the real SDK: list (filtered, paged),
retrieve, update, delete, and the stored messages. (`server`, `client`: the conftest's.)"""

from __future__ import annotations

import openai
import pytest

from mockai import MockServer

MODEL = "gpt-4o-mini"


def _ask(client: openai.OpenAI, text: str, **options: object) -> str:
    answer = client.chat.completions.create(
        model=options.pop("model", MODEL),  # type: ignore[arg-type]
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
        **options,  # type: ignore[arg-type]
    )
    return answer.id


def test_only_store_true_is_kept_and_listed_oldest_first(client: openai.OpenAI) -> None:
    kept = [_ask(client, f"question {i}", store=True) for i in range(3)]
    _ask(client, "not kept")
    _ask(client, "not kept either", store=False)
    listed = client.chat.completions.list()
    assert [c.id for c in listed.data] == kept and not listed.has_more
    assert [c.id for c in client.chat.completions.list(order="desc")] == kept[::-1]
    first_page = client.chat.completions.list(limit=2)
    assert [c.id for c in first_page.data] == kept[:2] and first_page.has_more
    assert [c.id for c in client.chat.completions.list(limit=1)] == kept  # auto-paging


def test_filters_by_model_and_metadata(client: openai.OpenAI) -> None:
    a = _ask(client, "a", store=True, metadata={"run": "1", "team": "x"})
    b = _ask(client, "b", store=True, metadata={"run": "2", "team": "x"}, model="gpt-4o")
    assert [c.id for c in client.chat.completions.list(model="gpt-4o").data] == [b]
    assert [c.id for c in client.chat.completions.list(metadata={"team": "x"}).data] == [a, b]
    assert [c.id for c in client.chat.completions.list(metadata={"run": "1"}).data] == [a]


def test_the_model_a_kept_completion_names_filters_it(client: openai.OpenAI) -> None:
    """A completion asked of an alias names its snapshot (as listed and retrieved): filtering the
    list by that name finds it, as filtering by the alias does (it found none)."""
    kept = _ask(client, "which model?", store=True)
    shown = client.chat.completions.retrieve(kept).model
    assert shown == "gpt-4o-mini-2024-07-18"
    assert [c.id for c in client.chat.completions.list(model=shown)] == [kept]
    assert [c.id for c in client.chat.completions.list(model=MODEL)] == [kept]
    assert [c.id for c in client.chat.completions.list(model="gpt-4o-2024-08-06")] == []


def test_retrieve_shows_the_answer_json_or_streamed(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], store=True, metadata={"k": "v"}
    )
    stored = client.chat.completions.retrieve(answer.id)
    assert stored.choices[0].message.content == answer.choices[0].message.content
    assert stored.metadata == {"k": "v"}
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "weather in Oslo"}],
            tools=[
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                            "required": ["city"],
                        },
                    },
                }
            ],
            tool_choice="required",
            stream=True,
            stream_options={"include_usage": True},
            store=True,
        )
    )
    rebuilt = client.chat.completions.retrieve(chunks[0].id)
    (call,) = rebuilt.choices[0].message.tool_calls or []
    streamed_arguments = "".join(
        tc.function.arguments or ""
        for c in chunks
        if c.choices
        for tc in c.choices[0].delta.tool_calls or []
        if tc.function
    )
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert call.function.arguments == streamed_arguments  # type: ignore[union-attr]
    assert rebuilt.choices[0].finish_reason == "tool_calls"
    assert rebuilt.usage is not None and rebuilt.usage == chunks[-1].usage


def test_update_delete_and_messages(client: openai.OpenAI) -> None:
    kept = _ask(client, "What is an otter?", store=True, metadata={"stage": "draft"})
    updated = client.chat.completions.update(kept, metadata={"stage": "reviewed"})
    assert updated.metadata == {"stage": "reviewed"}
    assert [c.id for c in client.chat.completions.list(metadata={"stage": "reviewed"})] == [kept]
    messages = client.chat.completions.messages.list(kept)
    assert [(m.role, m.content) for m in messages.data] == [  # type: ignore[attr-defined]
        ("system", "Be brief."),
        ("user", "What is an otter?"),
    ]
    assert [m.id for m in messages.data] == [f"{kept}-0", f"{kept}-1"]
    deleted = client.chat.completions.delete(kept)
    assert (deleted.id, deleted.deleted, deleted.object) == (kept, True, "chat.completion.deleted")
    with pytest.raises(openai.NotFoundError, match=kept):
        client.chat.completions.retrieve(kept)
    assert client.chat.completions.list().data == []


def test_reset_forgets_stored_completions(server: MockServer, client: openai.OpenAI) -> None:
    kept = _ask(client, "x", store=True)
    server.reset()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.retrieve(kept)


def test_a_list_page_shows_only_its_own_completions(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every kept completion was shown (its answer parsed, a streamed one's every chunk) for
    # each page: 1,000 streamed ones held the server ~0.5 s a page of 20.
    from mockai.stores import completions

    shown: list[str | None] = []
    real = completions.completion_of

    def counted(answer: object, **options: bool) -> object:
        found = real(answer, **options)  # type: ignore[arg-type]
        shown.append(found and found.get("id"))
        return found

    with (
        MockServer(log_requests=False) as server,
        openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client,
    ):
        kept = [_ask(client, f"q {i}", store=True) for i in range(6)]
        for i in range(6):  # streamed ones, whose showing costs the most
            with client.chat.completions.stream(
                model=MODEL, messages=[{"role": "user", "content": f"s {i}"}], store=True
            ) as stream:
                kept.append(stream.get_final_completion().id)
        monkeypatch.setattr(completions, "completion_of", counted)
        page = client.chat.completions.list(limit=3, after=kept[4], metadata={})
        assert [c.id for c in page.data] == kept[5:8] and page.has_more
        assert shown == kept[5:8]
        assert page.data[0] == client.chat.completions.retrieve(kept[5])
        assert [c.id for c in client.chat.completions.list(limit=5, order="desc")] == kept[::-1]
