"""The model catalog: what `/v1/models` lists, and what each model can do.

Without a configured model list every id is accepted (gateways and OpenAI-compatible providers use
ids like `meta-llama/llama-3.3-70b-instruct:free`), and its capabilities are inferred from the name.
With a list (`models:` in a scenario, `--models`), unknown ids get a 404 `model_not_found`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from mockai.errors import ApiError

Kind = Literal["chat", "embedding", "moderation", "completion"]

# Output-token limits (the most one answer can hold), from OpenAI's model pages and the API's own
# errors: gpt-4o / gpt-4o-mini 16,384 ("max_tokens is too large: 32000. This model supports at
# most 16384 completion tokens"); the gpt-4.1 family 32,768; the gpt-5 family 128,000 (its
# 400,000-token window is 272,000 of input plus 128,000 of output); o3 / o4-mini (and o3-mini)
# 100,000; gpt-3.5-turbo 4,096 ("This model supports at most 4096 completion tokens").
# Ids the catalog does not know get the limits of the built-in model they are a snapshot or a
# fine-tune of (`infer`); others the output limit of the family their name starts with, else
# DEFAULT_MAX_OUTPUT (a guess: gpt-4o's).
DEFAULT_MAX_OUTPUT = 16_384
_MAX_OUTPUT_BY_PREFIX = (
    ("gpt-5", 128_000),
    ("gpt-4.1", 32_768),
    ("gpt-4o", 16_384),
    ("o3", 100_000),
    ("o4-mini", 100_000),
    ("gpt-3.5-turbo", 4_096),
)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model and the limits the mock enforces for it."""

    id: str
    kind: Kind = "chat"
    created: int = 1715367049
    owned_by: str = "system"
    context_window: int = 128_000
    dimensions: int = 1536  # embedding models: the default vector size
    flexible_dimensions: bool = False  # embedding models that accept `dimensions`
    # o-series / gpt-5: they reason before they answer (mockai.api.reasoning), and refuse
    # `max_tokens`, as the API does
    reasoning: bool = False
    # A model the catalog knows (a built-in, a snapshot or a fine-tune of one), not one whose
    # kind is guessed from its name: only a known chat model is refused on legacy completions.
    known: bool = True
    # The effort a reasoning model reasons with when a request names none: `medium` for the
    # o-series and gpt-5; `none` for gpt-5.1 and later, which then take `temperature` (as the
    # clients encode it: vercel/ai's "reasoning-effort-none" sampling for GPT >= 5.1, LiteLLM's
    # "For gpt-5.1, temperature is supported when reasoning_effort='none' (or not specified, as
    # it defaults to 'none')").
    default_effort: str = "medium"
    max_output_tokens: int = DEFAULT_MAX_OUTPUT  # the most tokens one answer can hold
    # Other spellings of the id that requests may use (Gemini lists `models/gemini-2.5-flash`
    # and its docs ask for `gemini-2.5-flash`: the same model either way).
    aliases: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        """The `Model` object of the API."""
        return {
            "id": self.id,
            "object": "model",
            "created": self.created,
            "owned_by": self.owned_by,
        }


def _gpt_41(model_id: str, created: int) -> ModelInfo:
    return ModelInfo(model_id, created=created, context_window=1_047_576, max_output_tokens=32_768)


def _reasoning(model_id: str, created: int, window: int, max_output: int) -> ModelInfo:
    return ModelInfo(
        model_id,
        created=created,
        context_window=window,
        reasoning=True,
        max_output_tokens=max_output,
    )


BUILTIN: tuple[ModelInfo, ...] = (
    ModelInfo("gpt-4o", created=1715367049, max_output_tokens=16_384),
    ModelInfo("gpt-4o-mini", created=1721172741, max_output_tokens=16_384),
    _gpt_41("gpt-4.1", 1744316542),
    _gpt_41("gpt-4.1-mini", 1744318173),
    _gpt_41("gpt-4.1-nano", 1744321707),
    _reasoning("gpt-5", 1754425777, 400_000, 128_000),
    _reasoning("gpt-5-mini", 1754425928, 400_000, 128_000),
    _reasoning("gpt-5-nano", 1754426384, 400_000, 128_000),
    _reasoning("o3", 1744225308, 200_000, 100_000),
    _reasoning("o4-mini", 1744225351, 200_000, 100_000),
    ModelInfo(
        "gpt-3.5-turbo",
        created=1677610602,
        owned_by="openai",
        context_window=16_385,
        max_output_tokens=4_096,
    ),
    ModelInfo(
        "gpt-3.5-turbo-instruct",
        kind="completion",
        created=1692901427,
        context_window=4_096,
        max_output_tokens=4_096,  # the whole window: prompt and answer share it
    ),
    # Embedding inputs: "8192 tokens for all embedding models" (the spec's CreateEmbeddingRequest).
    ModelInfo(
        "text-embedding-3-small",
        kind="embedding",
        created=1705948997,
        context_window=8_192,
        flexible_dimensions=True,
    ),
    ModelInfo(
        "text-embedding-3-large",
        kind="embedding",
        created=1705953180,
        context_window=8_192,
        dimensions=3072,
        flexible_dimensions=True,
    ),
    ModelInfo(
        "text-embedding-ada-002",
        kind="embedding",
        created=1671217299,
        owned_by="openai-internal",
        context_window=8_192,
    ),
    ModelInfo("omni-moderation-latest", kind="moderation", created=1731689265),
    # (Not text-moderation-latest: shut down on 2025-10-27, see api/moderations.py.)
)

_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
# davinci-002's and babbage-002's context window, and their output limit (prompt and answer
# share the window).
_BASE_WINDOW = 16_384
# Longest first, so that a name takes the most specific family: `gpt-4o-mini-2024-07-18` is
# gpt-4o-mini's, not gpt-4o's.
_FAMILIES = tuple(sorted(BUILTIN, key=lambda info: len(info.id), reverse=True))


def infer(model_id: str) -> ModelInfo:
    """Capabilities of a model the catalog does not list, guessed from its name.

    A dated snapshot or variant of a built-in model (`gpt-4.1-2025-04-14`) and a fine-tune of
    one (`ft:gpt-4.1-mini:acme::abc123`) have that model's limits; other names a guess.
    """
    name = model_id.rsplit("/", 1)[-1].lower()
    if name.startswith("ft:"):
        base = name.split(":")[1]
        return _with_id(infer(base), model_id, owned_by="user")
    if name.startswith("gpt-5-chat"):
        # gpt-5-chat-latest answers without reasoning (a chat model: the clients send it
        # `temperature` and `max_tokens`, which the API takes), unlike the gpt-5 it is named after.
        return ModelInfo(model_id, context_window=128_000, max_output_tokens=16_384)
    family = _family(name)
    if family is not None:
        return _with_id(family, model_id)
    if "embed" in name:
        large = "large" in name
        return ModelInfo(
            model_id,
            known=False,
            kind="embedding",
            context_window=8_192,  # the spec: "8192 tokens for all embedding models"
            dimensions=3072 if large else 1536,
            flexible_dimensions="embedding-3" in name,
        )
    if "moderation" in name:
        return ModelInfo(model_id, kind="moderation", known=False)
    # (gpt-3.5-turbo-instruct and its snapshots are a built-in's family, above. Not any name
    # ending in `-instruct`: `meta-llama/Llama-3.1-8B-Instruct` and `Qwen/Qwen2.5-7B-Instruct`
    # are chat models of 128K tokens, and held to 4,096 a long chat with one was refused.)
    if name.startswith(("davinci", "babbage")):
        # (OpenAI's own two base completion models are known; other such names are a guess.)
        known = name in ("davinci-002", "babbage-002")
        # Those two read 16,384 tokens, and may write as many (OpenAI's model pages: "16,384
        # max output tokens"): held to 4,096, a long document scored with `echo` (as
        # lm-evaluation-harness scores them) was refused here and answered by the API.
        window = _BASE_WINDOW if known else 4_096
        return ModelInfo(
            model_id,
            kind="completion",
            context_window=window,
            max_output_tokens=window,
            known=known,
        )
    later_gpt5 = re.match(r"gpt-5\.\d", name) is not None and "codex" not in name
    return ModelInfo(
        model_id,
        known=False,
        reasoning=name.startswith(_REASONING_PREFIXES),
        default_effort="none" if later_gpt5 else "medium",
        max_output_tokens=next(
            (limit for prefix, limit in _MAX_OUTPUT_BY_PREFIX if name.startswith(prefix)),
            DEFAULT_MAX_OUTPUT,
        ),
    )


# The models before Structured Outputs (OpenAI's guide: "gpt-4o-mini-2024-07-18 and
# gpt-4o-2024-08-06 model snapshots and later"; "older models like gpt-4-turbo and earlier may
# use JSON mode instead"): gpt-3.5-turbo, gpt-4 and gpt-4-turbo with their snapshots, the first
# gpt-4o snapshot, and the first o1 previews.
_BEFORE_JSON_SCHEMA = ("gpt-3.5-turbo", "gpt-4-", "gpt-4o-2024-05-13", "o1-mini", "o1-preview")


# And those before JSON mode (it came with gpt-4-1106-preview and gpt-3.5-turbo-1106): the first
# gpt-4 (its alias still names gpt-4-0613) and gpt-3.5-turbo's first snapshots.
_BEFORE_JSON_OBJECT = ("gpt-4-0613", "gpt-4-0314", "gpt-4-32k", "gpt-3.5-turbo-0613")
_BEFORE_JSON_OBJECT_TOO = ("gpt-3.5-turbo-0301", "gpt-3.5-turbo-16k")


def takes_json_schema(model_id: str) -> bool:
    """Whether a chat model answers `response_format: {"type": "json_schema"}` (Structured
    Outputs); False for the models that came before it, their fine-tunes too."""
    name = _base_name(model_id)
    return name != "gpt-4" and not name.startswith(_BEFORE_JSON_SCHEMA)


def takes_json_object(model_id: str) -> bool:
    """Whether a chat model answers `response_format: {"type": "json_object"}` (JSON mode);
    False for the models that came before it, their fine-tunes too."""
    name = _base_name(model_id)
    return name != "gpt-4" and not name.startswith(_BEFORE_JSON_OBJECT + _BEFORE_JSON_OBJECT_TOO)


def _base_name(model_id: str) -> str:
    """The model a chat model id names: a fine-tune's base, without a provider's prefix."""
    name = model_id.rsplit("/", 1)[-1].lower()
    return name.split(":")[1] if name.startswith("ft:") else name


def _family(name: str) -> ModelInfo | None:
    """The built-in model `name` is a snapshot or variant of: the longest built-in id it is, or
    starts with followed by `-` (`gpt-4o-2024-08-06`; `gpt-4o2` is no gpt-4o)."""
    for info in _FAMILIES:
        if name == info.id or name.startswith(info.id + "-"):
            return info
    return None


def _with_id(info: ModelInfo, model_id: str, owned_by: str = "system") -> ModelInfo:
    """`info`'s limits under another id (a snapshot's, a fine-tune's)."""
    return ModelInfo(
        model_id,
        kind=info.kind,
        owned_by=owned_by,
        context_window=info.context_window,
        dimensions=info.dimensions,
        flexible_dimensions=info.flexible_dimensions,
        reasoning=info.reasoning,
        max_output_tokens=info.max_output_tokens,
        known=info.known,
        default_effort=info.default_effort,
    )


class Deletions:
    """The fine-tuned models deleted from one server, shared by all of its catalogs: a deleted
    model is the API's 404 under every provider prefix, not only the one it was deleted at."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        # Changes whenever what a catalog's `get` answers may change (a deletion, a restore):
        # what was parsed against an older version is parsed again (pipeline/parsed.py).
        self.version = 0


class Catalog:
    """Looks models up; `restricted` catalogs refuse ids they do not list."""

    def __init__(
        self,
        models: Iterable[str] | None = None,
        builtin: Iterable[ModelInfo] = (),
        deletions: Deletions | None = None,
    ) -> None:
        """`models` restricts the catalog to those ids; `builtin` (default: OpenAI's models) is
        what an unrestricted catalog lists (a provider profile's own models). `deletions`: the
        server's, when it has other catalogs (its providers')."""
        defaults = tuple(builtin) or BUILTIN
        known = _by_spelling((*defaults, *BUILTIN))
        if models is None:
            self.restricted = False
            listed: Iterable[ModelInfo] = defaults
        else:
            self.restricted = True
            listed = (known.get(m) or infer(m) for m in models)
        # Each model once, in order (`--models a,a`; both spellings of a Gemini model).
        self._listed = list({info.id: info for info in listed}.values())
        self._by_id = _by_spelling(self._listed)
        if self.restricted:
            # A listed alias's answers name its snapshot (`answered_model`): an app that asks
            # for the model an answer named, or retrieves it, finds it, as on the API.
            for info in self._listed:
                snapshot = SNAPSHOTS.get(info.id)
                if snapshot is not None:
                    self._by_id.setdefault(snapshot, _with_id(info, snapshot, info.owned_by))
        self._inferred: dict[str, ModelInfo] = {}
        self.deletions = deletions or Deletions()

    @property
    def version(self) -> int:
        """Changes whenever what `get` answers may change (see `Deletions.version`)."""
        return self.deletions.version

    def listed(self) -> list[ModelInfo]:
        """The models `/v1/models` lists, in order."""
        deleted = self.deletions.ids
        return [info for info in self._listed if not deleted or info.id not in deleted]

    def get(self, model_id: str) -> ModelInfo:
        """The model's info; a 404 `model_not_found` if the catalog is restricted and lacks it,
        or the model was deleted."""
        deleted = self.deletions.ids
        if deleted and model_id in deleted:
            raise model_not_found(model_id)
        info = self._by_id.get(model_id)
        if info is not None:
            return info
        if self.restricted:
            raise model_not_found(model_id)
        info = self._inferred.get(model_id)
        if info is None:
            if len(self._inferred) > 4096:  # a load test with random ids must not grow memory
                self._inferred.clear()
            info = self._inferred[model_id] = infer(model_id)
        return info

    def delete(self, model_id: str) -> ModelInfo:
        """Remove a fine-tuned model (`ft:...`) for good: later lookups are the API's 404.

        Only models the caller could own are deletable: a base model gets the API's 403, an id
        this catalog does not know (or no longer knows) its 404.
        """
        info = self.get(model_id)
        if not is_fine_tuned(model_id):
            raise ApiError(
                403,
                f"You are not allowed to delete the model `{model_id}`: only fine-tuned models "
                "owned by your organization can be deleted.",
                type="invalid_request_error",
                param="model",
                code=None,
            )
        self._inferred.pop(model_id, None)
        deleted = self.deletions.ids
        # Bounded like the inferred ids (a restricted catalog deletes only models it lists).
        if not self.restricted and len(deleted) > 4096:
            deleted.clear()
        deleted.add(model_id)
        self.deletions.version += 1
        return info

    def restore(self) -> None:
        """Undo deletions (a server reset)."""
        self.deletions.ids.clear()
        self.deletions.version += 1

    def default(self, kind: Kind) -> str:
        """The model used when a request names none (the Responses API allows `{}`)."""
        for info in self.listed():
            if info.kind == kind:
                return info.id
        return {"chat": "gpt-4o-mini", "embedding": "text-embedding-3-small"}.get(
            kind, "omni-moderation-latest"
        )


# The dated snapshot each of OpenAI's aliases points to: the model its answers name. Asked for
# `gpt-4o-mini`, a chat completion says `gpt-4o-mini-2024-07-18` (the wire contract's example),
# and the API reference's Response to `gpt-4.1` says `gpt-4.1-2025-04-14`: apps that log, price
# or check an answer's model meet the dated name. Echoing the alias hid code that compared it
# with the model asked for. (Embedding and moderation answers name the model as asked.)
SNAPSHOTS = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "o3": "o3-2025-04-16",
    "o4-mini": "o4-mini-2025-04-16",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
}


def answered_model(model_id: str, provider: str) -> str:
    """The `model` an answer to a request for `model_id` names: under OpenAI's profile, the
    snapshot an alias points to (`SNAPSHOTS`); any other id, or another provider's, as asked."""
    if provider != "openai":
        return model_id
    return SNAPSHOTS.get(model_id, model_id)


def _by_spelling(infos: Iterable[ModelInfo]) -> dict[str, ModelInfo]:
    """Each model under its id and its other spellings (later ones win)."""
    return {spelling: info for info in infos for spelling in (info.id, *info.aliases)}


def is_fine_tuned(model_id: str) -> bool:
    """Whether `model_id` names a fine-tuned model (`ft:gpt-4o-mini:org:suffix:id`)."""
    return model_id.startswith("ft:")


def model_not_found(model_id: str) -> ApiError:
    """The API's 404 for a model that does not exist."""
    error = ApiError(
        404,
        f"The model `{model_id}` does not exist or you do not have access to it.",
        param=None,
        code="model_not_found",
    )
    error.name = "model_not_found"  # a provider profile words it its own way
    return error
