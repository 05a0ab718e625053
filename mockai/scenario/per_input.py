"""Batches of embeddings and moderation inputs, answered input by input.

An embeddings (or moderations) request with several inputs is several questions sent together: the
vector of "the pinned query" must be the same whether it is embedded alone or in a batch with the
documents. So when a rule that tests the inputs (`user`) matches a batch, each input is answered by
the first rule that matches it *alone*, and the answers are put back in the request's order. An
input no rule matches alone gets the generator's answer for it.

Only batches need this, and only when the rule the whole batch matched tests the inputs: any other
rule matches each input exactly as it matches the batch, so the plain path (one rule for the whole
request) is taken and costs nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mockai.catalog import infer
from mockai.generate import embeddings, moderation
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import Reply
from mockai.scenario.matchers.texts import User
from mockai.scenario.rules import Rule

BATCHED = frozenset({Endpoint.EMBEDDINGS, Endpoint.MODERATIONS})


def splittable(exchange: Exchange) -> bool:
    """True for a batch whose inputs can be asked about one by one (a list, one item each)."""
    if exchange.endpoint not in BATCHED or len(exchange.inputs) < 2:
        return False
    raw = exchange.body.get("input")
    # A list of multimodal parts is one moderation input, whatever its length.
    return isinstance(raw, list) and len(raw) == len(exchange.inputs)


def tests_inputs(rule: Rule) -> bool:
    """True when `rule` may hold for some inputs of a batch and not for others."""
    return any(isinstance(condition, User) for condition in rule.conditions)


def alone(exchange: Exchange, indexes: Sequence[int]) -> Exchange:
    """The request as if it had been sent with only the inputs at `indexes`."""
    raw = exchange.body["input"]
    texts = tuple(exchange.inputs[i] for i in indexes)
    body = {**exchange.body, "input": [raw[i] for i in indexes]}
    return replace(exchange, inputs=texts, user_text="\n".join(texts), body=body)


@dataclass(frozen=True)
class Group:
    """The inputs one rule answers (`rule` None: no rule matches them alone)."""

    rule: Rule | None
    indexes: tuple[int, ...]


def group(rule_for: Sequence[Rule | None]) -> list[Group]:
    """Inputs grouped by the rule answering each, groups in the order of their first input."""
    groups: dict[str | None, list[int]] = {}
    rules: dict[str | None, Rule | None] = {}
    for index, rule in enumerate(rule_for):
        name = rule.name if rule is not None else None
        groups.setdefault(name, []).append(index)
        rules[name] = rule
    return [Group(rules[name], tuple(indexes)) for name, indexes in groups.items()]


def answers(reply: Reply | None, exchange: Exchange, seed: int) -> list[Any]:
    """One answer (a vector, or a complete moderation result) per input of `exchange`.

    `reply` is what a rule scripted for exactly these inputs (None: nothing, generate); scripted
    answers cycle over the inputs, as they do for a whole request.
    """
    count = len(exchange.inputs)
    if exchange.endpoint is Endpoint.EMBEDDINGS:
        given: Sequence[Any] | None = reply.embeddings if reply is not None else None
        if not given:
            # (the size the request's provider catalog gave the model at parse time)
            dimensions = exchange.model_dimensions or infer(exchange.model).dimensions
            given = embeddings.reply_for(exchange, dimensions, seed).embeddings or ()
        return [given[i % len(given)] for i in range(count)]
    generated = moderation.reply_for(exchange, seed).moderation or ()
    scripted: Sequence[Mapping[str, Any]] | None = reply.moderation if reply is not None else None
    if not scripted:
        return list(generated)
    return [moderation.complete(scripted[i % len(scripted)], generated[i]) for i in range(count)]


def merged(exchange: Exchange, parts: Sequence[tuple[Group, list[Any]]], base: Reply) -> Reply:
    """One Reply for the whole batch from each group's answers; `base` gives usage."""
    slots: list[Any] = [None] * len(exchange.inputs)
    for part, values in parts:
        for index, value in zip(part.indexes, values, strict=True):
            slots[index] = value
    if exchange.endpoint is Endpoint.MODERATIONS:
        return replace(base, moderation=tuple(slots), embeddings=None)
    warnings = base.warnings
    cap = exchange.dimensions  # longer vectors are cut to it when rendered
    sizes = sorted({min(len(v), cap) if cap else len(v) for v in slots})
    if len(sizes) > 1:
        # The API never mixes sizes in one answer; a pinned vector shorter than the model's
        # is fine alone, but next to generated ones the app would see ragged rows.
        mixed = (
            "this batch's inputs were answered by different rules with vectors of different "
            f"sizes ({', '.join(map(str, sizes))}): pin vectors of the model's size, or ask for "
            "`dimensions`"
        )
        warnings = (*warnings, mixed)
    return replace(base, embeddings=tuple(slots), moderation=None, warnings=warnings)
