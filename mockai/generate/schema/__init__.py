"""JSON values valid against a JSON Schema, fully determined by a seeded `random.Random`.

mockai invents content when a request asks for structured output (`response_format` of type
`json_schema`, or the Responses API `text.format`) or for tool-call arguments (`arguments: auto`)
and nothing scripted them. The value must validate against the user's schema, so the code under
test can parse it, and it should look plausible (a `city` is a city, a `query` echoes the user's
message), so that test logs read like real traffic.

Schemas come from pydantic's `model_json_schema()`, OpenAI strict mode and hand-written JSON, so
this module covers what those use:

* `$ref` into the same document (`#`, `#/$defs/...`, `#/definitions/...`), including recursion,
  and `$dynamicRef` (2019-09: `$recursiveRef`) where it means the same: to `#...` or to a
  `$dynamicAnchor` defined once, in a document without an `$id` below its root;
  past `nodes.MAX_DEPTH` `$ref` hops only the minimal instance is built (required properties,
  `minItems` items, the null / `$ref`-free branch of an `anyOf`), so recursive models terminate.
  Likewise once the value holds `nodes.LEAN_SIZE` tokens (~800): recursion through several fields
  at once would otherwise multiply at every level, past any output limit.
* `allOf` (merged into one schema), `anyOf` / `oneOf` (a branch picked by the RNG; `oneOf` is
  re-checked so that exactly one branch matches), `if`/`then`/`else`, `not`, `enum`, `const`,
  `type` as a string or list, and OpenAPI 3.0 `nullable`.
* objects (`properties`, `required`, `additionalProperties`, `patternProperties`,
  `minProperties`/`maxProperties`, `propertyNames`, `dependentRequired`, `dependentSchemas` of
  keys every object holds, merged in), arrays (`items`,
  `prefixItems`, draft-07 tuple `items`, `minItems`/`maxItems`, `uniqueItems`, `contains`),
  strings (`minLength`/`maxLength`, `pattern`, common `format`s), numbers (`minimum`, `maximum`,
  exclusive bounds in draft-04 and 2020-12 spelling, `multipleOf`), booleans and null.

Limits, on purpose:

* Only local refs; remote refs, `$anchor`, other `$dynamicRef`s and `$id`-relative refs raise
  `SchemaGenerationError`.
* `not`, `oneOf` exclusivity, `if`/`then`/`else`, `maxContains`, other `dependentSchemas` and
  `allOf` members that cannot be merged (two different `pattern`s, say) are best effort: the value
  is generated without them, checked with jsonschema, and regenerated a few times.
* `nullable: true` produces `null` only as a last resort: JSON Schema 2020-12 ignores `nullable`,
  so a non-null value is the one that is valid under both readings.
* `pattern` has Python `re` semantics, as in jsonschema, plus ECMA-262's Unicode property
  escapes (`\\p{L}`: searched with `regex`, expanded from a sample of their characters). With
  `minLength` / `maxLength`, `sized` builds a match of a length within them (with a character
  of each class that leading `(?=.*X)` lookaheads ask for; other lookarounds are only checked);
  otherwise, or for what `sized` cannot build (backreferences), rstr expands it, and failing
  that checked candidates.
* Unknown `format`s are ignored. For known ones (pydantic's own `uuid4`, `ipv4network`,
  `multi-host-uri`, ... included) a name-based value (a `birthday`'s birth date, a `redis_url`'s
  `redis://`) is kept only if well-formed; otherwise mockai's own generators make one that passes
  jsonschema's (or pydantic's) checks. With a `pattern` or length bounds the plausible values
  miss, a format's short forms (`a@b.co`, `::1`) are stretched to the bounds and spliced with
  what the pattern expands to (`jane` + `@acme.com`).
* A union of numbers and bare strings (pydantic's `Decimal`) gets a number: the string stands for
  one. `uniqueItems` numbers widen their plausible range to hold as many as asked.

Determinism: every random choice goes through the `rng` argument; a Faker, when given, is reseeded
from it first. Nothing uses `hash()` of strings (set order of strings varies between processes),
the global `random` module or the clock.

Layout: `generator` drives one value per schema node (flatten, generate, check, retry); `resolve`
follows `$ref`s and merges `allOf`; `combinators` picks `anyOf`/`oneOf` branches and `if` sides and
turns `not` into checks, which `checks` runs within a bound on their work; `objects`, `arrays`,
`strings` (with `formats`, `patterns` and `sized`) and `numbers` make values of each type; `names`
and `plausible` make them look real; `nodes` holds what they all share.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mockai.generate.schema.generator import Generator
from mockai.generate.schema.nodes import SchemaGenerationError

if TYPE_CHECKING:
    from faker import Faker

__all__ = ["SchemaGenerationError", "instance", "instance_within"]


def instance(
    schema: Mapping[str, Any],
    rng: random.Random,
    *,
    faker: Faker | None = None,
    context: str = "",
) -> Any:
    """A value valid against `schema`, fully determined by the state of `rng`.

    `faker`, when given, is reseeded from `rng` and used for plausible names, cities, sentences.
    `context` (the user's message) is echoed into query-like string properties (`query`, `q`,
    `prompt`, ...). Raises `SchemaGenerationError` when the schema cannot be satisfied.
    """
    if faker is not None:
        faker.seed_instance(rng.getrandbits(32))
    return Generator(schema, rng, faker, context).generate()


def instance_within(
    schema: Mapping[str, Any],
    rng: random.Random,
    size: int,
    *,
    faker: Faker | None = None,
    context: str = "",
) -> tuple[Any, bool]:
    """`instance()` for an answer of at most `size` tokens: (value, complete).

    Whatever the schema asks (`minItems: 150000` of `minLength: 1000` strings), generation stops
    once the value's JSON holds about `size` tokens: the value is then incomplete (`complete` is
    False; it may not validate) and its JSON is meant to be cut at the token limit, as the API
    cuts an answer. Otherwise it is exactly what `instance()` gives for the same RNG state.
    """
    if faker is not None:
        faker.seed_instance(rng.getrandbits(32))
    generator = Generator(schema, rng, faker, context, size)
    value = generator.generate()
    return value, not generator.exhausted
