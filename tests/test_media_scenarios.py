"""Scenario rules for pictures and sounds: the example file, and every mistake at its line."""

from __future__ import annotations

import base64
import io
import textwrap
from pathlib import Path

import conformance
import openai
import pytest
from PIL import Image
from sdk import sdk

from mockai import ScenarioError
from mockai.scenario import loader

EXAMPLE = Path(__file__).parent.parent / "scenarios" / "media.yaml"


def test_the_media_example(tmp_path: Path) -> None:
    with conformance.checked_server(scenarios=(str(EXAMPLE),)) as server, sdk(server) as client:
        thumb = client.images.generate(
            model="dall-e-3", prompt="a thumbnail of a cafe", response_format="b64_json"
        ).data[0]
        image = Image.open(io.BytesIO(base64.b64decode(thumb.b64_json or ""))).convert("RGB")
        assert sorted(c for _, c in image.getcolors() or []) == [(29, 53, 87), (241, 250, 238)]
        assert thumb.revised_prompt == "A checkerboard thumbnail for a thumbnail of a cafe"
        with pytest.raises(openai.BadRequestError) as refused:
            client.images.generate(model="gpt-image-1", prompt="gore")
        assert refused.value.code == "moderation_blocked"
        speech = client.audio.speech.create(
            model="tts-1", voice="alloy", input="Chapter one. " * 50, response_format="wav"
        ).read()
        assert len(speech) == 44 + 4 * 24000 * 2  # 4 s of 24 kHz 16-bit mono, and a header
        standup = client.audio.transcriptions.create(
            model="whisper-1", file=("2024-05-02-standup.mp3", speech)
        )
        assert standup.text.startswith("Yesterday I fixed the login bug.")
        german = client.audio.transcriptions.create(
            model="whisper-1", file=("note.m4a", speech), language="de"
        )
        assert german.text == "Bitte ruf mich morgen zurück."
        other = client.audio.transcriptions.create(model="whisper-1", file=("x.wav", speech))
        assert other.text
        assert [e.rule for e in server.requests] == [
            "thumbnail",
            "refused-prompt",
            "audiobook-chapter",
            "standup-notes",
            "german-voice-note",
            "everything-else",
        ]


BROKEN = [
    (
        "image-keys",
        """
        mockai: 1
        rules:
          - name: a
            reply:
              image: {colour: red}
          - name: b
            reply:
              image: {color: notacolour, pattern: stripez}
          - name: c
            reply:
              image: {path: missing.png}
          - name: d
            reply: {image: 7}
        """,
        [
            (5, "unknown key 'colour' in rule 'a' reply.image (did you mean 'color'?)"),
            (
                8,
                "rule 'b' reply.image: 'notacolour' is not a colour (a name such as red, #ff8800, or rgb(255, 136, 0))",
            ),
            (
                8,
                "rule 'b' reply.image.pattern: 'stripez' is not a pattern (did you mean 'stripes'?)",
            ),
            (11, "rule 'c' reply.image.path: {folder}/missing.png does not exist"),
            (
                13,
                "rule 'd' reply.image must be a picture file's path or a mapping such as {color: red}, {pattern: checkerboard, colors: [black, white]} or {path: cat.png}, got 7",
            ),
        ],
    ),
    (
        "audio-keys",
        """
        mockai: 1
        rules:
          - name: a
            reply:
              audio: {duration: forever}
          - name: b
            reply:
              audio: {path: notes.txt}
          - name: c
            reply:
              audio: {duration: 2s}
              image: {color: red}
        """,
        [
            (5, "{duration_error}"),
            (
                8,
                "rule 'b' reply.audio.path: {folder}/notes.txt is not a sound file PyAV can decode",
            ),
            (11, "rule 'c' reply has both 'image' and 'audio': give only one of image, audio"),
        ],
    ),
    (
        "file-match",
        """
        mockai: 1
        rules:
          - name: a
            match: {file: 3}
            reply: hi
          - name: b
            match: {endpoint: transcription}
            reply: hi
        """,
        [
            (4, "{file_error}"),
            (
                7,
                "rule 'b' match.endpoint: 'transcription' is not an endpoint (did you mean 'transcriptions'?)",
            ),
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_media_mistakes_are_reported_at_their_line(
    tmp_path: Path, text: str, expected: list[tuple[int, str]]
) -> None:
    (tmp_path / "notes.txt").write_text("not a sound")
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.raises(ScenarioError) as raised:
        loader.load([str(path)])
    found = [str(p) for p in raised.value.problems]
    assert len(found) == len(expected), found
    for problem, (line, message) in zip(found, expected, strict=True):
        where, _, said = problem.partition(f"{path}:{line}: ")
        assert where == "", problem
        if message == "{duration_error}":  # worded by the shared duration parser
            assert said.startswith("rule 'a' reply.audio.duration: "), said
        elif message == "{file_error}":  # worded by the shared text-condition parser
            assert said.startswith("rule 'a' match.file"), said
        else:
            assert said == message.replace("{folder}", str(tmp_path))
