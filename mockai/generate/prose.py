"""One Faker for the whole process, reseeded for every use.

Creating a Faker costs ~90 ms, far too much per server when a test suite starts one server per
test. Output stays reproducible because every use reseeds it first; the lock keeps a reseed and the
values drawn after it together when servers run on several threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from faker import Faker

_lock = threading.RLock()
_faker: Faker | None = None


@contextmanager
def seeded_faker(seed: int) -> Iterator[Faker]:
    """The shared Faker, seeded with `seed`, for exclusive use inside the `with` block."""
    global _faker
    with _lock:
        if _faker is None:
            _faker = Faker("en_US")
        _faker.seed_instance(seed)
        yield _faker
