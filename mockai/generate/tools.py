"""Which tool the generator calls, so that an unscripted agent loop runs to its end.

A model told `tool_choice: "required"` must call a tool on every step, and agent frameworks send
exactly that: pydantic-ai on every step of a run with a structured `output_type` (its output is a
`final_result` tool), LangChain's `tool_choice="any"`, instructor's parallel tools. Calling the
best-matching tool again after its result would loop until the framework's request limit, so the
choice follows the conversation since the last user turn:

- a fresh user turn calls the tool whose name (in words: `getWeather`, `GetWeather` and
  `get_weather` alike) or description shares most words with the question, a working tool
  before one that ends the conversation (so the agent's own tools run);
- after tool results, a tool not called since that user turn, preferring one that says it gives
  the final answer or ends the conversation (`final_result`, `submit`, `answer`, `done`, ...);
- once the final-answer tool was called (the framework came back: a retry after a validation
  error), a final-answer tool again; once every tool was called, the final-answer tool, else the
  tool called least, then the one called longest ago: never the same tool twice in a row while
  there is another.

With `auto` a tool is called only to answer a fresh user turn about one of the tools; after a
tool result the model answers in words. Everything is a function of the request, so the choice is
as deterministic as the rest of the generated answer.

Custom (freeform) tools are chosen like functions (their call carries text `input` instead of
JSON arguments); hosted tools (`web_search`, ...) never are.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from mockai.pipeline.exchange import Exchange, Message, Tool

_NAME_PARTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# Name words that say "this tool is the answer": pydantic-ai's `final_result`, `final_answer`,
# `submit`, `respond`, `answer`, `reply`, `done`, `finish`, `end_conversation`, ...
_FINAL_NAME_WORDS = frozenset(
    {"final", "finalize", "finalise", "answer", "respond", "reply", "submit", "done", "finish",
     "conclude"}
)  # fmt: skip
_ENDS_PAIRS = frozenset({"conversation", "chat", "session", "turn", "task"})
# Descriptions that say the same: "The final response which ends this conversation" (pydantic-ai).
_FINAL_DESCRIPTION = re.compile(
    r"\bfinal\s+(?:answer|response|result|output|reply)\b"
    r"|\bends?\s+(?:the|this)\s+(?:conversation|chat|session)\b",
    re.IGNORECASE,
)


def words(text: str) -> set[str]:
    """Content words of `text` (stemmed, no stopwords); `_` and `-` split tool names into words.

    Chinese, Japanese and Korean text gives its character pairs ("天气" of "今天天气怎么样"), not
    its single ideographs, which the embeddings also count: one character shared ("天" of "今天")
    would make small talk call a weather tool."""
    # The embeddings' tokenizer, imported with the first request offering tools.
    import mockai.generate.embeddings as embeddings

    found = embeddings.words(text.replace("_", " ").replace("-", " "))
    return {word for word in found if len(word) > 1}  # (other words have two letters or more)


def name_words(name: str) -> list[str]:
    """The words of a tool name, lowercased: `final_result`, `finalResult` -> final, result."""
    return [part.lower() for part in _NAME_PARTS.findall(name)]


def is_final(tool: Tool) -> bool:
    """Whether `tool` says it gives the final answer or ends the conversation."""
    parts = name_words(tool.name)
    if _FINAL_NAME_WORDS.intersection(parts):
        return True
    if any(a in ("end", "stop") and b in _ENDS_PAIRS for a, b in itertools.pairwise(parts)):
        return True
    return _FINAL_DESCRIPTION.search(tool.description) is not None


def is_custom(tool: Tool) -> bool:
    """Whether `tool` is a custom (freeform) tool the model may call: `parse_tool` gives hosted
    tools (`web_search`, ...) the custom kind too, named `<web_search>`; those are never called."""
    return tool.kind == "custom" and not tool.name.startswith("<")


def tool_to_call(exchange: Exchange) -> Tool | None:
    """The tool the generated answer calls, or None for an answer in words."""
    choice = exchange.tool_choice
    candidates = [
        tool
        for tool in exchange.tools
        if (tool.kind == "function" or is_custom(tool))
        and (not choice.allowed or tool.name in choice.allowed)
    ]
    if choice.mode == "none" or not candidates:
        return None
    if choice.mode == "named":
        return exchange.tool(choice.name or "")
    asked = words(exchange.user_text)
    if choice.mode == "auto":
        # Call a tool only to answer a fresh user turn that is about one of the tools.
        awaiting_answer = bool(exchange.messages) and exchange.messages[-1].role == "user"
        score, best = _best_match(candidates, asked)
        return best if awaiting_answer and score > 0 else None
    return _required_tool(candidates, _since_last_user(exchange.messages), asked)


def _required_tool(candidates: Sequence[Tool], turn: Sequence[Message], asked: set[str]) -> Tool:
    """The tool to call when one must be called, given the turn so far (after the user's)."""
    called = [call.name for message in turn for call in message.tool_calls]
    answered = any(message.role in ("tool", "function") for message in turn)
    if not called and not answered:  # a fresh user turn: the agent's own tools first
        working = [tool for tool in candidates if not is_final(tool)]
        return _best_match(working or candidates, asked)[1]
    # Results came back (their calls may be out of sight, in a stored previous response).
    finals = [tool for tool in candidates if is_final(tool)]
    uncalled = [tool for tool in candidates if tool.name not in called]
    finishing = any(tool.name in called for tool in finals)  # back after the final answer
    if uncalled and not finishing:
        uncalled_finals = [tool for tool in uncalled if is_final(tool)]
        return _best_match(uncalled_finals or uncalled, asked)[1]
    # Every tool was called, or the final answer came back (a retry after a validation error).
    pool = finals or candidates
    position = {tool.name: index for index, tool in enumerate(pool)}
    last_called = {name: index for index, name in enumerate(called)}
    return min(
        pool, key=lambda t: (called.count(t.name), last_called.get(t.name, -1), position[t.name])
    )


def _since_last_user(messages: Sequence[Message]) -> Sequence[Message]:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return messages[index + 1 :]
    return messages


def _best_match(tools: Sequence[Tool], asked: set[str]) -> tuple[int, Tool]:
    """The tool sharing most words with the question (the first listed on a tie), and how many.

    A name is read in words however it is written: `get_weather`, `getWeather` (JavaScript's
    tools) and `GetWeather` (the SDK's `pydantic_function_tool` names a tool after its model)
    all say "get weather" (read whole, the last two were one word no question shares).
    """
    scored = [
        (len(asked & words(f"{' '.join(name_words(tool.name))} {tool.description}")), -index, tool)
        for index, tool in enumerate(tools)
    ]
    score, _, best = max(scored, key=lambda item: item[:2])
    return score, best


def custom_grammar(exchange: Exchange, name: str) -> tuple[str, str] | None:
    """The grammar the custom tool `name` constrains its input with, as (syntax, definition):
    `lark` or `regex`; None for text (the default).

    Read from the body, which the codec checked (`common.parse_tool`): only a generated custom
    call needs it, and `Tool` keeps what every tool has. Chat nests the tool under `custom` and
    the grammar under `format.grammar`; the Responses API has both flat.
    """
    for raw in exchange.body.get("tools") or ():
        if not isinstance(raw, dict) or raw.get("type") != "custom":
            continue
        nested = raw.get("custom")
        spec = nested if isinstance(nested, dict) else raw
        if spec.get("name") != name:
            continue
        fmt = spec.get("format")
        if not isinstance(fmt, dict) or fmt.get("type") != "grammar":
            return None
        grammar = fmt.get("grammar") if isinstance(nested, dict) else fmt
        if not isinstance(grammar, dict):
            return None
        return str(grammar.get("syntax")), str(grammar.get("definition"))
    return None
