"""Redaction over arbitrary text: what a cassette keeps never holds a secret it could recognise.

Secret-shaped strings (every default pattern's shape, and a request's own credentials) are
planted in arbitrary Unicode with hypothesis; the properties are the promises recording makes:
scrubbed text holds none of them, scrubbing twice changes nothing, and the hot path's cheap
check (`needs_scrubbing`, run on every replayed request) never says "clean" for text that
scrubbing would change.
"""

from __future__ import annotations

import json
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from mockai.cassette.redact import MIN_LITERAL_SECRET, PLACEHOLDER, Scrubber

KEY_CHARS = string.ascii_letters + string.digits
TOKEN_CHARS = KEY_CHARS + "_-"


def _run(alphabet: str, low: int, high: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=low, max_size=high)


# One strategy per default pattern: strings the pattern is meant to catch.
SECRET_SHAPES = st.one_of(
    st.builds("sk-{}".format, _run(TOKEN_CHARS, 20, 60)),
    st.builds("sk-proj-{}".format, _run(TOKEN_CHARS, 20, 60)),
    st.builds("Bearer {}".format, _run(KEY_CHARS + "._~+/-", 16, 40)),
    st.builds("gsk_{}".format, _run(KEY_CHARS, 20, 40)),
    st.builds("xai-{}".format, _run(KEY_CHARS, 20, 40)),
    st.builds("AIza{}".format, _run(TOKEN_CHARS, 35, 35)),
    st.builds("hf_{}".format, _run(KEY_CHARS, 30, 40)),
    st.builds("ghp_{}".format, _run(KEY_CHARS + "_", 30, 40)),
    st.builds("AKIA{}".format, _run(string.ascii_uppercase + string.digits, 16, 16)),
    st.builds("xoxb-{}".format, _run(KEY_CHARS + "-", 10, 30)),
    st.builds(
        "eyJ{}.eyJ{}.{}".format,
        _run(TOKEN_CHARS, 8, 20),
        _run(TOKEN_CHARS, 8, 20),
        _run(TOKEN_CHARS, 8, 20),
    ),
    st.just("-----BEGIN RSA PRIVATE KEY-----"),
)
# What a secret may be glued to: anything but an ASCII letter (a key right after a letter ends a
# longer word and is, by design, none: `task-...` is no `sk-` key), so digits, `_`, `-`,
# punctuation, control characters and any Unicode, letters included (`OPENAI_API_KEY_sk-...`,
# `0sk-...`, `clé` + key, `密钥` + key).
GLUE = st.one_of(
    st.sampled_from(" \t\n" + string.digits + string.punctuation),
    st.characters().filter(lambda char: not (char.isascii() and char.isalpha())),
)
# What surrounds a secret: arbitrary text, ending in such a character.
SURROUNDINGS = st.tuples(st.text(max_size=30), GLUE).map("".join)
TEXTS = st.lists(st.one_of(st.text(max_size=40), SECRET_SHAPES, SURROUNDINGS), max_size=8).map(
    "".join
)
# ... and nothing that would continue it right after (an AWS key id is exactly 20 characters).
PLANTED = st.tuples(SURROUNDINGS, SECRET_SHAPES, st.text(max_size=30).map(" {}".format)).map(
    "".join
)

SCRUBBER = Scrubber()


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_the_cheap_check_never_calls_dirty_text_clean(text: str) -> None:
    if not SCRUBBER.needs_scrubbing(text):
        assert SCRUBBER.scrub_text(text) == text
    # ... and it is the plain pattern-by-pattern test (placeholders blanked out), only faster.
    lowered = text.lower()
    neutral = PLACEHOLDER.sub(lambda match: "\0" * len(match.group()), text)
    expected = any(p.may_match(lowered) and p.regex.search(neutral) for p in SCRUBBER.patterns)
    assert SCRUBBER.needs_scrubbing(text) == expected


@settings(max_examples=400, deadline=None)
@given(PLANTED)
def test_a_planted_secret_is_caught_and_scrubbed_away(text: str) -> None:
    assert SCRUBBER.needs_scrubbing(text)
    scrubbed = SCRUBBER.scrub_text(text)
    assert SCRUBBER.scan(scrubbed) == []
    assert "REDACTED-" in scrubbed


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_scrubbed_text_holds_nothing_secret_looking_and_scrubbing_twice_changes_nothing(
    text: str,
) -> None:
    scrubbed = SCRUBBER.scrub_text(text)
    assert SCRUBBER.scan(scrubbed) == []
    assert SCRUBBER.scrub_text(scrubbed) == scrubbed
    assert not SCRUBBER.needs_scrubbing(scrubbed) or SCRUBBER.scrub_text(scrubbed) == scrubbed


@settings(max_examples=200, deadline=None)
@given(TEXTS, _run(string.ascii_letters + string.digits + "-_.", MIN_LITERAL_SECRET, 40))
def test_a_credential_the_request_carried_never_survives(text: str, credential: str) -> None:
    """However it appears (inside words, next to Unicode), the request's own key is replaced."""
    sent = text + credential + text
    scrubbed = SCRUBBER.scrub_text(sent, [credential])
    assert credential not in scrubbed
    assert SCRUBBER.needs_scrubbing(sent, [credential])


@settings(max_examples=300, deadline=None)
@given(SURROUNDINGS, SECRET_SHAPES.filter(lambda key: len(key) >= 24), st.data())
def test_a_key_holding_a_request_credential_leaves_nothing_of_itself(
    before: str, key: str, data: st.DataObject
) -> None:
    """A request's credential found inside a key-shaped string (a cookie value that happens to be
    part of a key an answer quotes): the key is replaced whole, not only the credential, whose
    replacement left the key's ends too short to look like a key (39 of its 55 characters
    reached disk, and the scan passed them)."""
    start = data.draw(st.integers(0, len(key) - MIN_LITERAL_SECRET - 1))
    length = data.draw(st.integers(MIN_LITERAL_SECRET, len(key) - start - 1))
    credential = key[start : start + length]
    text = before + key + " and more"
    scrubbed = SCRUBBER.scrub_text(text, [credential])
    assert credential not in scrubbed
    assert SCRUBBER.scan(scrubbed) == []
    body = key[-12:]
    if SCRUBBER.scan(key) and body not in before:  # (a key the patterns know: its end is gone)
        assert body not in scrubbed, scrubbed
    # ... and the spans stream scrubbing applies give the very same text
    spans = SCRUBBER.replacements(text, [credential])
    pieces, last = [], 0
    for begin, end, stand_in in spans:
        pieces += (text[last:begin], stand_in)
        last = end
    assert "".join([*pieces, text[last:]]) == scrubbed
    # ... and so does a binary body holding them (same length, nothing of either left)
    binary = b"\xff\x00" + text.encode() + b"\x00"
    kept = SCRUBBER.scrub_binary(binary, [credential])
    assert len(kept) == len(binary)
    assert credential.encode() not in kept
    if SCRUBBER.scan(key) and body not in before:
        assert body.encode() not in kept


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXTS),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.lists(JSON_VALUES, max_size=4), st.dictionaries(st.text(), JSON_VALUES)))
def test_scrubbing_json_keeps_its_shape_and_leaves_no_secret(value: object) -> None:
    """A body (an object or an array, as API bodies are), scrubbed value by value."""
    scrubbed = SCRUBBER.scrub_json(value)
    assert _shape(scrubbed) == _shape(value)  # the same keys, lists and non-string values
    assert SCRUBBER.scan(json.dumps(scrubbed, ensure_ascii=False)) == []
    body = json.dumps(value).encode()
    # A recorded body is scrubbed value by value; what comes out is the same JSON as scrubbing
    # the parsed value.
    assert json.loads(SCRUBBER.scrub_body(body)) == scrubbed


def _shape(value: object) -> object:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return "<text>" if isinstance(value, str) else value


# A JSON string's text as it appears inside a body that is not one JSON document (a JSONL
# batch file in a multipart upload, a bare-string body, a non-JSON SSE payload): scrubbed as
# text, where a secret may follow an escape (`\n`, `\t`, `\u00e9`) instead of the character.
ESCAPED_TEXTS = st.tuples(
    st.text(max_size=20),
    st.sampled_from('\n\r\t\b\f"\\/é\u2028\x01 '),
    SECRET_SHAPES,
    st.text(max_size=20).map(" {}".format),
).map("".join)


@settings(max_examples=400, deadline=None)
@given(ESCAPED_TEXTS, st.booleans())
def test_a_secret_after_a_json_escape_is_scrubbed_in_the_text_that_holds_it(
    value: str, ascii_only: bool
) -> None:
    """Whatever the decoded string shows as a secret, the encoded text loses: after scrubbing the
    JSON text as plain text, neither it nor the string it encodes holds anything secret-looking."""
    line = json.dumps({"body": value}, ensure_ascii=ascii_only)
    assert SCRUBBER.needs_scrubbing(line)
    scrubbed = SCRUBBER.scrub_text(line)
    assert SCRUBBER.scan(scrubbed) == []
    assert SCRUBBER.scan(json.loads(scrubbed)["body"]) == []
    # ... and as a multipart upload of a JSONL file is scrubbed: line by line.
    upload = b"--b\r\nContent-Type: application/jsonl\r\n\r\n" + line.encode() + b"\n\r\n--b--\r\n"
    assert SCRUBBER.scan(SCRUBBER.scrub_body(upload).decode()) == []
