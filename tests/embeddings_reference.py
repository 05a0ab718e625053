"""The embeddings generator as it was before numpy: pure Python, kept as the reference.

`mockai.generate.embeddings` must give exactly these vectors (test_embeddings_codec.py); do not
change this file to follow the generator. The naive stemmer and stopwords are copied here too,
so a change to them shows up as a difference.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import re
import unicodedata
from array import array
from collections import Counter
from collections.abc import Sequence

# Content words: runs of letters/digits (the apostrophe in "cat's" splits off a dropped "s").
_WORD = re.compile(r"[^\W_]+")
# CJK and Hangul runs: their character pairs, and their ideographs but the commonest.
_CJK_RUN = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]+"
)
_IDEOGRAPH = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_CJK_STOPWORDS = frozenset(
    "的了是在和有我你他她它们这那个不也就都与及或之其吗呢吧啊么什怎哪谁为于对把被从到给很还又一"
)

_STOPWORD_LIST = """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves
    describe explain get give go goes going gonna got know let like need please show something tell
    thing things want
"""
_STOPWORDS = frozenset(_STOPWORD_LIST.split())

# Bucket layout. Each word gets _WORD_BUCKETS signed buckets; bucket j falls in the first
# _SPANS[j % 8] dimensions (capped to the vector size), the Matryoshka nesting described above:
# 1/8 of a word's buckets in the first 64 dimensions, 2/8 within 256, 2/8 within 1024, the rest
# anywhere. More weight up front would survive truncation better but crowd those dimensions,
# which raises the chance similarity of unrelated texts.
_WORD_BUCKETS = 16
_FULL = 1 << 30
_SPANS = (64, 256, 1024, _FULL, 256, 1024, _FULL, _FULL)
_TRIGRAM_BUCKETS = 2
# Share of a word's energy carried by its trigrams (the word itself carries 1).
_TRIGRAM_ENERGY = 0.2
# Norm of the dense component relative to the (unit) bag-of-words part: ~8% of the energy, so
# overlap dominates the cosine while no value is ever exactly zero.
_NOISE_RATIO = 0.3
# Per-word features are cached (as compact arrays, ~0.8 KB an entry with the cache's own
# overhead): a load test with random vocabulary must not grow memory without limit.
_CACHE_WORDS = 8192

Features = tuple[Sequence[int], Sequence[float]]


# --- public API ----------------------------------------------------------------------------------


def embed(text: str, dimensions: int, seed: int) -> list[float]:
    """The unit-length float32 embedding of `text` (lexical overlap -> cosine similarity)."""
    text = unicodedata.normalize("NFC", text)  # (canonically equal texts: one text)
    counts = Counter(words(text))
    features = [(_word_features(w, dimensions, seed, True), n) for w, n in counts.items()]
    return _assemble(features, dimensions, seed, text.encode("utf-8", "surrogatepass"))


def embed_tokens(token_ids: Sequence[int], dimensions: int, seed: int) -> list[float]:
    """The embedding of a token array: each token id acts as a word (equal ids, equal features)."""
    counts = Counter(token_ids)
    features = [(_word_features(f"#{t}", dimensions, seed, False), n) for t, n in counts.items()]
    digest_input = b"tokens:" + ",".join(map(str, token_ids)).encode()
    return _assemble(features, dimensions, seed, digest_input)


def words(text: str) -> list[str]:
    """The content words of `text`, stemmed, in order (stopwords and single letters dropped);
    then each CJK or Hangul run's character pairs and ideographs."""
    lowered = text.lower()
    plain = _CJK_RUN.sub(" ", lowered)
    found = [_stem(w) for w in _WORD.findall(plain) if len(w) > 1 and w not in _STOPWORDS]
    for run in _CJK_RUN.findall(lowered):
        found += [run[i : i + 2] for i in range(len(run) - 1)]
        found += [c for c in run if _IDEOGRAPH.match(c) and c not in _CJK_STOPWORDS]
    return found


def normalize(vector: Sequence[float]) -> list[float]:
    """`vector` scaled to unit length and rounded to float32 (a zero vector stays zero)."""
    norm = math.hypot(*vector)
    scale = 1.0 / norm if norm else 0.0
    return array("f", [x * scale for x in vector]).tolist()


def _stem(word: str) -> str:
    """A deliberately naive English stemmer: plurals, -ing, -ed, a final e."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ing") and _has_vowel(word[:-3]) and len(word) > 5:
        word = _undouble(word[:-3])
    elif word.endswith("ed") and not word.endswith("eed") and len(word) > 4:
        word = _undouble(word[:-2])
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    # "house"/"houses", "make"/"making", "bake"/"baked" all meet at the same stem.
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def _has_vowel(stem: str) -> bool:
    # "string" and "thing" are not verb + ing: what is left must look like a syllable.
    return len(stem) >= 2 and any(c in "aeiouy" for c in stem)


def _undouble(stem: str) -> str:
    """`runn` -> `run`, `embedd` -> `embed` (but `fall`, `miss` and `buzz` keep their pair)."""
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "aeiouylsz":
        return stem[:-1]
    return stem


def _assemble(
    features: list[tuple[Features, int]], dimensions: int, seed: int, digest_input: bytes
) -> list[float]:
    """Sum the word features (sublinear in repeats), add the dense component, normalise."""
    if dimensions < 1:
        raise ValueError(f"dimensions must be >= 1, got {dimensions}")
    sparse = [0.0] * dimensions
    for (indices, weights), count in features:
        factor = math.sqrt(count)  # a word said twice counts more, but not twice as much
        for index, weight in zip(indices, weights, strict=True):
            sparse[index] += weight * factor
    noise = _noise(digest_input, dimensions, seed)
    norm = math.hypot(*sparse)
    if not norm:
        return normalize(noise)
    scale = 1.0 / norm
    return normalize([x * scale + y for x, y in zip(sparse, noise, strict=True)])


def _noise(digest_input: bytes, dimensions: int, seed: int) -> list[float]:
    """The text's dense component: a window of the seed's Gaussian pool, placed by its digest."""
    pool = _pool(dimensions, seed)
    digest = hashlib.blake2b(digest_input, key=_key(seed), digest_size=8).digest()
    offset = int.from_bytes(digest, "little") % (len(pool) - dimensions + 1)
    return pool[offset : offset + dimensions]


@functools.lru_cache(maxsize=8)
def _pool(dimensions: int, seed: int) -> list[float]:
    """Gaussian values scaled so that any `dimensions`-long window has norm ~_NOISE_RATIO."""
    rng = random.Random(f"mockai-embeddings:{seed}:{dimensions}")
    sigma = _NOISE_RATIO / math.sqrt(dimensions)
    return [rng.gauss(0.0, sigma) for _ in range(dimensions + 4096)]


@functools.lru_cache(maxsize=_CACHE_WORDS)
def _word_features(word: str, dimensions: int, seed: int, trigrams: bool) -> Features:
    """The sparse vector of one word: its own buckets (norm 1) plus its trigrams' (weaker)."""
    indices, weights = _buckets(b"w" + word.encode(), dimensions, seed, _WORD_BUCKETS)
    grams = _trigrams(word) if trigrams else []
    if not grams:
        return array("i", indices), array("f", weights)
    # Each trigram gets an equal share of the trigram energy, whatever the word's length.
    share = math.sqrt(_TRIGRAM_ENERGY / len(grams))
    gram_indices: list[int] = list(indices)
    gram_weights: list[float] = list(weights)
    for gram in grams:
        more_indices, more_weights = _gram_features(gram, dimensions, seed)
        gram_indices += more_indices
        gram_weights += [w * share for w in more_weights]
    return array("i", gram_indices), array("f", gram_weights)


@functools.lru_cache(maxsize=_CACHE_WORDS)
def _gram_features(gram: str, dimensions: int, seed: int) -> Features:
    """A trigram's buckets (norm 1); cached apart because thousands of words share trigrams."""
    return _buckets(b"g" + gram.encode(), dimensions, seed, _TRIGRAM_BUCKETS)


def _trigrams(word: str) -> list[str]:
    padded = f"<{word}>"
    return [padded[i : i + 3] for i in range(len(padded) - 2)]


def _buckets(data: bytes, dimensions: int, seed: int, count: int) -> Features:
    """`count` signed buckets for `data`, with weights scaled to unit norm."""
    digest = hashlib.blake2b(data, key=_key(seed), digest_size=count * 3).digest()
    indices: list[int] = []
    raw: list[float] = []
    for j in range(count):
        position = int.from_bytes(digest[3 * j : 3 * j + 2], "little")
        indices.append(position % min(dimensions, _SPANS[j % len(_SPANS)]))
        byte = digest[3 * j + 2]
        # Magnitude in [0.5, 1.5), sign from the low bit: varied values, never near zero.
        raw.append((0.5 + (byte >> 1) / 128.0) * (1.0 if byte & 1 else -1.0))
    scale = 1.0 / math.sqrt(sum(w * w for w in raw))
    return tuple(indices), tuple(w * scale for w in raw)


@functools.lru_cache(maxsize=64)
def _key(seed: int) -> bytes:
    return f"mockai-embeddings:{seed}".encode()[:64]
