"""Faker's clock, stopped: its date providers read `created`'s instant, not the machine's clock.

Faker's date providers read the wall clock (`date_time()` is "between 1970 and now", and
`date_this_month()` follows the machine's local time zone), so a seeded template would still
change from run to run. mockai's Faker (`prose._shared`) gets private copies of the providers
that read the clock, importing a `datetime` whose clock stopped at 2025-01-01T00:00:00Z, with UTC
as their local zone; the `datetime` module itself, and any other Faker in the process, are left
alone. (Not compiled by mypyc, which cannot subclass `datetime`; loaded with Faker.)
"""

from __future__ import annotations

import builtins
import datetime as dt
import functools
import importlib
import importlib.util
import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mockai.config import DEFAULT_CREATED

if TYPE_CHECKING:
    from faker import Faker


# The Faker modules (of the en_US locale) that read the clock: `datetime.now()`, `date.today()`.
_CLOCKED = ("faker.providers.date_time", "faker.providers.passport.en_US")
_NOW = dt.datetime.fromtimestamp(DEFAULT_CREATED, dt.timezone.utc)


class _Stopped(type):
    """The stopped clock's classes pass for the real ones: `isinstance(value, datetime)` holds
    for a datetime a template passes back (`faker.date_between(faker.date_time())`)."""

    def __instancecheck__(cls, instance: object) -> bool:
        return isinstance(instance, cls.__mro__[1])


class _StoppedDateTime(dt.datetime, metaclass=_Stopped):
    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
        # (no zone: the local time, and the stopped clock's local zone is UTC)
        return _NOW.replace(tzinfo=None) if tz is None else _NOW.astimezone(tz)

    @classmethod
    def today(cls) -> dt.datetime:  # type: ignore[override]
        return cls.now()

    def __repr__(self) -> str:  # (as a datetime's, printed in a list or a set a template shows)
        shown = dt.datetime.__repr__(self)
        return "datetime.datetime" + shown[shown.index("(") :]


class _StoppedDate(dt.date, metaclass=_Stopped):
    @classmethod
    def today(cls) -> dt.date:  # type: ignore[override]
        return _NOW.date()

    def __repr__(self) -> str:
        shown = dt.date.__repr__(self)
        return "datetime.date" + shown[shown.index("(") :]


def _stopped_datetime_module() -> types.ModuleType:
    """A `datetime` module whose clock stopped at `created`'s instant."""
    module = types.ModuleType("datetime")
    module.__dict__.update(vars(dt))
    module.datetime = _StoppedDateTime  # type: ignore[attr-defined]
    module.date = _StoppedDate  # type: ignore[attr-defined]
    return module


@functools.cache
def _frozen_module(name: str) -> types.ModuleType:
    """A private copy of the Faker module `name` that imports the stopped `datetime` (at its top
    and inside its functions), with UTC as its local time zone. Not in sys.modules: the real
    module, and every other Faker, still read the real clock."""
    real = importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(
        name, real.__file__, submodule_search_locations=getattr(real, "__path__", None)
    )
    assert spec is not None and spec.loader is not None  # (a module loaded from its file)
    stopped = _stopped_datetime_module()
    real_import = builtins.__import__

    def import_(
        what: str,
        globals: Mapping[str, Any] | None = None,
        locals: Mapping[str, Any] | None = None,
        fromlist: Sequence[str] = (),
        level: int = 0,
    ) -> types.ModuleType:
        if what == "datetime" and level == 0:
            return stopped
        return real_import(what, globals, locals, fromlist, level)

    module = importlib.util.module_from_spec(spec)
    module.__dict__["__builtins__"] = {**vars(builtins), "__import__": import_}
    spec.loader.exec_module(module)
    if hasattr(module, "_get_local_timezone"):  # (date_time's: the machine's zone otherwise)
        module.__dict__["_get_local_timezone"] = lambda: dt.timezone.utc
    return module


def stop_clock(faker: Faker) -> None:
    """Give `faker` the providers of `_CLOCKED` reading the stopped clock (the later provider
    of a method wins, the date providers' other users call them through the generator)."""
    for name in _CLOCKED:
        try:
            provider = _frozen_module(name).Provider
        except (ImportError, OSError, AttributeError):  # (a Faker laid out otherwise: its
            continue  # dates then read the real clock, as before, rather than fail)
        for generator in faker.factories:
            generator.add_provider(provider)
