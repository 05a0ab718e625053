"""Batches of embeddings and moderation inputs and of legacy completions prompts, answered input
by input.

An embeddings (or moderations) request with several inputs is several questions sent together: the
vector of "the pinned query" must be the same whether it is embedded alone or in a batch with the
documents. So when a rule that tests the inputs (`user`) matches a batch, each input is answered by
the first rule that matches it *alone*, and the answers are put back in the request's order. An
input no rule matches alone gets the generator's answer for it. A legacy completions request with
several prompts is the same (each prompt is its own completion: lm-evaluation-harness sends
batches of them): each prompt gets `n` choices, prompt by prompt.

Only batches need this, and only when some rule may answer an input alone otherwise than the batch:
one testing the inputs (`user`), or one with a `body` condition on the inputs' field (`prompt`,
`input`), which sees the whole list in the batch and one input's own value alone. A batch whose
rules before the one it matched have no such condition, and whose rule does not test the inputs,
takes the plain path (no earlier rule answers an input alone, and that rule answers them all), at
no extra cost. A rule that matched the batch without testing the inputs answers every input an
earlier rule does not answer alone, though alone an input may fail it (`body: {input: [a, b]}`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mockai.catalog import infer
from mockai.generate import embeddings, moderation
from mockai.pipeline.exchange import Endpoint, Exchange, Message
from mockai.pipeline.fingerprint import request_keys
from mockai.pipeline.reply import Choice, Reply
from mockai.scenario.matchers.fields import INPUTS_FIELD, BodyField
from mockai.scenario.matchers.texts import User
from mockai.scenario.rules import Rule

if TYPE_CHECKING:
    from mockai.generate.fallback import FallbackGenerator

BATCHED = frozenset({Endpoint.EMBEDDINGS, Endpoint.MODERATIONS, Endpoint.COMPLETIONS})


def _field(exchange: Exchange) -> str:
    """The body field holding the inputs."""
    return INPUTS_FIELD[exchange.endpoint]


def splittable(exchange: Exchange) -> bool:
    """True for a batch whose inputs can be asked about one by one (a list, one item each)."""
    if exchange.endpoint not in BATCHED or len(exchange.inputs) < 2:
        return False
    raw = exchange.body.get(_field(exchange))
    # A list of multimodal parts is one moderation input, whatever its length (and a list of
    # token ids one prompt: its `inputs` has one item).
    return isinstance(raw, list) and len(raw) == len(exchange.inputs)


def tests_inputs(rule: Rule) -> bool:
    """True when `rule` may hold for some inputs of a batch and not for others."""
    return any(isinstance(condition, User) for condition in rule.conditions)


def splits(rule: Rule, exchange: Exchange) -> bool:
    """True when `rule` has a `body` condition on the field holding `exchange`'s inputs: it sees
    the whole list in a batch, and one input's own value in the request of that input alone."""
    field = _field(exchange)
    return any(
        isinstance(condition, BodyField) and condition.path[0] == field
        for condition in rule.conditions
    )


def alone(exchange: Exchange, indexes: Sequence[int]) -> Exchange:
    """The request as if it had been sent with only the inputs at `indexes` (one input: as a
    request of it alone sends it, `"input": "text"`, so `body` conditions see it so)."""
    field = _field(exchange)
    raw = exchange.body[field]
    texts = tuple(exchange.inputs[i] for i in indexes)
    body = {**exchange.body, field: [raw[i] for i in indexes]}
    if len(indexes) == 1:
        body[field] = raw[indexes[0]]
    if exchange.endpoint is not Endpoint.COMPLETIONS:
        return replace(exchange, inputs=texts, user_text="\n".join(texts), body=body)
    # One turn, as the codec parses any completions request (see completions.parse).
    messages = (Message("user", texts[-1]),)
    return replace(exchange, inputs=texts, user_text=texts[-1], messages=messages, body=body)


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


def answers(reply: Reply | None, exchange: Exchange, generator: FallbackGenerator) -> list[Any]:
    """One answer (a vector, a complete moderation result, or a prompt's `n` choices) per input
    of `exchange`.

    `reply` is what a rule scripted for exactly these inputs (None: nothing, generate); scripted
    answers cycle over the inputs, as they do for a whole request.
    """
    seed = generator.seed
    count = len(exchange.inputs)
    if exchange.endpoint is Endpoint.COMPLETIONS:
        return _completions(reply, exchange, generator)
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


def _completions(
    reply: Reply | None, exchange: Exchange, generator: FallbackGenerator
) -> list[tuple[Choice, ...]]:
    """Each prompt's `n` choices: the rule's, cycled for each prompt as for a request of it
    alone; without a rule, what the generator answers a request of that prompt alone (its own
    content key, so the same text as when it is sent on its own)."""
    if reply is not None:
        scripted = reply.choices or (Choice(content=""),)
        return [
            tuple(scripted[k % len(scripted)] for k in range(exchange.n)) for _ in exchange.inputs
        ]
    generated = []
    for index in range(len(exchange.inputs)):
        single = alone(exchange, (index,)) if len(exchange.inputs) > 1 else exchange
        key, _ = request_keys(generator.seed, Endpoint.COMPLETIONS.value, single.body)
        generated.append(generator.reply(single, key).choices[: exchange.n])
    return generated


def merged(exchange: Exchange, parts: Sequence[tuple[Group, list[Any]]], base: Reply) -> Reply:
    """One Reply for the whole batch from each group's answers; `base` gives usage."""
    slots: list[Any] = [None] * len(exchange.inputs)
    for part, values in parts:
        for index, value in zip(part.indexes, values, strict=True):
            slots[index] = value
    if exchange.endpoint is Endpoint.COMPLETIONS:
        # Prompt-major, as the API indexes them: choice `prompt_index * n + k`.
        choices = tuple(choice for prompt in slots for choice in prompt)
        return replace(base, choices=choices, embeddings=None, moderation=None)
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
