"""A key inside a binary body (an upload that is not UTF-8, and its download) is redacted, not
a reason to leave the interaction out of the cassette.

The key-shaped byte runs are replaced by the same stable placeholders as in text, cut or padded
with `*` to the key's length: the file keeps its size and every other byte, and the upload,
scrubbed the same way on replay, still matches its recording.
"""

from __future__ import annotations

import string
from pathlib import Path

import openai
from conformance import checked_server
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_redact_properties import SECRET_SHAPES

from mockai import MockServer
from mockai.cassette.format import load_all
from mockai.cassette.redact import MIN_LITERAL_SECRET, Scrubber

KEY = "sk-proj-" + "Zy9xW8vU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8bA7zY6xW5vU4"
BLOB = b"\x00\xff\xfe binary " + KEY.encode() + b" \x00\x81 the end"
SCRUBBER = Scrubber()


def upload_and_download(client: openai.OpenAI) -> tuple[str, bytes]:
    uploaded = client.files.create(file=("blob.bin", BLOB), purpose="user_data")
    return uploaded.id, client.files.content(uploaded.id).content


def test_a_binary_upload_holding_a_key_is_recorded_redacted_and_replays(tmp_path: Path) -> None:
    cassette = tmp_path / "binary.yaml"
    with (
        MockServer() as upstream,
        checked_server(cassette=str(cassette), record_mode="once", upstream=upstream.url) as rec,
        openai.OpenAI(base_url=rec.url, api_key="sk-test", max_retries=0) as client,
    ):
        file_id, content = upload_and_download(client)
        assert content == BLOB  # (the client got the upstream's answer as it was)
    interactions = load_all(cassette)[0].interactions
    routes = [(i.method, i.uri.split("/v1")[1]) for i in interactions]
    assert routes == [("POST", "/files"), ("GET", f"/files/{file_id}/content")]
    upload, download = interactions[0].request_body or b"", interactions[1].response_body
    assert KEY.encode() not in cassette.read_bytes() + upload + download
    # The download keeps its size: the key's bytes, and only they, became the placeholder.
    start = BLOB.index(KEY.encode())
    assert len(download) == len(BLOB)
    assert (
        download[:start] == BLOB[:start]
        and download[start + len(KEY) :] == BLOB[start + len(KEY) :]
    )
    assert download[start : start + len(KEY)].startswith(b"sk-REDACTED-")
    # Replayed: the same upload (scrubbed alike) matches, and answers as recorded.
    with (
        checked_server(cassette=str(cassette)) as replay,
        openai.OpenAI(base_url=replay.url, api_key="sk-other", max_retries=0) as client,
    ):
        assert upload_and_download(client) == (file_id, download)
        assert {e.source for e in replay.requests} == {"cassette"}


# Bytes between secrets: anything, then a byte no key continues over (a key glued to a longer
# word is, by design, none: `task-...` is no `sk-` key); never valid UTF-8 as a whole.
GAP = st.tuples(st.binary(max_size=20), st.sampled_from([b" ", b"\x00", b"\xff", b"\n", b"\xe9"]))
LITERAL = st.text(string.ascii_letters + string.digits, min_size=MIN_LITERAL_SECRET, max_size=30)


@settings(max_examples=400, deadline=None)
@given(
    pieces=st.lists(st.tuples(GAP, SECRET_SHAPES), max_size=5),
    credential=LITERAL,
    end=GAP,
)
def test_no_key_survives_in_a_binary_body_and_nothing_else_moves(
    pieces: list[tuple[tuple[bytes, bytes], str]], credential: str, end: tuple[bytes, bytes]
) -> None:
    assume(not any(credential in secret for _, secret in pieces))  # (each key, one secret)
    body, spans = b"\xff", []  # (0xff is never UTF-8: the body is binary)
    for (data, boundary), secret in [*pieces, ((b"", b" "), credential)]:
        body += data + boundary
        spans.append((len(body), len(body) + len(secret), secret))
        body += secret.encode() + b" "
    body += end[0] + end[1]
    scrubbed = SCRUBBER.scrub_body(body, [credential])
    assert len(scrubbed) == len(body)
    assert SCRUBBER.scan(scrubbed.decode("latin-1"), [credential]) == []
    last = 0
    for start, stop, secret in spans:
        assert scrubbed[last:start] == body[last:start]  # the bytes around the keys stay
        # ... and each key became its text placeholder, cut or padded to its own length.
        text = SCRUBBER.scrub_text(secret, [credential]).encode()
        assert scrubbed[start:stop] == text[: stop - start].ljust(stop - start, b"*")
        last = stop
    assert scrubbed[last:] == body[last:]
    assert SCRUBBER.scrub_body(scrubbed, [credential]) == scrubbed  # (stable: done once)
