"""The model catalog: what `/v1/models` lists, and what each model can do.

Without a configured model list every id is accepted (gateways and OpenAI-compatible providers use
ids like `meta-llama/llama-3.3-70b-instruct:free`), and its capabilities are inferred from the name.
With a list (`models:` in a scenario, `--models`), unknown ids get a 404 `model_not_found`.
"""

from __future__ import annotations

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
# Ids the catalog does not know get the limit of the family their name starts with, else
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
    reasoning: bool = False  # o-series / gpt-5: `max_tokens` is refused, as the API does
    max_output_tokens: int = DEFAULT_MAX_OUTPUT  # the most tokens one answer can hold

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
    ModelInfo(
        "text-embedding-3-small",
        kind="embedding",
        created=1705948997,
        context_window=8_191,
        flexible_dimensions=True,
    ),
    ModelInfo(
        "text-embedding-3-large",
        kind="embedding",
        created=1705953180,
        context_window=8_191,
        dimensions=3072,
        flexible_dimensions=True,
    ),
    ModelInfo(
        "text-embedding-ada-002",
        kind="embedding",
        created=1671217299,
        owned_by="openai-internal",
        context_window=8_191,
    ),
    ModelInfo("omni-moderation-latest", kind="moderation", created=1731689265),
    ModelInfo(
        "text-moderation-latest", kind="moderation", created=1731689265, context_window=32_768
    ),
)

_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def infer(model_id: str) -> ModelInfo:
    """Capabilities of a model the catalog does not list, guessed from its name."""
    name = model_id.rsplit("/", 1)[-1].lower()
    if name.startswith("ft:"):
        base = name.split(":")[1]
        return _with_id(infer(base), model_id)
    if "embed" in name:
        large = "large" in name
        return ModelInfo(
            model_id,
            kind="embedding",
            context_window=8_191,
            dimensions=3072 if large else 1536,
            flexible_dimensions="embedding-3" in name,
        )
    if "moderation" in name:
        return ModelInfo(model_id, kind="moderation")
    if name.endswith("-instruct") or name.startswith(("davinci", "babbage")):
        return ModelInfo(model_id, kind="completion", context_window=4_096, max_output_tokens=4_096)
    return ModelInfo(
        model_id,
        reasoning=name.startswith(_REASONING_PREFIXES),
        max_output_tokens=next(
            (limit for prefix, limit in _MAX_OUTPUT_BY_PREFIX if name.startswith(prefix)),
            DEFAULT_MAX_OUTPUT,
        ),
    )


def _with_id(info: ModelInfo, model_id: str) -> ModelInfo:
    return ModelInfo(
        model_id,
        kind=info.kind,
        owned_by="user",
        context_window=info.context_window,
        dimensions=info.dimensions,
        flexible_dimensions=info.flexible_dimensions,
        reasoning=info.reasoning,
        max_output_tokens=info.max_output_tokens,
    )


class Catalog:
    """Looks models up; `restricted` catalogs refuse ids they do not list."""

    def __init__(
        self, models: Iterable[str] | None = None, builtin: Iterable[ModelInfo] = ()
    ) -> None:
        """`models` restricts the catalog to those ids; `builtin` (default: OpenAI's models) is
        what an unrestricted catalog lists (a provider profile's own models)."""
        defaults = tuple(builtin) or BUILTIN
        known = {info.id: info for info in (*defaults, *BUILTIN)}
        if models is None:
            self.restricted = False
            self._listed = list(defaults)
        else:
            self.restricted = True
            self._listed = [known.get(m) or infer(m) for m in models]
        self._by_id = {info.id: info for info in self._listed}
        self._inferred: dict[str, ModelInfo] = {}
        self._initial = list(self._listed)
        self._deleted: set[str] = set()  # fine-tuned ids deleted from an unrestricted catalog
        # Changes whenever what `get` answers may change (a deletion, a restore): what was
        # parsed against an older version is parsed again (pipeline/parsed.py).
        self.version = 0

    def listed(self) -> list[ModelInfo]:
        """The models `/v1/models` lists, in order."""
        return list(self._listed)

    def get(self, model_id: str) -> ModelInfo:
        """The model's info; a 404 `model_not_found` if the catalog is restricted and lacks it."""
        info = self._by_id.get(model_id)
        if info is not None:
            return info
        if self.restricted or (self._deleted and model_id in self._deleted):
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
        self._listed = [listed for listed in self._listed if listed.id != model_id]
        self._by_id.pop(model_id, None)
        self._inferred.pop(model_id, None)
        if not self.restricted:
            if len(self._deleted) > 4096:  # (bounded like the inferred ids)
                self._deleted.clear()
            self._deleted.add(model_id)
        self.version += 1
        return info

    def restore(self) -> None:
        """Undo deletions (a server reset)."""
        self._listed = list(self._initial)
        self._by_id = {info.id: info for info in self._listed}
        self._deleted.clear()
        self.version += 1

    def default(self, kind: Kind) -> str:
        """The model used when a request names none (the Responses API allows `{}`)."""
        for info in self._listed:
            if info.kind == kind:
                return info.id
        return {"chat": "gpt-4o-mini", "embedding": "text-embedding-3-small"}.get(
            kind, "omni-moderation-latest"
        )


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
