"""Plausible prose, and one Faker for the whole process, reseeded for every use.

Creating a Faker costs ~90 ms, far too much per server when a test suite starts one server per
test: each thread that needs one (the event loop's, the worker making big answers) creates its own
once. Output stays reproducible because every use reseeds it first (and clears `faker.unique`'s
memory of what it gave).

`sentences()` builds text the way Faker's `sentence()` does (words from its locale's lorem list,
capitalised, ending in a period) but draws from the caller's seeded RNG directly: five times
faster, which matters on the hot path of a load test. The word list is Faker's en_US lorem list,
shipped as `data/lorem_en_US.txt` (a test keeps them equal): generated prose then needs no Faker,
and Faker (~0.2 s and ~14 MB to import) loads only when templates or schema strings ask for it.

Faker's date providers read the wall clock (`date_time()` is "between 1970 and now", and
`date_this_month()` follows the machine's local time zone): mockai's Faker reads a stopped one
instead, at `created`'s instant (2025-01-01T00:00:00Z, in UTC), so that dates are reproducible
too. It does so with private copies of the providers that read the clock (`fakerclock`):
the `datetime` module itself, and any other Faker in the process, are left alone.
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faker import Faker

_local = threading.local()  # one Faker per thread that uses one (the loop's, the heavy worker's)


def _shared() -> Faker:
    faker: Faker | None = getattr(_local, "faker", None)
    if faker is None:
        from faker import Faker  # on first use: most servers never need it

        faker = Faker("en_US")
        from mockai.generate import fakerclock  # (not compiled: mypyc cannot subclass datetime)

        fakerclock.stop_clock(faker)
        _guard(faker)
        _local.faker = faker
    return faker


def _provider_methods(faker: Faker) -> frozenset[str]:
    # What `Generator.add_provider` registers: the providers' public callables.
    return frozenset(
        name
        for generator in faker.factories
        for provider in generator.get_providers()
        for name in dir(provider)
        if not name.startswith("_") and callable(getattr(provider, name))
    )


@functools.cache
def provider_methods() -> frozenset[str]:
    """The names of the Faker providers' public methods (`first_name`, `sentence`, ...)."""
    return _provider_methods(_shared())


def _guard(faker: Faker) -> None:
    """Make `format` and `parse` (which `json`, `csv`, `pystr_format`... call with strings a
    template gives) reach provider methods only: Faker's own `get_formatter` is a getattr of any
    name, dunders and `set_arguments` included, a way around the templates' sandbox."""
    known = _provider_methods(faker)
    for generator in faker.factories:
        original = generator.get_formatter

        def get_formatter(name: str, original: Callable[[str], Any] = original) -> Any:
            if name not in known:
                raise AttributeError(f"Unknown formatter {name!r}")
            return original(name)

        # (an instance attribute: `Generator.format` calls `self.get_formatter`)
        setattr(generator, "get_formatter", get_formatter)  # noqa: B010


@functools.cache
def words() -> Sequence[str]:
    """The locale's lorem word list (Faker's en_US list, loaded once)."""
    # (pkgutil reads it through the package's loader: importlib.resources would import its
    # readers and zipfile with the first generated answer)
    import pkgutil

    data = pkgutil.get_data("mockai", "data/lorem_en_US.txt")
    assert data is not None  # (the loader of an installed package reads its data files)
    text = data.decode("utf-8")
    return tuple(text.split())


def sentences(rng: random.Random, count: int) -> str:
    """`count` sentences of 6 to 14 words each."""
    vocabulary = words()
    out = []
    for _ in range(count):
        chosen = rng.choices(vocabulary, k=rng.randint(6, 14))
        out.append(" ".join(chosen).capitalize() + ".")
    return " ".join(out)


@contextmanager
def seeded_faker(seed: int) -> Iterator[Faker]:
    """This thread's Faker, seeded with `seed`, for use inside the `with` block.

    One per thread rather than one behind a lock: a big answer made in the worker thread
    (mockai.pipeline.workload) must not make the event loop wait for the Faker.
    """
    faker = _shared()
    faker.seed_instance(seed)
    # `faker.unique` remembers what it gave: per use, or the same request would get other
    # values the next time (and `unique.boolean()` would run out on the third).
    faker.unique.clear()
    yield faker
