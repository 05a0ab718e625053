"""OpenAI itself: the default profile. Every hook is None: the pipeline's own behaviour."""

from __future__ import annotations

from mockai.profiles.base import Auth, Profile

PROFILE = Profile(
    name="openai",
    title="OpenAI",
    as_of="the OpenAI API (shared/openapi/openapi.json, wire contract)",
    auth=Auth(describe="Bearer"),
)
