"""`reply:` blocks compiled at load time into ReplySpecs (built per request by `respond`).

Every key is checked with its line: text and JSON leaves may be templates (compiled and checked
here), tool calls need valid names and arguments that are a mapping, a JSON string or `auto`,
embeddings vectors must be numbers, moderation categories must exist. A reply with no text, JSON,
tool calls or refusal (`reply: {}`) leaves the answer to the generator: a schema-valid instance
for a json_schema request, plausible prose otherwise.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mockai.generate import moderation
from mockai.pipeline.reply import Choice, Reply
from mockai.scenario import templates, yamlsrc
from mockai.scenario.problems import Problems, describe, suggest
from mockai.scenario.yamlsrc import block_line, line_of
from mockai.wire import jsonbytes

if TYPE_CHECKING:
    pass

REPLY_KEYS = (
    "content",
    "json",
    "tool_calls",
    "refusal",
    "reasoning",
    "finish_reason",
    "usage",
    "vector",
    "vectors",
    "seed",
    "flagged",
    "categories",
    "category_scores",
    "image",
    "revised_prompt",
    "audio",
)
IMAGE_KEYS = ("path", "color", "pattern", "colors")
AUDIO_KEYS = ("path", "duration")
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")
USAGE_KEYS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cached_tokens",
)
TOOL_CALL_KEYS = ("name", "arguments", "id")
# (fullmatch: `$` would also match before a trailing newline, and "ping\n" is no tool name)
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


# --- values with template leaves ------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    """A JSON value whose strings may be templates; constant trees are serialised once."""

    value: Any  # dict / list / Text / scalar
    constant: bool
    text: str | None = None  # the compact JSON of a constant tree

    def render(self, ctx: Mapping[str, Any]) -> Any:
        """The value for this request."""
        return _render_tree(self.value, ctx)

    def json(self, ctx: Mapping[str, Any]) -> str:
        """The compact JSON text for this request."""
        if self.text is not None:
            return self.text
        return jsonbytes.dumps_str(self.render(ctx))


def _render_tree(value: Any, ctx: Mapping[str, Any]) -> Any:
    if isinstance(value, templates.Text):
        return value.render(ctx)
    if isinstance(value, dict):
        return {key: _render_tree(item, ctx) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_tree(item, ctx) for item in value]
    return value


def compile_tree(
    value: Any, line: int, where: str, problems: Problems, *, block: int = 0
) -> Tree | None:
    """A Tree for a JSON-like YAML value (problems recorded for values JSON cannot hold)."""
    before = len(problems.items)
    built, constant = _tree(value, line, where, problems, block)
    if len(problems.items) > before:
        return None
    return Tree(built, constant, jsonbytes.dumps_str(built) if constant else None)


def _tree(
    value: Any, line: int, where: str, problems: Problems, block: int = 0
) -> tuple[Any, bool]:
    if isinstance(value, str):
        text = templates.compile_text(value, line, where, problems, block=block)
        if text is None or not text.dynamic:
            return value, True
        return text, False
    if isinstance(value, Mapping):
        out, constant = {}, True
        for key, item in value.items():
            spot, text_line = line_of(value, key), block_line(value, key)
            if trouble := yamlsrc.json_key_problem(value, key):
                problems.add(spot, f"{where}: {trouble}")
                continue
            out[key], const = _tree(item, spot, where, problems, text_line)
            constant &= const
        return out, constant
    if isinstance(value, list):
        items = [
            _tree(item, line_of(value, i), where, problems, block_line(value, i))
            for i, item in enumerate(value)
        ]
        return [built for built, _ in items], all(const for _, const in items)
    if trouble := yamlsrc.json_value_problem(value):
        problems.add(line, f"{where}: {trouble}")
        return None, True
    return value, True


# --- reply specs ----------------------------------------------------------------------------------

AUTO = "auto"


@dataclass(frozen=True)
class ToolCallSpec:
    """One scripted tool call: `arguments` is a Tree, a template Text, or `auto`."""

    name: str
    arguments: Tree | templates.Text | str
    id: str | None = None


@dataclass(frozen=True)
class MediaSpec:
    """A scripted picture (`image:`) or sound (`audio:`), and DALL-E 3's `revised_prompt`."""

    path: str | None = None  # resolved against the scenario file's folder
    color: str | None = None
    pattern: str | None = None
    colors: tuple[str, ...] = ()
    duration: float | None = None
    revised_prompt: templates.Text | None = None


@dataclass(frozen=True)
class ReplySpec:
    """A compiled `reply:` block."""

    content: templates.Text | None = None
    json: Tree | None = None
    tool_calls: tuple[ToolCallSpec, ...] = ()
    refusal: templates.Text | None = None
    reasoning: templates.Text | None = None  # a reasoning model's summary, when asked for one
    finish_reason: str | None = None
    usage: Mapping[str, int] | None = None
    vectors: tuple[tuple[float, ...], ...] | None = None
    embedding_seed: int | None = None
    moderation: Mapping[str, Any] | None = None
    media: MediaSpec | None = None
    dynamic: bool = field(default=False)  # needs a seeded faker (templates, auto arguments)
    # The answer's one choice when it is the same for every request (constant texts, no tool
    # calls): built here once instead of per request; None otherwise.
    constant_choices: tuple[Choice, ...] | None = field(init=False, repr=False, compare=False)
    # ... and the whole Reply then, for the requests that leave nothing to draw or check
    # (`respond.constant_reply` says which): the same object for every request, as the
    # generator's kept replies are.
    constant_reply: Reply | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        constant = None
        texts = (self.content, self.refusal, self.reasoning)
        fixed = all(text is None or not text.dynamic for text in texts)
        fixed = fixed and (self.json is None or self.json.constant)
        if fixed and not self.generated and not self.tool_calls:
            content = self.content.render({}) if self.content is not None else None
            if self.json is not None:
                content = self.json.json({})
            refusal = self.refusal.render({}) if self.refusal is not None else None
            constant = (Choice(content=content, refusal=refusal, finish_reason=self.finish_reason),)
        object.__setattr__(self, "constant_choices", constant)
        reply = None
        if constant is not None:
            moderated = (self.moderation,) if self.moderation else None
            reply = Reply(
                choices=constant,
                embeddings=self.vectors,
                moderation=moderated,
                usage=self.usage,
                reasoning=self.reasoning.render({}) if self.reasoning is not None else None,
            )
        object.__setattr__(self, "constant_reply", reply)

    @property
    def generated(self) -> bool:
        """True when nothing is scripted for the text: the generator fills the answer in."""
        return (
            self.content is None
            and self.json is None
            and not self.tool_calls
            and self.refusal is None
        )


def compile_reply(
    value: Any, line: int, where: str, problems: Problems, *, block: int = 0
) -> ReplySpec | None:
    """The ReplySpec for a `reply:` value; every problem recorded (`block`: see block_line)."""
    if isinstance(value, str):  # shorthand: `reply: hello` is `reply: {content: hello}`
        value = yamlsrc.located({"content": value}, line, blocks={"content": block})
    if not isinstance(value, Mapping):
        # `reply: 5` or `reply: yes` meant the text, most likely: YAML reads them as a number or
        # a boolean (and `3.10` as 3.1), so quotes are asked for, never guessed.
        quote = " (quote it if you meant the text)" if isinstance(value, (int, float)) else ""
        problems.add(
            line,
            f"{where}: reply must be a text (reply: hi) or a mapping such as {{content: hi}}, "
            f"got {describe(value)}{quote}",
        )
        return None
    before = len(problems.items)
    for key in value:
        if key not in REPLY_KEYS:
            problems.add(
                line_of(value, key),
                f"unknown key '{key}' in {where} reply" + suggest(key, REPLY_KEYS),
            )
    _exclusive(value, ("content", "json", "refusal"), line, where, problems)
    _exclusive(value, ("refusal", "tool_calls"), line, where, problems)
    _exclusive(value, ("vector", "vectors", "seed"), line, where, problems)
    _exclusive(value, ("image", "audio"), line, where, problems)
    at = f"{where} reply"
    spec = ReplySpec(
        content=_text(value, "content", at, problems),
        json=_json(value, at, problems),
        tool_calls=_tool_calls(value, at, problems),
        refusal=_text(value, "refusal", at, problems),
        reasoning=_text(value, "reasoning", at, problems),
        finish_reason=_finish_reason(value, at, problems),
        usage=_usage(value, at, problems),
        vectors=_vectors(value, at, problems),
        embedding_seed=_embedding_seed(value, at, problems),
        moderation=_moderation(value, at, problems),
        media=_media(value, at, problems),
    )
    if len(problems.items) > before:
        return None
    texts = (
        spec.content,
        spec.refusal,
        spec.reasoning,
        spec.media.revised_prompt if spec.media else None,
    )
    dynamic = any(isinstance(t, templates.Text) and t.dynamic for t in texts)
    dynamic |= spec.json is not None and not spec.json.constant
    for call in spec.tool_calls:
        args = call.arguments
        dynamic |= args == AUTO or (isinstance(args, templates.Text) and args.dynamic)
        dynamic |= isinstance(args, Tree) and not args.constant
    return dataclasses.replace(spec, dynamic=dynamic)


def _exclusive(
    value: Mapping[str, Any], keys: tuple[str, ...], line: int, where: str, problems: Problems
) -> None:
    given = [key for key in keys if key in value]
    if len(given) > 1:
        problems.add(
            line_of(value, given[1]),
            f"{where} reply has both '{given[0]}' and '{given[1]}': give only one of "
            + ", ".join(keys),
        )


def _text(value: Mapping[str, Any], key: str, where: str, problems: Problems) -> Any:
    if key not in value:
        return None
    text, line = value[key], line_of(value, key)
    if not isinstance(text, str):
        # A bare number is not sent as typed (`3.10` would be '3.1'): ask for quotes.
        quote = " (quote it if you meant the text)" if isinstance(text, (int, float)) else ""
        problems.add(line, f"{where}.{key} must be a string, got {describe(text)}{quote}")
        return None
    block = block_line(value, key)
    return templates.compile_text(text, line, f"{where}.{key}", problems, block=block)


def _json(value: Mapping[str, Any], where: str, problems: Problems) -> Tree | None:
    if "json" not in value:
        return None
    line, block = line_of(value, "json"), block_line(value, "json")
    return compile_tree(value["json"], line, f"{where}.json", problems, block=block)


def _tool_calls(
    value: Mapping[str, Any], where: str, problems: Problems
) -> tuple[ToolCallSpec, ...]:
    raw = value.get("tool_calls")
    if raw is None:
        return ()
    line = line_of(value, "tool_calls")
    items = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(items, list) or not items:
        problems.add(
            line,
            f"{where}.tool_calls must be a list such as [{{name: get_weather, arguments: "
            f"{{city: Paris}}}}], got {describe(raw)}",
        )
        return ()
    calls = []
    ids: dict[str, int] = {}  # a scripted id -> the index of the call that has it
    for index, item in enumerate(items):
        spot = line_of(items, index) if items is raw else line
        call = _tool_call(item, spot, f"{where}.tool_calls[{index}]", problems)
        if call is None:
            continue
        if call.id and call.id in ids:
            # The client answers each call under its id, and a second result for one id is the
            # API's 400 (mockai's too): such a fixture's turn could never be followed up.
            problems.add(
                line_of(item, "id"),
                f"{where}.tool_calls[{index}].id '{call.id}' is the id of tool_calls"
                f"[{ids[call.id]}] too: each call needs its own (or none: mockai makes one)",
            )
        ids.setdefault(call.id or "", index)
        calls.append(call)
    return tuple(calls)


def _tool_call(item: Any, line: int, where: str, problems: Problems) -> ToolCallSpec | None:
    if not isinstance(item, Mapping):
        problems.add(line, f"{where} must be a mapping with a name, got {describe(item)}")
        return None
    for key in item:
        if key not in TOOL_CALL_KEYS:
            problems.add(
                line_of(item, key), f"unknown key '{key}' in {where}" + suggest(key, TOOL_CALL_KEYS)
            )
    name = item.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
        problems.add(
            line_of(item, "name") if "name" in item else line,
            f"{where} needs a name of letters, digits, _ or - (at most 64), got {describe(name)}",
        )
        return None
    call_id = item.get("id")
    if call_id is not None and not isinstance(call_id, str):
        problems.add(line_of(item, "id"), f"{where}.id must be a string, got {describe(call_id)}")
    arguments = _arguments(item, line, where, problems)
    if arguments is None:
        return None
    return ToolCallSpec(name, arguments, call_id)


def _arguments(item: Mapping[str, Any], line: int, where: str, problems: Problems) -> Any:
    raw = item.get("arguments", {})
    spot = line_of(item, "arguments") if "arguments" in item else line
    if raw == AUTO:
        return AUTO
    if isinstance(raw, str) and _misspelt_auto(raw):
        problems.add(
            spot,
            f"{where}.arguments must be a mapping, a JSON string or 'auto', got {describe(raw)}"
            " (did you mean 'auto'?)",
        )
        return None
    if isinstance(raw, str):  # a JSON string, sent as is (maybe broken on purpose)
        block = block_line(item, "arguments")
        return templates.compile_text(raw, spot, f"{where}.arguments", problems, block=block)
    if isinstance(raw, Mapping):
        return compile_tree(raw, spot, f"{where}.arguments", problems)
    problems.add(
        spot,
        f"{where}.arguments must be a mapping, a JSON string or 'auto', got {describe(raw)}",
    )
    return None


# Strings that can only mean `auto` (the whole string, in any case). Exact words only: a guess
# from prefixes and near misses refused custom tools' free-text inputs ("generate the weekly
# report", "auth", "autumn"), which are valid files.
_MISSPELT_AUTO = frozenset({AUTO, "automatic", "generate"})


def _misspelt_auto(text: str) -> bool:
    """True for a string meant as `auto` (`Auto`, `AUTO`, ` auto`, `automatic`, `generate`).

    Any other string that is no JSON stays legal here: a custom tool's input is free text
    (`print(2 + 2)`, `generated`), and arguments broken on purpose test a client;
    `_check_arguments` flags them, per request, when the called tool is a function (a stale
    fixture)."""
    return text != AUTO and text.strip().casefold() in _MISSPELT_AUTO


@functools.cache  # (it loads every provider profile: once, not once per rule)
def finish_reasons() -> tuple[str, ...]:
    """OpenAI's finish reasons, then those only some providers send (Mistral's `model_length`,
    Together's `eos`, ...): a script may use any, for the provider that has it."""
    from mockai.profiles import PROFILES

    extra = {reason for profile in PROFILES.values() for reason in profile.finish_reasons}
    return FINISH_REASONS + tuple(sorted(extra - set(FINISH_REASONS)))


def _finish_reason(value: Mapping[str, Any], where: str, problems: Problems) -> str | None:
    reason = value.get("finish_reason")
    if reason is None:
        return None
    valid = finish_reasons()
    if reason not in valid:
        problems.add(
            line_of(value, "finish_reason"),
            f"{where}.finish_reason: {describe(reason)} is not a finish reason"
            + suggest(reason, valid, noun="valid"),
        )
        return None
    return str(reason)


def _usage(value: Mapping[str, Any], where: str, problems: Problems) -> Mapping[str, int] | None:
    raw = value.get("usage")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.add(
            line_of(value, "usage"),
            f"{where}.usage must be a mapping such as {{prompt_tokens: 10, completion_tokens: 5}}",
        )
        return None
    usage = {}
    for key, number in raw.items():
        spot = line_of(raw, key)
        if key not in USAGE_KEYS:
            problems.add(spot, f"unknown key '{key}' in {where}.usage" + suggest(key, USAGE_KEYS))
        elif not isinstance(number, int) or isinstance(number, bool) or number < 0:
            problems.add(
                spot, f"{where}.usage.{key} must be a whole number >= 0, got {describe(number)}"
            )
        else:
            usage[key] = number
    return usage


def _numbers(raw: Any) -> tuple[float, ...] | None:
    if not isinstance(raw, list) or not raw:
        return None
    if not all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in raw
    ):
        return None
    return tuple(float(x) for x in raw)


def _vectors(value: Mapping[str, Any], where: str, problems: Problems) -> Any:
    if "vector" in value:
        vector = _numbers(value["vector"])
        if vector is None:
            problems.add(
                line_of(value, "vector"), f"{where}.vector must be a non-empty list of numbers"
            )
            return None
        return (vector,)
    if "vectors" not in value:
        return None
    raw = value["vectors"]
    vectors = [_numbers(v) for v in raw] if isinstance(raw, list) and raw else [None]
    if any(v is None for v in vectors):
        problems.add(
            line_of(value, "vectors"),
            f"{where}.vectors must be a list of non-empty lists of numbers (one per input)",
        )
        return None
    return tuple(vectors)


def _embedding_seed(value: Mapping[str, Any], where: str, problems: Problems) -> int | None:
    seed = value.get("seed")
    if seed is None:
        return None
    if not isinstance(seed, int) or isinstance(seed, bool):
        problems.add(
            line_of(value, "seed"), f"{where}.seed must be a whole number, got {describe(seed)}"
        )
        return None
    return seed


def _moderation(value: Mapping[str, Any], where: str, problems: Problems) -> Any:
    result: dict[str, Any] = {}
    if "flagged" in value:
        if not isinstance(value["flagged"], bool):
            problems.add(line_of(value, "flagged"), f"{where}.flagged must be true or false")
        result["flagged"] = value["flagged"]
    for key, check in (("categories", _is_bool), ("category_scores", _is_score)):
        if key not in value:
            continue
        raw = value[key]
        if not isinstance(raw, Mapping):
            problems.add(line_of(value, key), f"{where}.{key} must be a mapping of categories")
            continue
        for name, setting in raw.items():
            if name not in moderation.CATEGORIES:
                problems.add(
                    line_of(raw, name),
                    f"{where}.{key}: '{name}' is not a moderation category"
                    + suggest(name, moderation.CATEGORIES, noun="categories"),
                )
            elif not check(setting):
                wanted = "true or false" if key == "categories" else "a number between 0 and 1"
                problems.add(line_of(raw, name), f"{where}.{key}.{name} must be {wanted}")
        result[key] = dict(raw)
    return result or None


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_score(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


# --- pictures and sounds ----------------------------------------------------------------------


def _media(value: Mapping[str, Any], where: str, problems: Problems) -> MediaSpec | None:
    """`image:` (a path, or {path | color | pattern, colors}), `audio:` (a path, or {path |
    duration}) and `revised_prompt:` (a template)."""
    if not any(key in value for key in ("image", "audio", "revised_prompt")):
        return None
    spec = MediaSpec()
    if "image" in value:
        spec = _image(value["image"], line_of(value, "image"), f"{where}.image", problems)
    elif "audio" in value:
        spec = _audio(value["audio"], line_of(value, "audio"), f"{where}.audio", problems)
    if "revised_prompt" in value:
        revised = _text(value, "revised_prompt", where, problems)
        spec = dataclasses.replace(spec, revised_prompt=revised)
    return spec


def _image(raw: Any, line: int, where: str, problems: Problems) -> MediaSpec:
    from mockai.generate import images  # (Pillow is imported only by rules that draw)

    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, Mapping) or not raw:
        problems.add(
            line,
            f"{where} must be a picture file's path or a mapping such as {{color: red}}, "
            f"{{pattern: checkerboard, colors: [black, white]}} or {{path: cat.png}}, "
            f"got {describe(raw)}",
        )
        return MediaSpec()
    _unknown(raw, IMAGE_KEYS, where, problems)
    _exclusive(raw, ("path", "color"), line, where, problems)
    _exclusive(raw, ("path", "pattern"), line, where, problems)
    path = _path(raw, line, where, problems, images.check_picture_file)
    color = raw.get("color")
    colors = raw.get("colors", [])
    if not isinstance(colors, list):
        colors = [colors]
    for name in ([color] if color is not None else []) + colors:
        try:
            if not isinstance(name, str):
                raise ValueError
            images.check_color(name)
        except ValueError:
            problems.add(
                line_of(raw, "colors" if name in colors else "color"),
                f"{where}: {describe(name)} is not a colour (a name such as red, #ff8800, or "
                "rgb(255, 136, 0))",
            )
    pattern = raw.get("pattern")
    if pattern is not None and pattern not in images.PATTERNS:
        problems.add(
            line_of(raw, "pattern"),
            f"{where}.pattern: {describe(pattern)} is not a pattern"
            + suggest(str(pattern), images.PATTERNS, noun="patterns"),
        )
    return MediaSpec(
        path=path,
        color=color if isinstance(color, str) else None,
        pattern=pattern if isinstance(pattern, str) else None,
        colors=tuple(c for c in colors if isinstance(c, str)),
    )


def _audio(raw: Any, line: int, where: str, problems: Problems) -> MediaSpec:
    from mockai.delivery.timing import parse_duration
    from mockai.generate import audio

    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, Mapping) or not raw:
        problems.add(
            line,
            f"{where} must be a sound file's path or a mapping such as {{duration: 2.5s}} or "
            f"{{path: hello.wav}}, got {describe(raw)}",
        )
        return MediaSpec()
    _unknown(raw, AUDIO_KEYS, where, problems)
    path = _path(raw, line, where, problems, lambda p: audio.check_sound_file(str(p)))
    duration = None
    if "duration" in raw:
        try:
            duration = parse_duration(raw["duration"])
            if not 0 < duration <= audio.MAX_SECONDS:
                raise ValueError(f"must be between 0 and {audio.MAX_SECONDS} seconds")
        except ValueError as error:
            problems.add(line_of(raw, "duration"), f"{where}.duration: {error}")
            duration = None
    return MediaSpec(path=path, duration=duration)


def _unknown(
    raw: Mapping[str, Any], known: tuple[str, ...], where: str, problems: Problems
) -> None:
    for key in raw:
        if key not in known:
            problems.add(line_of(raw, key), f"unknown key '{key}' in {where}" + suggest(key, known))


def _path(
    raw: Mapping[str, Any],
    line: int,
    where: str,
    problems: Problems,
    check: Callable[[Path], None],
) -> str | None:
    """A file a rule names: relative paths are relative to the scenario file's folder (to the
    working directory for rules given as data); it must exist and be of its kind."""
    if "path" not in raw:
        return None
    value = raw["path"]
    spot = line_of(raw, "path") or line
    if not isinstance(value, str) or not value:
        problems.add(spot, f"{where}.path must be a file path, got {describe(value)}")
        return None
    path = Path(value)
    if not path.is_absolute():
        scenario_file = Path(problems.file)
        if scenario_file.is_file():
            path = scenario_file.parent / path
    try:
        check(path)
    except ValueError as error:
        problems.add(spot, f"{where}.path: {error}")
        return None
    return str(path)
