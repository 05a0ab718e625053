"""schemathesis against a real server: every served operation of the spec, valid and invalid
requests, no 5xx, errors in the API's shape, 2xx answers valid against the spec (spec_fuzz.py).

A deterministic run sized for CI: the coverage phase (each property missing, of each wrong type,
at its bounds) in full for every operation but the four whose request schemas yield thousands of
cases, and a few random cases per operation and mode. `python scripts/fuzz_spec.py` runs
everything, at length.
"""

from __future__ import annotations

import spec_fuzz

# ~6,000-9,000 coverage cases each: their first ones here, all of them in scripts/fuzz_spec.py.
LARGE = (
    "POST /responses",
    "POST /responses/input_tokens",
    "POST /conversations",
    "POST /conversations/{conversation_id}/items",
)


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
    report = spec_fuzz.fuzz(max_examples=4, coverage=1000, coverage_caps=dict.fromkeys(LARGE, 100))
    assert report.operations == 26
    assert report.cases > 2000
    assert not report.failures, report.summary()
    assert report.server_errors == 0
