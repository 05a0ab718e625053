"""OpenAI itself: the default profile. Every hook is None: the pipeline's own behaviour."""

from __future__ import annotations

from mockai.profiles.base import Auth, Profile

PROFILE = Profile(
    name="openai",
    title="OpenAI",
    as_of="the OpenAI API (shared/openapi/openapi.json, wire contract)",
    paths=("/v1", ""),
    auth=Auth(describe="Bearer (also `api-key`)"),
    by_name=False,  # the root and `/v1` are OpenAI's; `/openai/...` is Azure's
)
