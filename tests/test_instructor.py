"""instructor against a plain mockai (no rules): every way it asks gets a schema-valid answer.

`response_model=list[User]` and `create_iterable` send a wrapper whose `tasks` list is optional
(`"required": []`): `{}` would be an empty list. `Mode.JSON` and `Mode.MD_JSON` write the schema
into the system message (JSON mode, or plain text asking for a ```json block). Partial and
iterable streams parse the streamed arguments as they come.

instructor cannot share the suite's environment (see tests/instructor_env.py): it runs in
`.venv-instructor` (tests/instructor_driver.py, one process for every case), against a server
this module starts here, whose answers are checked against the OpenAPI spec as everywhere else.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conformance
import instructor_env
import pytest
from pydantic import BaseModel, Field

from mockai import MockServer
from mockai.pipeline.journal import JournalEntry


class User(BaseModel):
    name: str
    age: int = Field(ge=0, le=130)


class Contact(BaseModel):
    full_name: str
    email_address: str
    home_city: str | None = None


# Building `.venv-instructor` on first use (when the test command did not) takes ~40 s of pip.
pytestmark = pytest.mark.timeout(600)

MODES = ["TOOLS", "JSON", "MD_JSON", "JSON_SCHEMA", "RESPONSES_TOOLS"]
LIST_TEXTS = ["Alice is 30 and Bob is 25.", "Users: Tom 4, Ann 5", "no users here"]
CASES: list[dict[str, str]] = [
    *(
        {"id": f"list-{mode}-{i}", "call": "list", "mode": mode, "model": "User", "text": text}
        for mode in MODES
        for i, text in enumerate(LIST_TEXTS)
    ),
    *(
        {"id": f"one-{mode}", "call": "one", "mode": mode, "model": "Contact",
         "text": "Alice Smith from Lisbon, alice@example.com"}
        for mode in MODES
    ),
    *(
        {"id": f"iterable-{mode}", "call": "iterable", "mode": mode, "model": "User",
         "text": "Extract the users: Alice is 30 and Bob is 25."}
        for mode in ("TOOLS", "JSON", "MD_JSON")
    ),
    *(
        {"id": f"partial-{mode}", "call": "partial", "mode": mode, "model": "Contact",
         "text": "Alice Smith lives in Lisbon"}
        for mode in ("TOOLS", "JSON", "JSON_SCHEMA")
    ),
]  # fmt: skip


class Run:
    """What the driver reported per case, and the server's journal of it."""

    def __init__(self, results: dict[str, Any], requests: list[JournalEntry]) -> None:
        self.results = results
        self.requests = requests

    def value(self, case_id: str) -> Any:
        result = self.results[case_id]
        assert "error" not in result, result["error"]
        return result["value"]

    def requests_of(self, case_id: str) -> list[JournalEntry]:
        return [e for e in self.requests if e.headers.get("x-test-case") == case_id]


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    python = instructor_env.ensure()
    driver = Path(__file__).with_name("instructor_driver.py")
    server: MockServer
    with conformance.checked_server() as server:
        job = json.dumps({"base_url": server.url, "cases": CASES})
        done = subprocess.run(
            [str(python), str(driver)], input=job, capture_output=True, text=True, timeout=90
        )
        assert done.returncode == 0, done.stderr
        yield Run(json.loads(done.stdout), list(server.requests))


@pytest.mark.parametrize("mode", MODES)
def test_a_list_of_users_is_never_empty(run: Run, mode: str) -> None:
    for i in range(len(LIST_TEXTS)):
        users = run.value(f"list-{mode}-{i}")
        assert users, "list[User] must not come back empty"
        for user in users:
            User.model_validate(user)
        assert len(run.requests_of(f"list-{mode}-{i}")) == 1  # valid the first time: no re-ask
    assert all(e.source == "generator" for e in run.requests)


@pytest.mark.parametrize("mode", MODES)
def test_a_single_model_in_every_mode(run: Run, mode: str) -> None:
    contact = Contact.model_validate(run.value(f"one-{mode}"))
    assert contact.full_name and "@" in contact.email_address
    assert contact.home_city in (None, "Lisbon")  # the place the message names
    (request,) = run.requests_of(f"one-{mode}")
    if mode == "JSON":  # the schema is only in the system message
        assert request.body["response_format"] == {"type": "json_object"}
    if mode == "MD_JSON":  # no response_format at all: a ```json block in plain text
        assert "response_format" not in request.body


@pytest.mark.parametrize("mode", ["TOOLS", "JSON", "MD_JSON"])
def test_create_iterable_yields_users(run: Run, mode: str) -> None:
    users = run.value(f"iterable-{mode}")
    assert users
    for user in users:
        User.model_validate(user)
    assert all(e.stream for e in run.requests_of(f"iterable-{mode}"))


@pytest.mark.parametrize("mode", ["TOOLS", "JSON", "JSON_SCHEMA"])
def test_create_partial_streams_to_a_complete_model(run: Run, mode: str) -> None:
    result = run.results[f"partial-{mode}"]
    contact = Contact.model_validate(run.value(f"partial-{mode}"))
    assert contact.home_city in (None, "Lisbon")
    assert result["partials"] > 1  # it arrived piece by piece
    assert all(e.stream for e in run.requests_of(f"partial-{mode}"))
