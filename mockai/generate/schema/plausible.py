"""Plausible text: Faker when one is given, small built-in lists otherwise; schema examples.

Every built-in value is drawn from the generator's RNG only, so output without a Faker depends on
nothing but the seed. Faker is reseeded from the same RNG by `instance()`.
"""

from __future__ import annotations

import datetime as dt
import random
import string
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mockai.generate.schema.names import is_query, string_kind
from mockai.generate.schema.nodes import MISSING
from mockai.generate.schema.places import PLACE_KINDS, place_for

if TYPE_CHECKING:
    from mockai.generate.schema.generator import Generator

_PRESET_CHANCE = 0.5  # a valid `default` / `examples` value used as is


def text(gen: Generator, kind: str) -> str:
    """A string of a kind (`city`, `email`, ...): from Faker if it has one, else built in."""
    make = _FAKER_TEXT.get(kind)
    if gen.faker is not None and make is not None:
        try:
            value = make(gen.faker)
        except AttributeError:  # a provider missing for this Faker's locale
            value = None
        if isinstance(value, str) and value:
            return value
    return _BUILTIN_TEXT[kind](gen.rng)


def plausible_text(gen: Generator, name: str) -> str:
    """Text for a string property called `name`: the user's message for a query, the place the
    message names for a place (`city`, `country`, ...), else a made-up value of its kind."""
    if gen.context and is_query(name):
        return gen.context
    kind = string_kind(name)
    if gen.context and kind in PLACE_KINDS:
        place = place_for(kind, name, gen.context)
        if place is not None:
            return place  # "weather in Paris?" -> {"city": "Paris"}
    return text(gen, kind) if kind is not None else text(gen, "sentence")


def preset(rng: random.Random, node: Mapping[str, Any]) -> Any:
    """Now and then, one of the schema's own `default` / `examples` values (caller checks)."""
    values = list(node.get("examples") or []) if isinstance(node.get("examples"), list) else []
    values += [node[key] for key in ("default", "example") if key in node]
    if not values or rng.random() >= _PRESET_CHANCE:
        return MISSING
    return rng.choice(values)


# --- small random pieces -------------------------------------------------------------------------


def pick(rng: random.Random, options: Sequence[str]) -> str:
    return options[rng.randrange(len(options))]


def word(rng: random.Random) -> str:
    return pick(rng, _WORDS)


def sentence(rng: random.Random, low: int = 4, high: int = 9) -> str:
    words = [word(rng) for _ in range(rng.randint(low, high))]
    return " ".join(words).capitalize() + "."


def hex_digits(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(4 * digits):0{digits}x}"


def date(rng: random.Random, first_year: int = 2018, last_year: int = 2026) -> dt.date:
    start = dt.date(first_year, 1, 1).toordinal()
    return dt.date.fromordinal(rng.randint(start, dt.date(last_year, 12, 31).toordinal()))


def clock(rng: random.Random) -> str:
    return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"


def email(rng: random.Random) -> str:
    return f"{pick(rng, _FIRST_NAMES)}.{pick(rng, _LAST_NAMES)}@example.com".lower()


def uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def ipv4(rng: random.Random) -> str:
    parts = (rng.randint(1, 223), *(rng.randint(0, 255) for _ in range(3)))
    return ".".join(map(str, parts))


def duration(rng: random.Random) -> str:
    return pick(
        rng,
        (f"P{rng.randint(1, 30)}D", f"PT{rng.randint(1, 23)}H", f"PT{rng.randint(1, 59)}M",
         f"P{rng.randint(1, 6)}DT{rng.randint(1, 12)}H"),
    )  # fmt: skip


# --- text by kind --------------------------------------------------------------------------------


_FAKER_TEXT: dict[str, Callable[[Any], Any]] = {
    "name": lambda f: f.name(),
    "first_name": lambda f: f.first_name(),
    "last_name": lambda f: f.last_name(),
    "user_name": lambda f: f.user_name(),
    "email": lambda f: f.email(),
    "phone": lambda f: f.phone_number(),
    "city": lambda f: f.city(),
    "country": lambda f: f.country(),
    "country_code": lambda f: f.country_code(),
    "state": lambda f: f.state(),
    "address": lambda f: f.address().replace("\n", ", "),
    "street": lambda f: f.street_address(),
    "postcode": lambda f: f.postcode(),
    "company": lambda f: f.company(),
    "url": lambda f: f.url(),
    "domain": lambda f: f.domain_name(),
    "date": lambda f: f.date(),
    "birthdate": lambda f: f.date_of_birth().isoformat(),
    "title": lambda f: f.sentence(nb_words=4).rstrip("."),
    "sentence": lambda f: f.sentence(),
    "currency": lambda f: f.currency_code(),
    "language": lambda f: f.language_name(),
    "language_code": lambda f: f.language_code(),
    "locale": lambda f: f.locale(),
    "color": lambda f: f.color_name(),
    "job": lambda f: f.job(),
    "word": lambda f: f.word(),
    "timezone": lambda f: f.timezone(),
    "slug": lambda f: f.slug(),
    "file_name": lambda f: f.file_name(),
    "file_path": lambda f: f.file_path(),
}

_WORDS = (
    "alpha", "amber", "anchor", "apple", "bright", "cedar", "cloud", "coral", "delta", "ember",
    "field", "forest", "garden", "harbor", "island", "lemon", "maple", "meadow", "north", "ocean",
    "orbit", "pebble", "river", "silver", "stone", "summit", "valley", "willow", "winter", "zephyr",
)  # fmt: skip
_FIRST_NAMES = ("Alice", "Bruno", "Chen", "Dana", "Elena", "Farid", "Grace", "Hiro", "Ines")
_LAST_NAMES = ("Garcia", "Smith", "Okafor", "Novak", "Tanaka", "Dubois", "Kowalski", "Silva")
_CITIES = ("Lisbon", "Toronto", "Osaka", "Nairobi", "Oslo", "Austin", "Lyon", "Melbourne", "Pune")
_LISTS: dict[str, tuple[str, ...]] = {
    "first_name": _FIRST_NAMES,
    "last_name": _LAST_NAMES,
    "city": _CITIES,
    "country": ("Portugal", "Canada", "Japan", "Kenya", "Norway", "France", "Brazil", "India"),
    "country_code": ("PT", "CA", "JP", "KE", "NO", "FR", "BR", "IN", "US", "DE"),
    "state": ("California", "Ontario", "Bavaria", "Queensland", "Texas", "Quebec"),
    "company": ("Acme Corp", "Globex", "Initech", "Umbrella Labs", "Stark Industries", "Hooli"),
    "currency": ("USD", "EUR", "GBP", "JPY", "CAD", "CHF", "AUD"),
    "language": ("English", "French", "Spanish", "Japanese", "German", "Portuguese"),
    "language_code": ("en", "fr", "es", "ja", "de", "pt"),
    "locale": ("en_US", "fr_FR", "es_ES", "ja_JP", "de_DE", "pt_BR"),
    "color": ("red", "blue", "green", "orange", "purple", "teal", "black"),
    "job": ("Engineer", "Teacher", "Designer", "Nurse", "Accountant", "Chef", "Pilot"),
    "timezone": ("UTC", "Europe/Lisbon", "America/New_York", "Asia/Tokyo", "Africa/Nairobi"),
    "status": ("active", "pending", "completed", "archived"),
    "word": _WORDS,
}


def _picker(options: Sequence[str]) -> Callable[[random.Random], str]:
    return lambda rng: pick(rng, options)


def _builtin_texts() -> dict[str, Callable[[random.Random], str]]:
    """Every kind `names.string_kind` can return, made from the RNG alone."""
    texts = {kind: _picker(options) for kind, options in _LISTS.items()}
    texts.update(
        name=lambda r: f"{pick(r, _FIRST_NAMES)} {pick(r, _LAST_NAMES)}",
        user_name=lambda r: f"{pick(r, _FIRST_NAMES).lower()}{r.randint(1, 99)}",
        email=email,
        phone=lambda r: f"+1-555-{r.randint(100, 999)}-{r.randint(1000, 9999)}",
        address=lambda r: f"{r.randint(1, 999)} {word(r).capitalize()} St, {pick(r, _CITIES)}",
        street=lambda r: f"{r.randint(1, 999)} {word(r).capitalize()} Street",
        postcode=lambda r: str(r.randint(10000, 99999)),
        url=lambda r: f"https://example.com/{word(r)}",
        domain=lambda r: f"{word(r)}.example.com",
        date=lambda r: date(r).isoformat(),
        birthdate=lambda r: date(r, 1950, 2005).isoformat(),
        datetime=lambda r: f"{date(r).isoformat()}T{clock(r)}Z",
        time=lambda r: clock(r)[:5],
        title=lambda r: sentence(r, 2, 4).rstrip(".").title(),
        sentence=sentence,
        id=lambda r: hex_digits(r, 8),
        uuid=uuid4,
        ipv4=ipv4,
        slug=lambda r: f"{word(r)}-{word(r)}-{word(r)}",
        password=lambda r: f"{word(r).capitalize()}{r.randint(100, 999)}!",
        token=lambda r: hex_digits(r, 16),
        code=lambda r: "".join(pick(r, string.ascii_uppercase + string.digits) for _ in range(6)),
        version=lambda r: f"{r.randint(0, 3)}.{r.randint(0, 20)}.{r.randint(0, 9)}",
        file_name=lambda r: f"{word(r)}.{pick(r, ('pdf', 'txt', 'csv', 'png'))}",
        file_path=lambda r: f"/data/{word(r)}/{word(r)}.{pick(r, ('pdf', 'txt', 'csv'))}",
    )
    return texts


_BUILTIN_TEXT = _builtin_texts()
