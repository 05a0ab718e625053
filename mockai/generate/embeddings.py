"""Deterministic embeddings whose cosine similarity follows lexical overlap.

Random vectors would break every retrieval (RAG) test: the app under test embeds documents and a
question, and expects the document about cats to come back for "Tell me about cats". So a vector
here is a feature-hashing bag of words, dressed up to look like a dense model embedding:

- text becomes content words: lower case, punctuation dropped, a naive stemmer ("cats" -> "cat",
  "running" -> "run"), a small stopword list dropped; text written without spaces (Chinese,
  Japanese) and Korean as its overlapping character pairs and single ideographs;
- every word adds a fixed sparse vector: signed weights in a few buckets picked by a keyed
  BLAKE2 hash of the word (never `hash()`, which is salted per process), plus weaker buckets for
  its character trigrams, so "finance" and "financial" are close too;
- bucket positions are nested like a Matryoshka embedding: every word puts buckets in the first 64
  and 256 dimensions, so truncating to `dimensions` (what text-embedding-3 does) keeps similarity;
- a small dense seeded component (a slice of a cached Gaussian pool, picked by the text's digest)
  makes every value non-zero and gives stopword-only or empty text a valid vector;
- the sum is L2-normalised and rounded to float32, the precision the API sends.

Texts sharing words therefore have a cosine that grows with the overlap; unrelated texts land near
0. The same text, dimensions and seed give the same vector in every process.

The arithmetic runs in numpy (imported on the first embedding, so a server that never embeds
does not load it): the same float64 operations in the same order as the pure-Python version this
replaced, except the two norms, which numpy sums pairwise (a last-bit difference in a norm moves
a float32 value in ~1 of 10^8 cases; tests/test_embeddings_codec.py compares against the old
version). Vectors are float32 arrays (`Vector`), written to JSON by orjson and to base64 as
their bytes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import random
import re
import sys
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from mockai.pipeline.exchange import Exchange
from mockai.pipeline.reply import Reply

if TYPE_CHECKING:
    import numpy
    from numpy.typing import NDArray

    Vector = NDArray[numpy.float32]

# Content words: runs of letters/digits (the apostrophe in "cat's" splits off a dropped "s").
_WORD = re.compile(r"[^\W_]+")
# Scripts written without spaces between words (CJK ideographs, kana) and Hangul, whose words
# carry their particles: a run of them was one "word", a whole clause, so a Chinese question and
# the document it is about shared no word at all ("股票市场怎么样" and "股票市场今天大幅下跌":
# cosine 0.003) and retrieval tests in these languages picked at random. Such a run is cut into
# its overlapping character pairs, as search engines index CJK text (Lucene's CJK bigrams), so
# texts sharing a word share its pairs, and each ideograph is a word of its own too.
_CJK_RUN = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]+"
)
_IDEOGRAPH = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
# Ideographs too common to tell texts apart (particles, pronouns, "is", "one"), like the English
# stopwords below; their pairs with other characters still count.
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
# Inputs embedded together by one set of numpy calls (see reply_for): as many as fit a float64
# matrix of 120 KiB, well under glibc's mmap threshold (fixed by `mockai serve` at 1 MiB), so
# the matrix comes from the heap, whose pages are already resident, instead of a fresh mapping
# that faults in. (Blocks of 960 KiB measured no faster for 16 inputs.)
_BLOCK_BYTES = 120 * 1024

Features = tuple[Sequence[int], Sequence[float]]
# One input to embed: its words' features with their counts, and what places its dense part.
_Row = tuple[list[tuple[Any, int]], bytes]


# --- public API ----------------------------------------------------------------------------------


def embed(text: str, dimensions: int, seed: int) -> list[float]:
    """The unit-length float32 embedding of `text` (lexical overlap -> cosine similarity)."""
    values: list[float] = embed_vector(text, dimensions, seed).tolist()
    return values


def embed_vector(text: str, dimensions: int, seed: int) -> Vector:
    """`embed`, as a float32 array."""
    vector: Vector = _assemble([_text_row(text, dimensions, seed)], dimensions, seed)[0]
    return vector


def _text_row(text: str, dimensions: int, seed: int) -> _Row:
    if not text.isascii():
        # Canonically equal texts are the same text: "Café" typed (NFC) and as macOS or a paste
        # sends it (NFD, `e` + U+0301) had 0.68 of similarity, the accent splitting the word.
        text = unicodedata.normalize("NFC", text)
    counts = Counter(words(text))
    features = [(_word_features(w, dimensions, seed, True), n) for w, n in counts.items()]
    return features, text.encode("utf-8", "surrogatepass")


def embed_tokens(token_ids: Sequence[int], dimensions: int, seed: int) -> list[float]:
    """The embedding of a token array: each token id acts as a word (equal ids, equal features)."""
    values: list[float] = embed_tokens_vector(token_ids, dimensions, seed).tolist()
    return values


def embed_tokens_vector(token_ids: Sequence[int], dimensions: int, seed: int) -> Vector:
    """`embed_tokens`, as a float32 array."""
    vector: Vector = _assemble([_tokens_row(token_ids, dimensions, seed)], dimensions, seed)[0]
    return vector


def _tokens_row(token_ids: Sequence[int], dimensions: int, seed: int) -> _Row:
    counts = Counter(token_ids)
    features = [(_word_features(f"#{t}", dimensions, seed, False), n) for t, n in counts.items()]
    return features, b"tokens:" + ",".join(map(str, token_ids)).encode()


def words(text: str) -> list[str]:
    """The content words of `text`, stemmed, in order (stopwords and single letters dropped);
    CJK and Hangul runs give their character pieces after the other words (see _CJK_RUN)."""
    lowered = text.lower()
    if text.isascii() or _CJK_RUN.search(lowered) is None:
        return _plain_words(lowered)
    return _plain_words(_CJK_RUN.sub(" ", lowered)) + [
        piece for run in _CJK_RUN.findall(lowered) for piece in _cjk_pieces(run)
    ]


def _plain_words(lowered: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(lowered) if len(w) > 1 and w not in _STOPWORDS]


def _cjk_pieces(run: str) -> list[str]:
    """A CJK or Hangul run's overlapping character pairs, and its ideographs one by one (a
    Chinese word is often one character: 猫, 书), but for the commonest function characters."""
    pairs = [run[i : i + 2] for i in range(len(run) - 1)]
    return pairs + [c for c in run if _IDEOGRAPH.match(c) and c not in _CJK_STOPWORDS]


def base64_bytes(vector: Vector) -> bytes:
    """A float32 array in the API's base64 form (`to_base64`), as the ASCII bytes written."""
    return base64.b64encode(vector.astype("<f4", copy=False).tobytes())


def to_base64(vector: Iterable[float]) -> str:
    """`vector` as the API's base64 form: little-endian float32 bytes."""
    if _is_array(vector):
        return base64_bytes(cast("Vector", vector)).decode("ascii")
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def from_base64(data: str) -> list[float]:
    """The inverse of `to_base64` (what the SDK does to a base64 embedding)."""
    packed = array("f")
    packed.frombytes(base64.b64decode(data))
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tolist()


def normalize(vector: Sequence[float]) -> list[float]:
    """`vector` scaled to unit length and rounded to float32 (a zero vector stays zero)."""
    norm = math.hypot(*vector)
    scale = 1.0 / norm if norm else 0.0
    return array("f", [x * scale for x in vector]).tolist()


def truncate(vector: Sequence[float] | Vector, dimensions: int) -> Any:
    """The first `dimensions` values, renormalised: how text-embedding-3 honours `dimensions`
    (a float32 array for an array, else a list)."""
    if _is_array(vector):
        return _unit(cast("Vector", vector)[:dimensions].astype("float64"))
    return normalize(cast("Sequence[float]", vector)[:dimensions])


def reply_for(exchange: Exchange, dimensions: int, seed: int) -> Reply:
    """Embeddings for every input of `exchange`, at the model's native `dimensions`."""
    arrays = token_arrays(exchange.body.get("input"))
    rows: list[_Row] = []
    for index, text in enumerate(exchange.inputs):
        ids = arrays[index] if index < len(arrays) else None
        if ids is None:
            rows.append(_text_row(text, dimensions, seed))
        else:
            rows.append(_tokens_row(ids, dimensions, seed))
    # A matrix for many inputs (each row a vector): a few numpy calls per request, not per
    # input; in blocks, so that a worker thread making 2,048 vectors lets go of the GIL often.
    vectors: list[Vector] = []
    block = max(1, _BLOCK_BYTES // (8 * dimensions))
    for start in range(0, len(rows), block):
        vectors.extend(_assemble(rows[start : start + block], dimensions, seed))
    # (float32 arrays: sequences of floats, as scripted vectors are)
    return Reply(embeddings=tuple(cast("list[Sequence[float]]", vectors)))


def is_vector(value: Any) -> bool:
    """Whether `value` is a float32 array made here (not a scripted list of floats)."""
    return _is_array(value)


def _is_array(value: Any) -> bool:
    numpy = sys.modules.get("numpy")  # no array exists before numpy was imported
    return numpy is not None and isinstance(value, numpy.ndarray)


def _numpy() -> Any:
    import numpy  # on first use: a server that never embeds does not load it

    return numpy


def token_arrays(raw: Any) -> list[list[int] | None]:
    """For each input of an (already validated) `input` field: its token ids, or None for text."""
    if not isinstance(raw, list):
        return [None]
    if raw and all(isinstance(t, int) for t in raw):
        return [raw]
    return [item if isinstance(item, list) else None for item in raw]


# --- building blocks -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=_CACHE_WORDS)  # the same words come back in every text
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


def _assemble(rows: list[_Row], dimensions: int, seed: int) -> Any:
    """Embed every row at once: sum its word features (sublinear in repeats), add its dense
    component, normalise; a (rows, dimensions) float32 matrix."""
    if dimensions < 1:
        raise ValueError(f"dimensions must be >= 1, got {dimensions}")
    np = _numpy()
    size = len(rows) * dimensions
    # Every feature of every row, flattened (comprehensions and joins: one pass each at C speed
    # where a loop appending five lists per feature cost ~1.3 us a feature).
    features = [feature for row_features, _ in rows for feature in row_features]
    if features:
        lengths = [len(where) >> 2 for (where, _), _ in features]  # (int32 indices)
        # Each feature's row, as the offset of that row in the matrix.
        per_row = [len(row_features) for row_features, _ in rows]
        offsets = np.repeat(np.arange(0, size, dimensions), per_row)
        # Every bucket moved to its row at once (one numpy call, not one per feature).
        flat_indices = np.frombuffer(
            b"".join([where for (where, _), _ in features]), np.int32
        ) + np.repeat(offsets, lengths)
        flat_weights = np.frombuffer(
            b"".join([amounts for (_, amounts), _ in features]), np.float64
        )
        counts = [count for _, count in features]
        if any(count != 1 for count in counts):  # (x * 1.0 is x: skipped when all are 1)
            # a word said twice counts more, but not twice as much
            flat_weights = flat_weights * np.repeat(np.sqrt(counts), lengths)
        # bincount adds in order, one weight at a time, from 0.0: each value is the sum the
        # pure-Python loop made, bit for bit (and ~20x faster than np.add.at).
        flat = np.bincount(flat_indices, flat_weights, minlength=size)
    else:
        flat = np.zeros(size)
    # The rest works in place on this one matrix: every fresh array of this size is one more
    # allocation, and past the mmap threshold a new mapping whose pages fault in as they are
    # written (~100 us for 196 KB here), more than the arithmetic costs.
    matrix = flat.reshape(len(rows), dimensions)
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    # A text of stopwords only (no sparse part, scale 0) is its dense part alone: 0 * 0 + y = y.
    scales = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms != 0)
    matrix *= scales[:, None]
    for row, (_, digest) in enumerate(rows):
        matrix[row] += _noise(digest, dimensions, seed)
    return _unit(matrix, in_place=True)


def _unit(matrix: Any, *, in_place: bool = False) -> Any:
    """Rows (float64) scaled to unit length and rounded to float32 (a zero row stays zero);
    `in_place` scales `matrix` itself on the way (the same values, one array fewer)."""
    np = _numpy()
    if matrix.ndim == 1:
        return _unit(matrix[None, :])[0]
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    scales = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms != 0)
    if in_place:
        matrix *= scales[:, None]
        return matrix.astype(np.float32)
    return (matrix * scales[:, None]).astype(np.float32)


def _noise(digest_input: bytes, dimensions: int, seed: int) -> Any:
    """The text's dense component: a window of the seed's Gaussian pool, placed by its digest."""
    pool = _pool(dimensions, seed)
    digest = hashlib.blake2b(digest_input, key=_key(seed), digest_size=8).digest()
    offset = int.from_bytes(digest, "little") % (len(pool) - dimensions + 1)
    return pool[offset : offset + dimensions]


@functools.lru_cache(maxsize=8)
def _pool(dimensions: int, seed: int) -> Any:
    """Gaussian values scaled so that any `dimensions`-long window has norm ~_NOISE_RATIO."""
    rng = random.Random(f"mockai-embeddings:{seed}:{dimensions}")
    sigma = _NOISE_RATIO / math.sqrt(dimensions)
    return _numpy().array([rng.gauss(0.0, sigma) for _ in range(dimensions + 4096)])


@functools.lru_cache(maxsize=_CACHE_WORDS)
def _word_features(word: str, dimensions: int, seed: int, trigrams: bool) -> Any:
    """The sparse vector of one word: its own buckets (norm 1) plus its trigrams' (weaker), as
    the bytes of its int32 indices and of its float32-rounded weights (as float64, ready to be
    summed): compact in the cache (~0.5 KB an entry where two numpy arrays took ~1.3 KB), and
    joined with the other words' at C speed."""
    indices, weights = _buckets(b"w" + word.encode(), dimensions, seed, _WORD_BUCKETS)
    grams = _trigrams(word) if trigrams else []
    if not grams:
        return _packed(indices, weights)
    # Each trigram gets an equal share of the trigram energy, whatever the word's length.
    share = math.sqrt(_TRIGRAM_ENERGY / len(grams))
    gram_indices: list[int] = list(indices)
    gram_weights: list[float] = list(weights)
    for gram in grams:
        more_indices, more_weights = _gram_features(gram, dimensions, seed)
        gram_indices += more_indices
        gram_weights += [w * share for w in more_weights]
    return _packed(gram_indices, gram_weights)


def _packed(indices: Sequence[int], weights: Sequence[float]) -> tuple[bytes, bytes]:
    # Weights are kept at float32 precision, as they always were (the sums run in float64).
    # (native byte order: the bytes are only ever read back in this process)
    return array("i", indices).tobytes(), array("d", array("f", weights)).tobytes()


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
    spans = _spans(dimensions, count)
    # Bucket j: a position from bytes 3j, 3j+1 (little-endian) within its span, and a signed
    # weight from byte 3j+2 (see _WEIGHTS).
    indices = [
        (digest[k] | digest[k + 1] << 8) % span
        for k, span in zip(range(0, 3 * count, 3), spans, strict=True)
    ]
    raw = [_WEIGHTS[digest[k]] for k in range(2, 3 * count, 3)]
    scale = 1.0 / math.sqrt(sum([w * w for w in raw]))  # summed left to right, as always
    return tuple(indices), tuple([w * scale for w in raw])


# Byte -> weight: magnitude in [0.5, 1.5), sign from the low bit (varied values, never near
# zero); a table, since every new word reads 16 of them.
_WEIGHTS = tuple((0.5 + (byte >> 1) / 128.0) * (1.0 if byte & 1 else -1.0) for byte in range(256))


@functools.lru_cache(maxsize=64)
def _spans(dimensions: int, count: int) -> tuple[int, ...]:
    """Where each of `count` buckets may fall in a `dimensions`-long vector (the nesting)."""
    return tuple(min(dimensions, _SPANS[j % len(_SPANS)]) for j in range(count))


@functools.lru_cache(maxsize=64)
def _key(seed: int) -> bytes:
    return f"mockai-embeddings:{seed}".encode()[:64]
