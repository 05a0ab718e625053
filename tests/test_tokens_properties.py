"""Properties of the token splitter that streams are built from, over arbitrary text.

Every streamed answer is `split(text)` sent one piece per event, so a piece lost here is a
character lost in every stream: the splitter once dropped every `_`, and 1035 example-based tests
never noticed.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import texts

from mockai import tokens

# Every code point, lone surrogates included: the splitter sees whatever a body decoded to.
_EVERY_CHAR = st.text(st.characters(blacklist_categories=()), max_size=200)


@given(st.one_of(texts(max_size=60), _EVERY_CHAR))
@example("first_name")
@example("https://x.io/a_b")
@example('{"first_name": "Ann", "city_name": "Paris"}')
@example("__init__ _ __")
def test_pieces_join_back_to_the_text(text: str) -> None:
    pieces = tokens.split(text)
    assert "".join(pieces) == text
    assert all(pieces), "no empty pieces (an empty delta is an event with nothing in it)"


@given(st.one_of(texts(min_size=1), _EVERY_CHAR.filter(bool)))
def test_any_non_empty_text_counts_at_least_one_token(text: str) -> None:
    assert tokens.count(text) >= 1
    # The count billed in `usage` is the number of pieces a stream sends.
    assert tokens.count(text) == len(tokens.split(text))


@settings(max_examples=40)
@given(st.one_of(texts(min_size=1, max_size=60), _EVERY_CHAR.filter(bool)))
def test_a_long_text_counts_as_its_pieces_without_listing_them(text: str) -> None:
    # Past `_LISTED_CHARS`, pretokens are counted one at a time (a listed 21 MB prompt took
    # ~270 MiB): the count is still the number of pieces a stream of the text sends. The text
    # repeated past that length, so that pieces also form across the joins.
    assert tokens._count_each(text) == len(tokens.split(text))
    long = text * (tokens._LISTED_CHARS // len(text) + 1)
    assert len(long) > tokens._LISTED_CHARS
    assert tokens.count(long) == len(tokens.split(long))


@given(_EVERY_CHAR, st.integers(min_value=0, max_value=50))
def test_truncation_is_a_prefix_of_at_most_limit_pieces(text: str, limit: int) -> None:
    cut = tokens.truncate(text, limit)
    assert text.startswith(cut)
    assert len(tokens.split(cut)) <= limit
    assert (cut == text) == (tokens.count(text) <= limit)


@given(st.lists(texts(max_size=10), max_size=5))
def test_counts_add_up_over_several_texts(parts: list[str]) -> None:
    assert tokens.count_all(parts) == sum(tokens.count(part) for part in parts)


def _with(text: str, char: str, at: int) -> str:
    at %= len(text) + 1
    return text[:at] + char + text[at:]


# Texts near the plain-prose form the splitter cuts with string methods (long enough to be
# tried): words of letters, one space apart, some ending in a period, and half the time one more
# character somewhere, which may keep the form (a letter, a period at a word's end) or break it
# (a second space or period, a period before a letter, a digit, an accent, a newline...).
_NEAR_PROSE = st.builds(
    _with,
    st.builds(
        " ".join,
        st.lists(st.from_regex(r"[A-Za-z]{1,14}\.?", fullmatch=True), min_size=8, max_size=30),
    ),
    st.sampled_from(["", "", "", "", "", "a", ".", " ", ",", "0", "é", "\n", "_", "'", "\t"]),
    st.integers(min_value=0, max_value=500),
) | st.text(st.sampled_from("aZxQ .. \t,'_0é\n"), max_size=120)


@given(st.one_of(_NEAR_PROSE, _EVERY_CHAR))
@example("Serious inside else memory. Peace economy travel.")
@example("A.b")
@example("a. .b")
@example("Traditionally indistinguishable.")
@example("Serious inside else memory. Peace economy travel. Traditional deal.b")
@example("Serious inside else memory. Peace economy travel. Traditional  deal.")
@example(" Serious inside else memory. Peace economy travel. Traditional deal.")
@example("Serious inside else memory. Peace economy travel . Traditional deal.")
@example("Serious inside else memory.. Peace economy travel. Traditional deal.")
def test_plain_prose_is_cut_as_the_pattern_cuts_it(text: str) -> None:
    """The generator's prose is cut with string methods (`_PLAIN_PROSE`); any text gets the
    pattern's pretokens, whichever way it was cut."""
    assert tokens.pretokens(text) == tokens._PRETOKEN.findall(text)


def test_only_short_long_words_have_their_pieces_kept() -> None:
    """A long word's pieces are kept for the next answer holding it, but a run of 100,000
    letters (a blob, a URL) is cut without being kept: what the splitter keeps stays small."""
    tokens._kept_cut.cache_clear()  # (a cache: clearing it changes no answer)
    blob = "xy" * 50_000
    text = f"Traditionally {blob} traditionally."
    assert "".join(tokens.split.__wrapped__(text)) == text
    assert tokens.split.__wrapped__(text)[:3] == ("Tradi", "tiona", "lly")
    # " traditionally" and "Traditionally" kept, the blob not.
    assert tokens._kept_cut.cache_info().currsize == 2


def test_underscores_are_pieces_of_their_own_words() -> None:
    # As cl100k / o200k pre-tokenize: the underscore starts the next word's piece.
    assert tokens.split("first_name") == ("first", "_name")
    assert tokens.split("a__b") == ("a", "__", "b")
