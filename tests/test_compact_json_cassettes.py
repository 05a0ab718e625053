"""A JSON cassette written on one line (`json.dump`'s default, `"version"` first; vcrpy itself
indents) is a cassette to `mockai check` and to a folder, as it is to vcrpy and to `mockai serve`
named alone: `check` called it "not a cassette", and in a folder one holding a key or a broken
interaction was left alone, the folder passed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from vcr.serializers import jsonserializer

from mockai import MockServer
from mockai.check import check_all

ROOT = Path(__file__).parents[1]
KEY = "sk-proj-Zq8vN3kLmP0aB7cD9eF1gH2iJ4kL5mN6oP7qR8sT"


def _recorded() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "cassettes" / "chat_json.yaml").read_text(encoding="utf-8"))
    return {"version": 1, "interactions": loaded["interactions"]}


def _compact(path: Path, cassette: dict[str, Any]) -> Path:
    path.write_text(json.dumps(cassette), encoding="utf-8")
    assert "\n" not in path.read_text(encoding="utf-8")  # (one line: no key starts a line)
    return path


def test_a_compact_json_cassette_is_checked_and_replayed(tmp_path: Path) -> None:
    cassette = _recorded()
    path = _compact(tmp_path / "compact.json", cassette)
    assert jsonserializer.deserialize(path.read_text(encoding="utf-8"))["interactions"]
    assert check_all([str(path)]) == ([], [])
    recorded = cassette["interactions"][0]
    with MockServer(cassette=str(tmp_path), log_requests=False) as server:
        answer = httpx.post(
            server.url_for(recorded["request"]["uri"].split("/", 3)[3]),
            content=recorded["request"]["body"],
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == recorded["response"]["status"]["code"]


@pytest.mark.parametrize("kind", ["a key", "a broken interaction", "broken JSON"])
def test_a_compact_json_cassette_in_a_folder_is_checked_as_one(tmp_path: Path, kind: str) -> None:
    cassette = copy.deepcopy(_recorded())
    first = cassette["interactions"][0]
    if kind == "a key":
        first["request"]["headers"]["Authorization"] = [f"Bearer {KEY}"]
    elif kind == "a broken interaction":
        del first["response"]["status"]
    folder = tmp_path / "cassettes"
    folder.mkdir()
    path = _compact(folder / "bad.json", cassette)
    if kind == "broken JSON":
        path.write_text(path.read_text(encoding="utf-8")[:-1], encoding="utf-8")
    problems, _ = check_all([str(folder)])
    assert problems and all(problem.file == str(path) for problem in problems)
    assert all(str(problem).startswith(f"{path}:1: ") for problem in problems)
    if kind == "a key":
        assert KEY not in " ".join(map(str, problems))


def test_a_json_file_naming_no_interactions_is_still_left_alone_in_a_folder(
    tmp_path: Path,
) -> None:
    (tmp_path / "settings.json").write_text('{"a": {"interactions": 1}}', encoding="utf-8")
    _compact(tmp_path / "compact.json", _recorded())
    assert check_all([str(tmp_path)]) == ([], [])
