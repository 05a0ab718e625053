"""Properties of the hot path's shortcuts: each gives exactly what the plain computation gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mockai.api.chat import _views
from mockai.delivery.ratelimit import _reset_text
from mockai.delivery.timing import go_duration
from mockai.pipeline.exchange import Message

ROLES = ("system", "developer", "user", "assistant", "tool", "function")


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(ROLES), st.text(max_size=20)), max_size=12))
def test_the_match_views_are_the_last_user_text_the_joined_system_texts_and_the_last_tool_result(
    turns: list[tuple[str, str]],
) -> None:
    messages = tuple(Message(role=role, text=text) for role, text in turns)
    users = [m.text for m in messages if m.role == "user"]
    tools = [m.text for m in messages if m.role in ("tool", "function")]
    system = "\n".join(m.text for m in messages if m.role in ("system", "developer"))
    assert _views(messages) == (users[-1] if users else "", system, tools[-1] if tools else None)


@settings(max_examples=500)
@given(st.floats(min_value=-10, max_value=100_000, allow_nan=False))
def test_a_cached_reset_time_reads_as_go_duration_writes_it(seconds: float) -> None:
    assert _reset_text(seconds) == go_duration(seconds)
