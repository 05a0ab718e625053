"""Deterministic, plausible moderation results: a keyword lexicon, and tiny seeded scores.

A test of a moderation gate needs two things from the mock: benign text passes, and obviously
harmful text ("I will kill you", "I want to hurt myself") is flagged in the right categories. A
small lexicon of regular expressions per category gives the high scores; every other category gets
a tiny score (1e-6 to 1e-3) drawn from a hash of the seed, the text and the category, so the
numbers look like a classifier's and stay the same on every run.

Images cannot be looked at: they only decide `category_applied_input_types` (image-capable
categories list "image" when the input has an image part).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from mockai import tokens
from mockai.pipeline.exchange import Exchange
from mockai.pipeline.reply import Reply

# The 13 categories, in the order the API writes them.
CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
# Categories the omni model also scores on images (the others are text-only, per the spec).
IMAGE_CATEGORIES = frozenset(
    {
        "self-harm",
        "self-harm/intent",
        "self-harm/instructions",
        "sexual",
        "violence",
        "violence/graphic",
    }
)
# A category is flagged at or above this score.
THRESHOLD = 0.5
# The API reads an input's first 32,768 tokens and ignores the rest (a long input is truncated,
# not refused): so does mockai, as `tokens` counts them. Scoring all of a 32 MB input ran the
# patterns for a minute, and `re` holds the GIL for each search, so the whole server waited.
READ_TOKENS = 32_768
# A prefix that surely holds READ_TOKENS tokens, cut first (at C speed) so that only it is split:
# no token of cl100k or o200k is longer than 128 characters (a run of spaces), nor is a piece of
# `tokens` (80 spaces at most). What is read is then at most ~2.6 M characters of whitespace, or
# ~200 K of words: one pattern's search over it holds the GIL for ~0.2 s at most.
_READ_CHARS = READ_TOKENS * 128

_SELF = r"(?:myself|my\s+life|my\s+wrists?)"
_PEOPLE = r"(?:you|him|her|them|everyone|everybody|people|somebody|someone|u)"
_GROUP = (
    r"(?:immigrants|foreigners|jews|muslims|christians|hindus|blacks|whites|asians|arabs|gays|"
    r"lesbians|trans\s+people|women|refugees|mexicans)"
)

# (pattern, scores it implies). A category's score is combined over every pattern that matches.
_LEXICON: tuple[tuple[str, Mapping[str, float]], ...] = (
    # violence, and threats aimed at a person
    (
        (
            r"\b(?:kill(?:s|ed|ing|er|ers)?|murder(?:s|ed|ing|er|ers)?|stab(?:s|bed|bing)?|"
            r"shoot(?:s|ing)?|strangled?|behead(?:ed)?|slaughter(?:ed)?|tortured?|massacred?)\b"
        ),
        {"violence": 0.78},
    ),
    (r"\b(?:attack|assault|beat\s+up|punch|bomb)(?:s|ed|ing)?\b", {"violence": 0.55}),
    (
        rf"\b(?:kill|murder|stab|shoot|hurt|strangle|beat|destroy|find)\s+{_PEOPLE}\b",
        {"violence": 0.93, "harassment/threatening": 0.62, "harassment": 0.45},
    ),
    (
        (
            r"\b(?:i(?:'ll|\s+will|\s+am\s+going\s+to|'m\s+going\s+to|\s+gonna)|we(?:'ll|\s+will))"
            r"\s+(?:kill|murder|stab|shoot|hurt|beat|destroy|find|get)\s+(?:you|u)\b"
        ),
        {"harassment/threatening": 0.94, "harassment": 0.71, "violence": 0.96},
    ),
    (
        r"\b(?:you(?:'re|\s+are)\s+(?:dead|going\s+to\s+die)|watch\s+your\s+back)\b",
        {"harassment/threatening": 0.81, "harassment": 0.6, "violence": 0.7},
    ),
    (
        (
            r"\b(?:gore|dismember\w*|disembowel\w*|mutilat\w*|decapitat\w*|entrails|"
            r"blood\s+(?:everywhere|spray\w*|gush\w*))\b"
        ),
        {"violence/graphic": 0.83, "violence": 0.88},
    ),
    # harassment
    (
        (
            r"\b(?:idiot|moron|stupid|loser|worthless|pathetic|imbecile|retard(?:ed)?|dumbass|"
            r"piece\s+of\s+(?:shit|garbage|trash)|shut\s+up)\b"
        ),
        {"harassment": 0.74},
    ),
    (r"\b(?:i\s+hate\s+you|nobody\s+likes\s+you|go\s+die)\b", {"harassment": 0.86}),
    # hate: insults aimed at a group, not every sentence that names one ("all women are welcome")
    (rf"\bi\s+hate\s+(?:all\s+)?(?:the\s+)?{_GROUP}\b", {"hate": 0.82, "harassment": 0.55}),
    (
        (
            rf"\b{_GROUP}\s+(?:are|is)\s+(?:all\s+)?(?:animals|vermin|inferior|subhuman|"
            r"disgusting|parasites|criminals|trash|evil|filth|a\s+plague)\b|"
            r"\bsubhuman\b|\binferior\s+race\b"
        ),
        {"hate": 0.88, "harassment": 0.6},
    ),
    (
        (
            rf"\b(?:exterminate|eradicate|wipe\s+out|get\s+rid\s+of|kill\s+all)\s+(?:all\s+)?"
            rf"(?:the\s+)?{_GROUP}|\bethnic\s+cleansing\b"
        ),
        {"hate/threatening": 0.91, "hate": 0.93, "violence": 0.85},
    ),
    (
        (
            # Within one sentence (bounded, so long texts cannot make the regex backtrack for long).
            rf"\b{_GROUP}\b[^.!?\n]{{0,200}}?\b(?:should|must|deserve\s+to|ought\s+to)\s+be\s+"
            r"(?:exterminated|killed|wiped\s+out|eradicated|gassed|shot|hanged|lynched)\b"
        ),
        {"hate/threatening": 0.93, "hate": 0.95, "violence": 0.87},
    ),
    # self-harm
    (
        (
            rf"\b(?:suicide|suicidal|self[-\s]?harm|kill(?:ing)?\s+{_SELF}|cut(?:ting)?\s+{_SELF}|"
            rf"hurt(?:ing)?\s+{_SELF}|end(?:ing)?\s+my\s+life|starv(?:e|ing)\s+myself)\b"
        ),
        {"self-harm": 0.86},
    ),
    (
        (
            rf"\b(?:i\s+(?:want|wanna|plan|intend|am\s+going|'m\s+going|am\s+about|'m\s+about|will)"
            rf"\s+(?:to\s+)?(?:kill|hurt|cut|harm|end|starve)\s+{_SELF}|i\s+want\s+to\s+die|"
            r"i\s+don't\s+want\s+to\s+live)\b"
        ),
        {"self-harm/intent": 0.91, "self-harm": 0.93, "violence": 0.4},
    ),
    (
        (
            rf"\b(?:how\s+(?:to|do\s+i|can\s+i|should\s+i)|best\s+way\s+to|painless\s+way\s+to)\s+"
            rf"(?:kill\s+{_SELF}|commit\s+suicide|cut\s+{_SELF}|overdose|hang\s+myself|die)\b"
        ),
        {"self-harm/instructions": 0.88, "self-harm": 0.9, "self-harm/intent": 0.62},
    ),
    # sexual
    (
        (
            r"\b(?:porn\w*|nude|nudes|naked|orgasm\w*|erotic|blowjob|horny|have\s+sex|sex\s+with|"
            r"sexual\s+intercourse|xxx)\b"
        ),
        {"sexual": 0.84},
    ),
    # illicit
    (
        (
            r"\b(?:how\s+(?:to|do\s+i|can\s+i)|help\s+me|teach\s+me\s+to)\s+(?:shoplift|steal|"
            r"launder\s+money|hack\s+into|pick\s+a\s+lock|forge|counterfeit|evade\s+taxes|"
            r"(?:make|cook|synthesize|buy|sell)\s+(?:meth|cocaine|heroin|fentanyl|drugs|lsd))"
        ),
        {"illicit": 0.87},
    ),
    (
        (
            r"\b(?:(?:make|build|assemble)\s+(?:a\s+)?(?:pipe\s+)?(?:bomb|explosive|ied|molotov)\w*|"
            r"ghost\s+gun|buy\s+a\s+gun\s+without|untraceable\s+(?:gun|firearm)|"
            r"how\s+to\s+poison\s+(?:someone|somebody|a\s+person))"
        ),
        {"illicit/violent": 0.89, "illicit": 0.92, "violence": 0.7},
    ),
)
# Words that only look violent in everyday and technical English ("kill the process").
_BENIGN = re.compile(
    r"\b(?:kill(?:s|ed|ing)?\s+(?:-9\s+)?(?:[\w.-]+\s+){0,3}?"
    r"(?:process(?:es)?|task|job|thread|program|app|application|server|session|pid|command|"
    r"container|pod|time|switch|bill|feature|bugs?|weeds?|mood|lights?|engine)|"
    r"shoot(?:s|ing)?\s+(?:a\s+|an\s+|the\s+|me\s+)?(?:photo|video|film|movie|email|message|"
    r"scene|hoops)|attack\s+(?:surface|vector)|killer\s+(?:app|feature)|photo\s*shoot|"
    r"bath\s+bomb|bomb\s+(?:dot\s+)?com|da\s+bomb|heart\s+attack|panic\s+attack)\b",
    re.IGNORECASE,
)
_RULES = tuple((re.compile(pattern, re.IGNORECASE), scores) for pattern, scores in _LEXICON)


def reply_for(exchange: Exchange, seed: int) -> Reply:
    """One moderation result per input of `exchange`."""
    kinds = input_kinds(exchange.body.get("input"))
    results = []
    for index, text in enumerate(exchange.inputs or ("",)):
        has_text, has_image = kinds[index] if index < len(kinds) else (True, False)
        results.append(result(text, seed, has_text=has_text, has_image=has_image))
    return Reply(moderation=tuple(results))


def result(
    text: str, seed: int, *, has_text: bool = True, has_image: bool = False
) -> dict[str, Any]:
    """The moderation result for one input: flags, scores and the input types they apply to."""
    scores = scores_for(text, seed)
    categories = {name: scores[name] >= THRESHOLD for name in CATEGORIES}
    return {
        "flagged": any(categories.values()),
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": applied_input_types(has_text, has_image),
    }


def input_kinds(raw: Any) -> list[tuple[bool, bool]]:
    """(has text, has image) per input of an (already validated) `input` field.

    A list of strings is one input per string; a list of multimodal parts is a single input.
    """
    if isinstance(raw, list) and raw and all(isinstance(part, dict) for part in raw):
        types = {part.get("type") for part in raw}
        return [("text" in types, "image_url" in types)]
    return [(True, False)] * (len(raw) if isinstance(raw, list) else 1)


def scores_for(text: str, seed: int) -> dict[str, float]:
    """A score per category: the lexicon's where it matches, else a tiny seeded one; of the part
    of `text` the API reads (`read_part`)."""
    text = read_part(text)
    hits = _lexicon_scores(_BENIGN.sub(" ", text))
    scores: dict[str, float] = {}
    for name in CATEGORIES:
        floor = _tiny(text, name, seed)
        found = hits.get(name)
        # The seeded jitter keeps lexicon scores from all being the same round number.
        scores[name] = floor if found is None else round(min(found + floor * 10, 0.9999), 10)
    return scores


def read_part(text: str) -> str:
    """The part of `text` the API reads: its first READ_TOKENS tokens."""
    if len(text) <= READ_TOKENS:  # (every token holds a character at least)
        return text
    return tokens.truncate(text[:_READ_CHARS], READ_TOKENS)


def applied_input_types(has_text: bool, has_image: bool) -> dict[str, list[str]]:
    """Which input types each category was scored on (images only count for some)."""
    kinds: dict[str, list[str]] = {}
    for name in CATEGORIES:
        found = ["text"] if has_text else []
        if has_image and name in IMAGE_CATEGORIES:
            found.append("image")
        kinds[name] = found
    return kinds


_RESULT_MAPS = ("categories", "category_scores", "category_applied_input_types")


def is_complete(result: Mapping[str, Any]) -> bool:
    """Whether a result has every field and every category (`complete` would change nothing)."""
    if "flagged" not in result:
        return False
    for field in _RESULT_MAPS:
        values = result.get(field)
        if not isinstance(values, Mapping) or any(name not in values for name in CATEGORIES):
            return False
    return True


def complete(partial: Mapping[str, Any], generated: Mapping[str, Any]) -> dict[str, Any]:
    """A scripted (possibly partial) result filled in from a generated one.

    Lets a rule say only `{"categories": {"violence": true}}`: the other categories, the scores
    and `flagged` are made consistent with it. A category scripted alone gets a score on its side
    of THRESHOLD (true: at least 0.9; false: a tiny one), a score scripted alone decides its
    category, and what a rule scripted both ways is kept as written (the test asked for it).
    `flagged` follows the categories unless it is scripted too.
    """
    given_categories = partial.get("categories") or {}
    given_scores = partial.get("category_scores") or {}
    categories = {**generated["categories"], **given_categories}
    scores = {**generated["category_scores"], **given_scores}
    for name in {**categories, **scores}:
        if name in given_categories and name not in given_scores:
            scores[name] = _score_on_side(scores.get(name, 0.0), name, bool(categories[name]))
        elif name in given_scores and name not in given_categories:
            categories[name] = scores[name] >= THRESHOLD
    flagged_any = any(bool(value) for value in categories.values())
    return {
        "flagged": bool(partial.get("flagged", flagged_any)),
        "categories": categories,
        "category_scores": scores,
        # (The input types a category was scored on do not depend on whether it is flagged.)
        "category_applied_input_types": {
            **generated["category_applied_input_types"],
            **(partial.get("category_applied_input_types") or {}),
        },
    }


def _score_on_side(score: float, category: str, flagged: bool) -> float:
    """`score`, moved to the side of THRESHOLD that a scripted category value says."""
    if flagged:
        return max(score, 0.9)
    if score < THRESHOLD:
        return score  # already a generated floor
    # A tiny score as the generator draws them, keyed on the score it replaces: deterministic.
    return _tiny(repr(score), category, 0)


# --- building blocks -----------------------------------------------------------------------------


def _lexicon_scores(text: str) -> dict[str, float]:
    """Per category, the combined score of every matching pattern: 1 - prod(1 - s)."""
    misses: dict[str, float] = {}
    for pattern, scores in _RULES:
        if pattern.search(text):
            for name, score in scores.items():
                misses[name] = misses.get(name, 1.0) * (1.0 - score)
    return {name: 1.0 - miss for name, miss in misses.items()}


def _tiny(text: str, category: str, seed: int) -> float:
    """A log-uniform score in [1e-6, 1e-3), from the seed, the text and the category."""
    digest = hashlib.blake2b(
        f"{category}\x00{text}".encode("utf-8", "surrogatepass"),
        key=f"mockai-moderation:{seed}".encode()[:64],
        digest_size=8,
    ).digest()
    unit = int.from_bytes(digest, "big") / 2.0**64
    return float(f"{10.0 ** (-6.0 + 3.0 * unit):.6e}")
