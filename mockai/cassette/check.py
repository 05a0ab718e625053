"""`mockai check` for cassettes: format version and shape, decodable bodies, well-framed streams,
consistent timing, and no secrets — each problem as `file:line: what is wrong`."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from mockai.cassette.lines import NodeLines
from mockai.cassette.redact import Scrubber
from mockai.cassette.scan import scan_document, scan_interaction
from mockai.errors import Problem
from mockai.wire.errors import header_problem
from mockai.wire.events import event_data, split_events

if TYPE_CHECKING:  # (vcrpy, which imports aiohttp, loads with the first cassette checked)
    from mockai.cassette.format import DecodeError, Interaction

# A key at a line's start, JSON's after its indent or its `{` (on the key's line or one before).
# Only `[ \t]` may come before the `{`: a `\s*` there crossed the lines after every line start,
# and blank lines made a file that is no cassette take cubic time to tell.
_CASSETTE_KEY = re.compile(
    r'^(?:interactions\s*:|[ \t]*(?:\{\s*)?"interactions"\s*:)', re.MULTILINE
)
# What vcrpy before 1.0 wrote: a bare list of request/response pairs, its first item first in the
# file (after comments, blank lines and a `---`). A scenario file never starts so. (The blank
# lines are the repeated group's alone: a `\s*` after it would retry them, in quadratic time.)
_BARE_LIST = re.compile(
    r'\A(?:[ \t]*(?:#[^\n]*)?\n|---[ \t]*\n)*(?:-[ \t]+|[ \t]*\[\s*\{\s*)"?(request|response)"?\s*:'
)


def looks_like_cassette(text: str) -> bool:
    """True for a file with a top-level `interactions:` key (a vcrpy cassette), or a bare list
    of request/response pairs (one vcrpy wrote before 1.0: checked, and refused, as a cassette)."""
    text = without_bom(text)
    return bool(_CASSETTE_KEY.search(text) or _BARE_LIST.match(text))


def without_bom(text: str) -> str:
    """`text` without a leading byte order mark: an editor's (Notepad's) UTF-8 BOM is no part of
    the file's first key, and PyYAML, which loads the file, skips it too."""
    return text.removeprefix("\ufeff")


def is_cassette(name: str, text: str) -> bool:
    """A vcrpy cassette: a top-level `interactions:` key (and, in YAML, no `mockai:` scenario
    version). How `mockai check` tells a file's kind, and how a folder given to `--scenario` or
    `--cassette` leaves the other kind's files alone, so that the two agree."""
    if name.lower().endswith(".json"):
        return looks_like_cassette(text) or _compact_json_cassette(text)
    return looks_like_cassette(text) and "\nmockai:" not in "\n" + without_bom(text)


_JSON_KEY = re.compile(r'"interactions"\s*:')


def _compact_json_cassette(text: str) -> bool:
    """A JSON cassette whose `"interactions"` key does not start a line, as `json.dump` writes
    one by default (one line, `"version"` first; vcrpy itself indents): its top-level object
    holds the key. A JSON file naming the key that does not parse is taken for a broken one,
    to be checked (and refused) as a cassette rather than left alone in a folder."""
    if not _JSON_KEY.search(text):
        return False
    try:
        loaded = json.loads(without_bom(text))
    except ValueError:
        return True
    return isinstance(loaded, dict) and "interactions" in loaded


def other_kind(name: str, text: str) -> bool:
    """A file of a cassette folder that is no cassette and that `mockai check` checks as
    something else (a scenario file: a top-level `mockai:`) or leaves alone (a JSON file)."""
    if is_cassette(name, text):
        return False
    return name.lower().endswith(".json") or "\nmockai:" in "\n" + without_bom(text)


def is_cassette_file(path: Path) -> bool:
    """`is_cassette` of a file's text (False when unreadable: the scenario loader says why)."""
    try:
        return is_cassette(path.name, path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return False


def check_cassette(path: Path, text: str, scrubber: Scrubber | None = None) -> list[Problem]:
    """Every problem in one cassette file."""
    from mockai.cassette.format import DecodeError, parse_cassette

    scrubber = scrubber or Scrubber()
    try:
        cassette = parse_cassette(path, text, servable=False)  # (all its problems, below)
    except DecodeError as error:
        return [_from_decode_error(path, error)]
    lines = NodeLines(text)
    problems = scan_document(path, text, scrubber)
    seen = {problem.line for problem in problems}
    for index, interaction in enumerate(cassette.interactions):
        line = lines.of("interactions", index)
        for message in _interaction_problems(interaction):
            problems.append(Problem(str(path), line, f"interaction {index}: {message}"))
        for within, message in interaction.timing.problems:  # (what `mockai serve` refuses)
            at = lines.of("interactions", index, "response", "mockai", *within)
            problems.append(Problem(str(path), at, f"interaction {index}: {message}"))
        for message in scan_interaction(interaction, scrubber):
            field = message.split(":", 1)[0]
            where = lines.of("interactions", index, *field.split("."))
            # The text scan already reported the secrets it could see; add what only decoding
            # shows (gzip or !!binary bodies) and credential headers.
            if where not in seen:
                problems.append(Problem(str(path), where, f"interaction {index}: {message}"))
    return sorted(problems)


def _from_decode_error(path: Path, error: DecodeError) -> Problem:
    message = str(error).removeprefix(f"{path}:")
    line, _, rest = message.partition(":")
    if line.isdigit():
        return Problem(str(path), int(line), rest.strip())
    return Problem(str(path), 1, message.strip())


def _interaction_problems(interaction: Interaction) -> list[str]:
    from mockai.cassette.format import status_problem  # (loaded with the cassette: see above)

    problems = []
    status = status_problem(interaction.status)
    if status is not None:  # (what `mockai serve` refuses the cassette for)
        problems.append(status)
    if _is_json_type(_request_type(interaction)) and interaction.request_body:
        problems += _json_problem("request body", interaction.request_body)
    for name, values in interaction.response_headers.items():
        problem = header_problem(name, values[0]) if values else None
        if problem is not None:  # (hand-edited: a recorded upstream never sends one)
            problems.append(f"response header {problem}: HTTP cannot send it ({_instead(name)})")
    if interaction.is_stream:
        problems += _stream_problems(interaction)
    elif _is_json_type(interaction.content_type) and interaction.response_body:
        problems += _json_problem("response body", interaction.response_body)
    return problems


def _instead(name: str) -> str:
    """What the replay does with a recorded header HTTP cannot send."""
    return "replayed as application/json" if name.lower() == "content-type" else "not replayed"


def _request_type(interaction: Interaction) -> str:
    for name, values in interaction.request_headers.items():
        if name.lower() == "content-type" and values:
            return values[0]
    return "application/json" if interaction.uri.rstrip("/").endswith(_JSON_ROUTES) else ""


_JSON_ROUTES = ("/completions", "/embeddings", "/moderations", "/responses")


def _is_json_type(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower().endswith("json")


def _json_problem(what: str, data: bytes) -> list[str]:
    try:
        json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        return [f"{what} is not valid JSON ({error})"]
    return []


def _stream_problems(interaction: Interaction) -> list[str]:
    frames = split_events(interaction.response_body)
    problems = []
    if frames and not re.search(rb"(\r\n|\r|\n)(\r\n|\r|\n)\s*$", frames[-1]):
        problems.append(
            "the stream's last event does not end with a blank line (the Python SDK drops it)"
        )
    for number, frame in enumerate(frames):
        data = event_data(frame)
        if data is None or data.startswith("[DONE]"):
            continue
        try:
            json.loads(data)
        except ValueError:
            problems.append(f"stream event {number} is not JSON: {data[:60]!r}")
    events = interaction.timing.events
    if events is not None:
        if len(events) != len(frames):
            problems.append(
                f"mockai.events has {len(events)} offsets for {len(frames)} events "
                "(replay will not be paced)"
            )
        elif any(later < earlier for earlier, later in itertools.pairwise(events)):
            problems.append("mockai.events offsets go backwards")
    return problems
