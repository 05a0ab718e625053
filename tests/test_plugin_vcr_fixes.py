"""The pytest plugin beside pytest-recording (fourth bug hunt): a test marked `vcr` with the mockai
fixture, pytest-recording's shortened names for long test ids, its JSON cassettes; and /models
forwarded, recorded and replayed like any request. Plugin cases run through pytester the way a
user meets them: a test file, a pytest run, its outcome and the files it left."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conformance
import openai
import pytest
import vcr as vcrpy
import yaml
from hypothesis import example, given
from hypothesis import strategies as st
from pytest_mockai.options import cassette_file_name, cassette_name

from mockai import MockServer
from mockai.cassette import format as cassette_format
from mockai.scenario import respond, templates

# Loaded before any pytester run: pytester forgets the modules first imported during a run (see
# test_plugin_hunt_fixes.py); vcrpy too, which the stand-in for pytest-recording imports.
assert cassette_format.CASSETTE_SUFFIXES and respond.StaleFixture and templates and vcrpy

pytest_plugins = ["pytester"]

SECRET = "sk-proj-" + "Vq3xW8vL1mN6bR2tY9cK4pH7" * 2  # key-shaped, never real

# pytest-recording's side of it, in short (it is not installed here): its `vcr` marker and its
# autouse `vcr` fixture, which turns vcrpy on for a test so marked, in the test's process, with
# the cassette at `cassettes/<module>/<test>.yaml`.
PYTEST_RECORDING_STAND_IN = """
import os

import conformance
import openai
import pytest
import vcr as vcrpy


def pytest_configure(config):
    config.addinivalue_line("markers", "vcr: pytest-recording's marker")


@pytest.fixture(autouse=True)
def vcr(request):
    if request.node.get_closest_marker("vcr") is None:
        yield None
        return
    folder = os.path.join(request.path.parent, "cassettes", request.path.stem)
    path = os.path.join(folder, request.node.name + ".yaml")
    with vcrpy.use_cassette(path, record_mode="once") as cassette:
        yield cassette
"""


@pytest.fixture
def upstream() -> Iterator[MockServer]:
    """An OpenAI-compatible API to record from (another mockai, answering anything)."""
    with MockServer(log_requests=False) as server:
        yield server


def _run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_app=source)
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def _written(folder: Path) -> str:
    """Every file under `folder`, read as one text (empty when there is none)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in files)


# --- 1. @pytest.mark.vcr with the mockai fixture ----------------------------------------------

BOTH_PLUGINS = """
    import pytest

    def ask(mockai):
        with mockai.openai_client(api_key="{secret}", max_retries=0) as client:
            return client.chat.completions.create(
                model="gpt-4o-mini", messages=[{{"role": "user", "content": "both"}}]
            )

    @pytest.mark.vcr
    def test_marked(mockai):
        ask(mockai)

    def test_unmarked(mockai):
        ask(mockai)
        assert mockai.requests[0].source == "upstream"
"""


def test_a_vcr_marked_test_using_mockai_fails_before_anything_is_recorded(
    pytester: pytest.Pytester, upstream: MockServer
) -> None:
    pytester.makeconftest(PYTEST_RECORDING_STAND_IN)
    record = [f"--mockai-upstream={upstream.url}", "--mockai-record-mode=once"]
    result = _run(pytester, BOTH_PLUGINS.format(secret=SECRET), *record)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_marked*",
            (
                "mockai: this test has both @pytest.mark.vcr (pytest-recording) and the mockai "
                "fixture with a cassette (*test_marked.yaml)*Drop @pytest.mark.vcr from tests "
                "that use the mockai fixture*or run with -p no:recording."
            ),
        ]
    )
    folder = pytester.path / "cassettes" / "test_app"
    assert sorted(p.name for p in folder.iterdir()) == ["test_unmarked.yaml"]
    assert SECRET not in _written(pytester.path / "cassettes")
    # Without pytest-recording's fixture (`-p no:recording`) the marker alone changes nothing.
    shutil.rmtree(pytester.path / "cassettes")
    (pytester.path / "conftest.py").write_text(
        "def pytest_configure(config):\n    config.addinivalue_line('markers', 'vcr: inert')\n"
    )
    _run(pytester, BOTH_PLUGINS.format(secret=SECRET), *record).assert_outcomes(passed=2)
    assert SECRET not in _written(pytester.path / "cassettes")


# --- 2. test ids too long for a file name ------------------------------------------------------

PYTEST_RECORDING_VERSION = "0.15.0"  # the functions below are copied from this release
try:
    MAX_FILENAME_LEN = os.pathconf(".", "PC_NAME_MAX")
except (AttributeError, ValueError, OSError):
    MAX_FILENAME_LEN = 255


def _pytest_recordings_file(class_name: str | None, test_name: str, config: dict[str, Any]) -> str:
    """pytest-recording 0.15.0's cassette file name, as written there: `plugin.py`
    `get_default_cassette_name`, then `_vcr.py` `use_cassette`'s shortening and
    `get_path_transformer`'s suffix (vcrpy's `VCR.ensure_suffix`)."""
    cassette_name = f"{class_name}.{test_name}" if class_name else test_name
    for ch in r"<>?%*:|\"'/\\":
        cassette_name = cassette_name.replace(ch, "-")
    default_cassette = cassette_name
    suffix = config.get("serializer", ".yaml")
    if len(default_cassette) + len(suffix) > MAX_FILENAME_LEN:
        hash_part = hashlib.md5(default_cassette.encode()).hexdigest()
        prefix = default_cassette[: MAX_FILENAME_LEN - len(suffix) - len(hash_part) - 3]
        default_cassette = f"{prefix}...{hash_part}"
    path_suffix = f".{config['serializer']}" if "serializer" in config else ".yaml"
    path: str = vcrpy.VCR.ensure_suffix(path_suffix)(default_cassette)
    return path


# Short ones, and long ones (a piece repeated) around and far past the limit.
TEST_IDS = st.text(st.characters(codec="utf-8"), max_size=40) | st.builds(
    str.__mul__,
    st.text(st.characters(codec="utf-8") | st.sampled_from("x/?é🌊"), min_size=1, max_size=6),
    st.integers(30, 300),
)


@given(
    class_name=st.none() | st.from_regex(r"[A-Za-z_]\w{0,12}", fullmatch=True),
    test_id=TEST_IDS,
    serializer=st.sampled_from(["yaml", "json"]),
)
# At pytest-recording's limit: `test_ask[...]` of 250 characters fits with `.yaml`, of 251 not;
# with `json` (it allows 4 characters for `.json`) 251 still fits its count, 252 not.
@example(class_name=None, test_id="x" * 240, serializer="yaml")
@example(class_name=None, test_id="x" * 241, serializer="yaml")
@example(class_name=None, test_id="x" * 241, serializer="json")
@example(class_name=None, test_id="x" * 242, serializer="json")
def test_cassette_files_are_named_as_pytest_recording_names_them(
    class_name: str | None, test_id: str, serializer: str
) -> None:
    test_name = f"test_ask[{test_id}]"
    config = {} if serializer == "yaml" else {"serializer": serializer}
    expected = _pytest_recordings_file(class_name, test_name, config)
    assert cassette_file_name(cassette_name(class_name, test_name), serializer) == expected


LONG_IDS = """
    import pytest

    LONG = "summarize-a-long-support-transcript-about-billing-" * 6  # 300 characters
    WIDE = "\\N{LATIN SMALL LETTER E WITH ACUTE}" * 200  # (pytest escapes it: 800 characters)

    @pytest.mark.parametrize("question", [LONG], ids=[LONG])
    def test_recorded(mockai, question):
        with mockai.openai_client(max_retries=0) as client:
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "json"}]
            )
        assert mockai.requests[0].source == "cassette"
        assert reply.choices[0].message.content == "Recorded under a shortened name."

    @pytest.mark.parametrize("question", [LONG, WIDE], ids=[LONG, WIDE])
    def test_rules_only(mockai, question):
        mockai.add_rule({"match": {"user": question}, "reply": "ok"})
        with mockai.openai_client(max_retries=0) as client:
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
            )
        assert reply.choices[0].message.content == "ok"
"""


def test_long_test_ids_use_pytest_recordings_shortened_cassettes(
    pytester: pytest.Pytester,
) -> None:
    name = "test_recorded[" + "summarize-a-long-support-transcript-about-billing-" * 6 + "]"
    shortened = _pytest_recordings_file(None, name, {})
    assert shortened.endswith("..." + hashlib.md5(name.encode()).hexdigest() + ".yaml")
    folder = pytester.path / "cassettes" / "test_app"
    folder.mkdir(parents=True)
    cassette = _cassette("Recorded under a shortened name.")
    (folder / shortened).write_text(yaml.safe_dump(cassette), encoding="utf-8")
    # The module's cassettes/ folder exists: the test with a cassette finds it, and those
    # without one still run (a file name the file system refuses names no cassette).
    _run(pytester, LONG_IDS).assert_outcomes(passed=3)


# --- 3. cassettes pytest-recording wrote with its JSON serializer ------------------------------

RECORDED_REPLY = "Recorded by pytest-recording, serialized as JSON."


def _cassette(content: str) -> dict[str, Any]:
    """A vcrpy cassette holding one chat completion, as pytest-recording writes them."""
    answer = {
        "id": "chatcmpl-recorded",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 8, "total_tokens": 13},
    }
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "json"}]}
    interaction = {
        "request": {
            "method": "POST",
            "uri": "https://api.openai.com/v1/chat/completions",
            "body": json.dumps(request),
            "headers": {"content-type": ["application/json"]},
        },
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-type": ["application/json"]},
            "body": {"string": json.dumps(answer)},
        },
    }
    return {"version": 1, "interactions": [interaction]}


JSON_REPLAY = f"""
    def test_json(mockai):
        with mockai.openai_client(max_retries=0) as client:
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{{"role": "user", "content": "json"}}]
            )
        assert mockai.requests[0].source == "cassette"
        assert reply.choices[0].message.content == "{RECORDED_REPLY}"
"""


def test_a_json_cassette_of_pytest_recording_is_replayed(pytester: pytest.Pytester) -> None:
    folder = pytester.path / "cassettes" / "test_app"
    folder.mkdir(parents=True)
    cassette = json.dumps(_cassette(RECORDED_REPLY), indent=4)  # (its `serializer="json"`)
    (folder / "test_json.json").write_text(cassette, encoding="utf-8")
    _run(pytester, JSON_REPLAY).assert_outcomes(passed=1)
    # Both a .yaml and a .json for one test: which to replay is not guessed.
    (folder / "test_json.yaml").write_text("interactions: []\nversion: 1\n", encoding="utf-8")
    result = _run(pytester, JSON_REPLAY)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            (
                "mockai: two cassettes for this test, *test_json.yaml and *test_json.json: keep "
                "the one to replay and delete the other."
            )
        ]
    )


# --- 4. /models forwarded, recorded and replayed -----------------------------------------------

FINE_TUNED = "ft:gpt-4o-mini:acme::models1"
UPSTREAM_MODELS = ["gpt-4o-mini", FINE_TUNED]  # (mockai's own catalog lists a dozen more)


def _models_seen(url: str) -> tuple[list[str], str, bool]:
    """What a client learns of the models at `url`: the list, one model's owner, a deletion."""
    with openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0) as client:
        listed = [model.id for model in client.models.list()]
        owner = client.models.retrieve(FINE_TUNED).owned_by
        deleted = client.models.delete(FINE_TUNED).deleted
    return listed, owner, deleted


def test_models_are_recorded_from_the_upstream_and_replayed(tmp_path: Path) -> None:
    cassette = tmp_path / "models.yaml"
    with conformance.checked_server(models=UPSTREAM_MODELS) as upstream:
        live = _models_seen(upstream.url)
        upstream.reset()  # (the fine-tuned model is back)
        recording = {"record_mode": "once", "upstream": upstream.url}
        with conformance.checked_server(cassette=str(cassette), **recording) as proxy:
            assert _models_seen(proxy.url) == live
            assert {entry.source for entry in proxy.requests} == {"upstream"}
    assert sorted(live[0]) == sorted(UPSTREAM_MODELS)
    # Replayed with no upstream: the recordings answer, and what they lack is the catalog's.
    with conformance.checked_server(cassette=str(cassette)) as replay:
        assert _models_seen(replay.url) == live
        assert {entry.source for entry in replay.requests} == {"cassette"}
        with openai.OpenAI(base_url=replay.url, api_key="sk-test", max_retries=0) as client:
            assert client.models.retrieve("gpt-4.1").id == "gpt-4.1"
    # Models named for the server (`--models`, a scenario's `models:`) are what it lists, as the
    # scenario contract says, whatever the cassette recorded.
    with (
        conformance.checked_server(cassette=str(cassette), models=["gpt-4.1"]) as named,
        openai.OpenAI(base_url=named.url, api_key="sk-test", max_retries=0) as client,
    ):
        assert [model.id for model in client.models.list()] == ["gpt-4.1"]


def test_a_vcrpy_cassette_of_the_model_list_is_replayed(tmp_path: Path) -> None:
    cassette = tmp_path / "vcr.yaml"
    with (
        conformance.checked_server(models=UPSTREAM_MODELS) as upstream,
        vcrpy.use_cassette(str(cassette), record_mode="once"),
        openai.OpenAI(base_url=upstream.url, api_key="sk-test") as client,
    ):
        live = [model.id for model in client.models.list()]
    with conformance.checked_server(cassette=str(cassette)) as replay:
        with openai.OpenAI(base_url=replay.url, api_key="sk-test", max_retries=0) as client:
            assert [model.id for model in client.models.list()] == live
        assert replay.requests[0].source == "cassette"
