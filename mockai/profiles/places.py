"""Where each provider profile is served: its base paths and endpoints, apart from its behaviour.

Routing needs only this for every profile (each is served under its own name, `/groq/openai/v1`,
...), while a profile's behaviour (shapes, error envelopes, request checks, catalogs) is needed
only once a request comes through it: the profile modules import on first use (see
`mockai.profiles.PROFILES`), and a server starts with this table alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from mockai.pipeline.exchange import Endpoint

ALL_ENDPOINTS = frozenset(Endpoint)

# The Responses request fields that need the provider to keep state: a stateless provider
# ignores them (and stores nothing: its answers say `store: false`).
STATEFUL_FIELDS = frozenset({"previous_response_id", "conversation", "background"})


@dataclass(frozen=True)
class Place:
    """Where one provider's API is: the base paths on the provider's own host (the first is the
    usual one), the endpoints it has (the others are its 404), whether it is also served under
    its name (OpenAI owns the root and `/v1` instead), and whether its Responses API keeps
    state (stored responses and conversations: without it, their routes are its 404)."""

    name: str
    paths: tuple[str, ...]
    endpoints: frozenset[Endpoint] = ALL_ENDPOINTS
    by_name: bool = True
    keeps_responses: bool = True

    def serves(self, endpoint: Endpoint | None, kept: bool = False) -> bool:
        """Whether a route needing `endpoint` (None: every provider has it) is this provider's;
        `kept`: a route to the Responses API's state."""
        if endpoint is None:
            return True
        return endpoint in self.endpoints and (self.keeps_responses or not kept)

    @property
    def prefixes(self) -> tuple[str, ...]:
        """Where this profile is always served: its name, then each of its base paths."""
        if not self.by_name:
            return tuple(path for path in self.paths if path)
        return tuple(f"/{self.name}{path}" for path in self.paths)


# In the order the docs' tables list the providers (facts: shared/reference/providers.md, as
# each profile module cites them).
PLACES: Mapping[str, Place] = MappingProxyType(
    {
        place.name: place
        for place in (
            # The root and `/v1` are OpenAI's; `/openai/...` is Azure's.
            Place("openai", ("/v1", ""), by_name=False),
            Place(
                "groq",
                ("/openai/v1",),
                ALL_ENDPOINTS - {Endpoint.COMPLETIONS, Endpoint.MODERATIONS},
            ),
            Place("openrouter", ("/api/v1",)),
            # (§3: its `/v1/responses` is "stateless only, so no `previous_response_id`")
            Place(
                "ollama", ("/v1",), ALL_ENDPOINTS - {Endpoint.MODERATIONS}, keeps_responses=False
            ),
            Place("litellm", ("/v1", "")),
            Place("vercel", ("/v1",)),
            Place("anthropic", ("/v1",), frozenset({Endpoint.CHAT})),
            Place("mistral", ("/v1",), ALL_ENDPOINTS - {Endpoint.COMPLETIONS}),
            # (§10: `/v1` "also works"; FIM `/completions` is "beta, under /beta": its docs
            # give clients `base_url="https://api.deepseek.com/beta"`)
            Place("deepseek", ("/v1", "", "/beta")),
            Place("together", ("/v1",)),
            Place("fireworks", ("/inference/v1",)),
            Place("vllm", ("/v1",), ALL_ENDPOINTS - {Endpoint.MODERATIONS}),
            # (§12's list; its `videos` is no endpoint mockai has)
            Place(
                "gemini",
                ("/v1beta/openai",),
                frozenset({Endpoint.CHAT, Endpoint.EMBEDDINGS, Endpoint.IMAGES, Endpoint.BATCHES}),
            ),
            Place("azure", ("/openai/v1", "/openai")),
        )
    }
)
