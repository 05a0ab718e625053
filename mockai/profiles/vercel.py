"""Vercel AI Gateway (`https://ai-gateway.vercel.sh/v1`): `creator/model` ids.

Facts: shared/reference/providers.md section 5 (vercel.com/docs/ai-gateway). Models the gateway
as documented in December 2026. Its `/models` fields, streaming usage and rate-limit headers are
not confirmed, so they are OpenAI's here.
"""

from __future__ import annotations

from mockai.catalog import ModelInfo
from mockai.profiles.base import Auth, ExtraFields, Profile

CREATED = 1755000000

CATALOG = (
    ModelInfo("openai/gpt-5", created=CREATED, owned_by="openai", reasoning=True),
    ModelInfo("openai/gpt-4o-mini", created=CREATED, owned_by="openai"),
    ModelInfo("anthropic/claude-sonnet-4", created=CREATED, owned_by="anthropic"),
    ModelInfo("google/gemini-2.5-flash", created=CREATED, owned_by="google"),
    ModelInfo(
        "openai/text-embedding-3-small", kind="embedding", created=CREATED, owned_by="openai"
    ),
)

PROFILE = Profile(
    name="vercel",
    title="Vercel AI Gateway",
    as_of="vercel.com/docs/ai-gateway, December 2026",
    catalog=CATALOG,
    auth=Auth(describe="Bearer (`vck_…` or an OIDC token)"),
    models_shape="`creator/model` ids",
    # The gateway's routing options (providers.md §5, "Gateway body field").
    extra_fields=ExtraFields({"providerOptions": None}),
    sources=("providers.md §5",),
)
