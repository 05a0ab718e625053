"""A tokenizer-shaped estimate: token counts and token pieces without a BPE vocabulary.

Real usage numbers come from tiktoken's BPE; shipping it would cost a large dependency and its
vocabulary files. This splits text the way cl100k/o200k pre-tokenize it (contractions, a leading
space glued to a word, digits in groups of three, punctuation runs, whitespace) and then cuts long
words into ~5-character pieces, which lands within ~10-15% of tiktoken on English prose; CJK
ideographs, kana and Hangul, which BPE spends about a token each on, are a piece each (within ~30%
of cl100k on Chinese, Japanese and Korean text; o200k spends ~30% less). Emoji are a piece each,
letters of the other scripts BPE holds few words of (Arabic, Hebrew, Thai, Indic, Greek) two to a
piece, Cyrillic three (between cl100k, which spends about twice that, and o200k), and a run of
whitespace, which the vocabularies hold whole, a piece per 80 spaces or 16 other blanks. The
pieces are also what streams send, one per chunk, so `"".join(split(text)) == text` always holds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable

# Python's `re` has no \p{L}: `[^\W\d_]` is "a letter" (a word character that is neither a digit
# nor an underscore), and `(?:[^\s\w]|_)` is "neither a letter, a digit nor whitespace" — the
# underscore is a word character to `re` but punctuation to the tokenizers, and forgetting it once
# made every stream drop every `_`.
_PRETOKEN = re.compile(
    r"""'(?:s|t|re|ve|m|ll|d)(?![^\W\d_])"""  # contractions
    r"""|(?:[^\r\n\w]|_)?[^\W\d_]+"""  # a word, with the space (or symbol) before it
    r"""|\d{1,3}"""  # numbers, three digits at a time
    r"""| ?(?:[^\s\w]|_)+[\r\n]*"""  # punctuation runs
    r"""|\s*[\r\n]+"""  # newlines
    r"""|\s+(?!\S)|\s+"""  # other whitespace
    # Anything the branches above missed is a piece of its own: `findall` silently skips text no
    # branch matches, and the pieces must always join back to the text they came from.
    r"""|[\s\S]""",
    re.IGNORECASE,
)

# Plain prose (what the generator writes: ASCII words, one space between them, sentences ending
# in a period, no other punctuation). Its pretokens are its words, each after the first with the
# space before it, and each period on its own, which plain string methods cut out at C speed,
# ~3x faster than the pattern's alternatives tried at every position. (A period directly before
# a letter would glue to it in the pattern, `.b`: the prose form has a space or the end there.)
_PLAIN_PROSE = re.compile(r"[A-Za-z]+\.?(?: [A-Za-z]+\.?)*")
# Below this length a text is not tried against the prose form: the try (~0.45 us, most of it
# the regex engine's setup) would cost a short prompt a third of its whole cut, and gain little.
_PROSE_TRIED = 64

# Common words are one token; longer or rarer words split into pieces of about this length.
_WHOLE_WORD = 9
_PIECE = 5


# Scripts written without spaces between words (CJK ideographs, kana) and Hangul syllables: the
# BPE vocabularies hold few of their multi-character runs, so cl100k and o200k spend about a token
# per character on them, where the pattern above would make a whole sentence one "word".
_CJK_CHARS = (
    "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f"
)
# Emoji and pictographs: not letters, so the pattern above makes a run of them one punctuation
# run, where cl100k spends two tokens on each and o200k one.
_EMOJI_CHARS = "\u2600-\u27bf\U0001f000-\U0001faff"
# Scripts whose words the vocabularies hold few of (Arabic, Hebrew, Thai, Lao, Myanmar, Khmer,
# the Indic scripts, Greek): cl100k spends about a token per letter, o200k about one per 2.5.
_PAIRED_CHARS = (
    "\u0370-\u03ff\u0590-\u05ff\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\u0900-\u0dff"
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\ufb1d-\ufdff\ufe70-\ufeff"
)
# Cyrillic: cl100k about a token per two letters, o200k one per three and a half.
_TRIPLED_CHARS = "\u0400-\u052f"
_DENSE_CHARS = _CJK_CHARS + _EMOJI_CHARS + _PAIRED_CHARS + _TRIPLED_CHARS
_DENSE = re.compile(f"[{_DENSE_CHARS}]")
# A pretoken holding such characters: each CJK character or emoji a piece, the others two or
# three letters to a piece (with a space or symbol before it glued on, as words take theirs:
# not another emoji or a mark of those scripts, which are not word characters either), other
# characters between them a piece of their own.
_DENSE_PIECE = re.compile(
    f"(?:[^\\w{_EMOJI_CHARS}{_PAIRED_CHARS}{_TRIPLED_CHARS}]|_)?"
    f"(?:[{_CJK_CHARS}{_EMOJI_CHARS}]|[{_PAIRED_CHARS}]{{1,2}}|[{_TRIPLED_CHARS}]{{1,3}})"
    f"|[^{_DENSE_CHARS}]+"
)


def pretokens(text: str) -> list[str]:
    """`text` cut as the tokenizers pre-tokenize it (`_PRETOKEN`), before long words are cut."""
    if len(text) >= _PROSE_TRIED and _PLAIN_PROSE.fullmatch(text):
        # ("\0" is not in the text: the prose form holds letters, spaces and periods only)
        return text.replace(".", "\0.").replace(" ", "\0 ").split("\0")
    found: list[str] = _PRETOKEN.findall(text)
    return found


def _dense_cut(text: str, found: list[str]) -> list[str]:
    """`text`'s pretokens `found`, those holding `_DENSE_CHARS` cut into `_DENSE_PIECE`s: the
    units long words are then cut from (the tokenizers pre-tokenize a CJK run as one word, and
    their BPE then spends about a token on each character). Only called for non-ASCII text:
    (`isascii` reads a flag the string carries) ASCII text pays nothing for it."""
    if not _DENSE.search(text):
        return found
    cut: list[str] = []
    for piece in found:
        if _DENSE.search(piece):
            cut.extend(_DENSE_PIECE.findall(piece))
        else:
            cut.append(piece)
    return cut


@functools.lru_cache(maxsize=2048)
def split(text: str) -> tuple[str, ...]:
    """Token-like pieces of `text`, in order; joined they give `text` back exactly.

    Cached: a load test renders the same answers over and over.
    """
    found = pretokens(text)
    if not text.isascii():
        found = _dense_cut(text, found)
    if not found or max(map(len, found)) <= _WHOLE_WORD:
        return tuple(found)  # no long words to cut
    pieces: list[str] = []
    append, extend = pieces.append, pieces.extend
    for piece in found:
        if len(piece) <= _WHOLE_WORD:
            append(piece)
        else:
            extend(_cut(piece))
    return tuple(pieces)


def _cut(word: str) -> tuple[str, ...]:
    """A long word's pieces; those of words up to `_KEPT_WORD` characters are kept (the same
    long words come back: generated prose draws from a word list, and most of its answers hold
    one), longer runs (a base64 blob, a URL) are cut each time, so the kept pieces stay small."""
    return _kept_cut(word) if len(word) <= _KEPT_WORD else _cut_now(word)


def _cut_now(word: str) -> tuple[str, ...]:
    width = _width(word)
    return tuple(word[i : i + width] for i in range(0, len(word), width))


_KEPT_WORD = 32
_kept_cut = functools.lru_cache(maxsize=4096)(_cut_now)  # (at most 4,096 words of 32 characters)


def count(text: str) -> int:
    """Estimated number of tokens in `text`."""
    if len(text) > _LISTED_CHARS:
        return _count_each(text)
    found = pretokens(text)
    if not text.isascii():
        found = _dense_cut(text, found)
    total = len(found)  # a piece is a token, but for long words (rare: checked at C speed)
    if total and max(map(len, found)) > _WHOLE_WORD:
        total += sum(_pieces(piece) - 1 for piece in found if len(piece) > _WHOLE_WORD)
    return total


def _pieces(word: str) -> int:
    """How many pieces `_cut` makes of a long pretoken."""
    return -(-len(word) // _width(word))


def _width(word: str) -> int:
    """The length of the pieces a long pretoken is cut into: the vocabularies hold runs of
    blanks (code's indentation) whole, up to ~80 spaces, or ~16 newlines or tabs."""
    if not word.isspace():
        return _PIECE
    return _SPACES if not word.strip(" ") else _BLANKS


_SPACES = 80
_BLANKS = 16


# Past this length a text's pretokens are counted one at a time instead of listed first: a list
# of a 21 MB prompt's ~4 million pieces took ~270 MiB (a request's peak memory 36 times its
# size). Listing is ~1.5x faster per piece, and short texts are most of what is counted.
_LISTED_CHARS = 64 * 1024


def _count_each(text: str) -> int:
    """`count`, holding one pretoken at a time (the same pretokens: `_PLAIN_PROSE` only finds
    those of `_PRETOKEN` faster)."""
    total = 0
    cjk = not text.isascii() and _DENSE.search(text) is not None
    for found in _PRETOKEN.finditer(text):
        if cjk and _DENSE.search(found.group()):
            pieces = _DENSE_PIECE.findall(found.group())
            total += sum(1 if len(p) <= _WHOLE_WORD else _pieces(p) for p in pieces)
            continue
        length = found.end() - found.start()
        total += 1 if length <= _WHOLE_WORD else _pieces(found.group())
    return total


def kept_counts(entries: int, max_chars: int) -> Callable[[str], int]:
    """`count` for texts that come back request after request: the counts of the last
    `entries` texts of up to `max_chars` are kept (at most entries x max_chars of text held);
    longer texts are counted each time."""
    kept = functools.lru_cache(maxsize=entries)(count)

    def counted(text: str) -> int:
        return kept(text) if len(text) <= max_chars else count(text)

    return counted


# A conversation is resent with every turn, a tool call's generated arguments are in every answer
# to the same request: their counts are kept (the last 1,024 texts of up to 4 KiB, ~4 MiB).
count_again = kept_counts(1024, 4 * 1024)


def count_all(texts: Iterable[str]) -> int:
    """Estimated tokens of several texts."""
    return sum(count(text) for text in texts)


def truncate(text: str, limit: int) -> str:
    """The first `limit` tokens of `text`."""
    return "".join(split(text)[:limit])
