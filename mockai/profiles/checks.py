"""Request checks the providers share: a field they refuse, fields they do not know."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Any

from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint
from mockai.profiles.base import Json
from mockai.profiles.hooks import Check

# Builds the provider's error for a refused field: (where, e.g. `logprobs` or
# `messages[0].name`; the value) -> the ApiError.
Refusal = Callable[[str, Any], ApiError]


def forbid(
    name: str, refuse: Refusal, *, unless: Callable[[Any], bool] = lambda v: v is None
) -> Check:
    """A top-level field the provider refuses (unless its value passes `unless`)."""

    def check(endpoint: Endpoint, body: Json) -> None:
        if name in body and not unless(body[name]):
            raise refuse(name, body[name])

    return check


def forbid_in_messages(name: str, refuse: Refusal, roles: Collection[str] | None = None) -> Check:
    """A field of chat messages the provider refuses (in messages of `roles`, or any)."""

    def check(endpoint: Endpoint, body: Json) -> None:
        for index, message in _messages(body):
            if name in message and (roles is None or message.get("role") in roles):
                raise refuse(f"messages[{index}].{name}", message[name])

    return check


def unknown_fields(known: Collection[str], refuse: Callable[[list[str], Json], ApiError]) -> Check:
    """Every top-level field outside `known` is refused (all of them named in one error)."""
    allowed = frozenset(known)

    def check(endpoint: Endpoint, body: Json) -> None:
        extra = [name for name in body if name not in allowed]
        if extra:
            raise refuse(extra, body)

    return check


def _messages(body: Json) -> Iterator[tuple[int, dict[str, Any]]]:
    messages = body.get("messages")
    if isinstance(messages, list):
        for index, message in enumerate(messages):
            if isinstance(message, dict):
                yield index, message
