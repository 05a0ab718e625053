"""Validate what mockai sends against the official OpenAPI spec (tests/openapi/openapi.json).

`validate(schema_name, instance)` raises `jsonschema.ValidationError` with the failing path.
The spec is OpenAPI 3.1 but still carries 3.0-style `nullable: true` in places; JSON Schema ignores
that keyword, so it is folded into `type` before validation (otherwise valid `null`s would fail).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).parent / "openapi" / "openapi.json"
_URI = "urn:openai-openapi"


def _fold_nullable(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: _fold_nullable(value) for key, value in node.items()}
        if node.pop("nullable", False):
            kind = node.get("type")
            if "enum" in node and None not in node["enum"]:
                node["enum"] = [*node["enum"], None]
            if isinstance(kind, str):
                node["type"] = [kind, "null"]
            elif isinstance(kind, list) and "null" not in kind:
                node["type"] = [*kind, "null"]
            elif kind is None and ("anyOf" in node or "oneOf" in node or "$ref" in node or "allOf" in node):
                node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_fold_nullable(item) for item in node]
    return node


@functools.cache
def spec() -> dict[str, Any]:
    """The vendored spec, with `nullable` folded into types."""
    return _fold_nullable(json.loads(SPEC_PATH.read_text(encoding="utf-8")))


@functools.cache
def _registry() -> Registry:
    return Registry().with_resource(_URI, Resource(contents=spec(), specification=DRAFT202012))


@functools.cache
def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    """A compiled validator for `#/components/schemas/<schema_name>`."""
    if schema_name not in spec()["components"]["schemas"]:
        raise KeyError(f"no component schema named {schema_name!r}")
    ref = {"$ref": f"{_URI}#/components/schemas/{schema_name}"}
    return jsonschema.Draft202012Validator(ref, registry=_registry())


def validate(schema_name: str, instance: Any) -> None:
    """Raise AssertionError (naming the path and the rule) if `instance` breaks the schema."""
    error = jsonschema.exceptions.best_match(validator(schema_name).iter_errors(instance))
    if error is not None:
        where = "".join(f"[{p!r}]" for p in error.absolute_path) or "<root>"
        rule = "/".join(str(p) for p in error.absolute_schema_path)
        raise AssertionError(
            f"{schema_name}: at {where}: {error.message} (schema rule {rule})\n"
            f"instance: {json.dumps(instance)[:2000]}"
        )


def response_event_schema(event_type: str) -> str:
    """The component schema of one Responses stream event type (from the ResponseStreamEvent union)."""
    return _event_schemas()[event_type]


@functools.cache
def _event_schemas() -> dict[str, str]:
    schemas = spec()["components"]["schemas"]
    union = schemas["ResponseStreamEvent"]
    out: dict[str, str] = {}
    for option in union.get("anyOf") or union.get("oneOf") or []:
        name = option["$ref"].rsplit("/", 1)[-1]
        kind = schemas[name].get("properties", {}).get("type", {})
        for value in kind.get("enum", []) or ([kind["const"]] if "const" in kind else []):
            out[value] = name
    return out
