"""Provider profiles: how each OpenAI-compatible provider differs from OpenAI, as data.

`PROFILES` maps a name (`--profile NAME`, `match: {provider: NAME}`) to its `Profile`, one
module per provider. Facts come from shared/reference/providers.md; a profile encodes only what
that reference confirms, and names the date or version it models (`Profile.as_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from mockai.profiles import (
    anthropic,
    azure,
    deepseek,
    fireworks,
    gemini,
    groq,
    litellm,
    mistral,
    ollama,
    openai,
    openrouter,
    together,
    vercel,
    vllm,
)
from mockai.profiles.base import Profile

DEFAULT = "openai"

PROFILES: Mapping[str, Profile] = MappingProxyType(
    {
        profile.name: profile
        for profile in (
            openai.PROFILE,
            groq.PROFILE,
            openrouter.PROFILE,
            ollama.PROFILE,
            litellm.PROFILE,
            vercel.PROFILE,
            anthropic.PROFILE,
            mistral.PROFILE,
            deepseek.PROFILE,
            together.PROFILE,
            fireworks.PROFILE,
            vllm.PROFILE,
            gemini.PROFILE,
            azure.PROFILE,
        )
    }
)


def get(name: str) -> Profile:
    """The profile called `name`; KeyError names the valid ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(
            f"{name!r} is not a provider profile; valid: {', '.join(PROFILES)}"
        ) from None


__all__ = ["DEFAULT", "PROFILES", "Profile", "get"]
