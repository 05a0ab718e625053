"""schemathesis against a real server: every served operation of the spec, valid and invalid
requests, no 5xx, errors in the API's shape, 2xx answers valid against the spec (spec_fuzz.py).

A small deterministic run; `python scripts/fuzz_spec.py` runs the same checks at length.
"""

from __future__ import annotations

import spec_fuzz


def test_the_spec_operations_mockai_serves() -> None:
    labels = {operation.label for operation in spec_fuzz.operations()}
    assert len(labels) == 26
    assert {
        "POST /chat/completions",
        "POST /responses",
        "GET /responses/{response_id}",
        "POST /conversations/{conversation_id}/items",
        "DELETE /models/{model}",
        "POST /responses/input_tokens",
    } <= labels
    assert not any("compact" in label or "beta" in label for label in labels)


def test_fuzzing_from_the_spec_finds_nothing() -> None:
    report = spec_fuzz.fuzz(max_examples=6)
    assert report.cases == 26 * 2 * 6
    assert not report.failures, report.summary()
    assert report.server_errors == 0
