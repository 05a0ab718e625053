"""Runs instructor calls against a mockai server; executed by `.venv-instructor`'s python.

(Not a test module: tests/test_instructor.py starts the server, runs this once with every case,
and asserts on what it prints. Only instructor, openai and pydantic are importable here.)

stdin: {"base_url": ..., "cases": [{"id", "call", "mode", "model", "text"}]}
stdout: one JSON object {case id: {"value": ..., "partials": n} or {"error": "..."}}
Each case's requests carry the header `x-test-case: <id>`, so the test finds them in the journal.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import instructor
import openai
from pydantic import BaseModel, Field


class User(BaseModel):
    name: str
    age: int = Field(ge=0, le=130)


class Contact(BaseModel):
    full_name: str  # `_`: streamed arguments must keep it
    email_address: str
    home_city: str | None = None


MODELS: dict[str, type[BaseModel]] = {"User": User, "Contact": Contact}


def run(case: dict[str, Any], base_url: str) -> dict[str, Any]:
    with openai.OpenAI(
        base_url=base_url,
        api_key="sk-test",
        max_retries=0,
        default_headers={"x-test-case": case["id"]},
    ) as client:
        patched = instructor.from_openai(client, mode=getattr(instructor.Mode, case["mode"]))
        model = MODELS[case["model"]]
        kwargs: dict[str, Any] = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": case["text"]}],
            "max_retries": 0,
        }
        completions = patched.chat.completions
        if case["call"] == "list":
            users = completions.create(response_model=list[model], **kwargs)  # type: ignore[valid-type]
            return {"value": [user.model_dump() for user in users]}
        if case["call"] == "iterable":
            items = list(completions.create_iterable(response_model=model, **kwargs))
            return {"value": [item.model_dump() for item in items]}
        if case["call"] == "partial":
            partials = list(completions.create_partial(response_model=model, **kwargs))
            final = model.model_validate(partials[-1].model_dump())  # complete at the end
            return {"value": final.model_dump(), "partials": len(partials)}
        return {"value": completions.create(response_model=model, **kwargs).model_dump()}


def main() -> None:
    job = json.load(sys.stdin)
    results: dict[str, Any] = {}
    for case in job["cases"]:
        try:
            results[case["id"]] = run(case, job["base_url"])
        except Exception as error:  # reported per case; the test shows it
            results[case["id"]] = {"error": f"{type(error).__name__}: {error}"[:2000]}
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
