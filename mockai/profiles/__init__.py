"""Provider profiles: how each OpenAI-compatible provider differs from OpenAI, as data.

`PROFILES` maps a name (`--profile NAME`, `match: {provider: NAME}`) to its `Profile`, one
module per provider. Facts come from shared/reference/providers.md; a profile encodes only what
that reference confirms, and names the date or version it models (`Profile.as_of`). Where each
is served (its paths and endpoints, what routing needs) is `places.PLACES`; a profile's module
is imported the first time it is asked for, so a server loads only the profiles it uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from mockai.profiles.base import Profile
from mockai.profiles.places import PLACES

DEFAULT = "openai"


class _Profiles(Mapping[str, Profile]):
    """Every profile by name (in `PLACES` order), each module imported on first use."""

    def __init__(self) -> None:
        self._loaded: dict[str, Profile] = {}

    def __getitem__(self, name: str) -> Profile:
        profile = self._loaded.get(name)
        if profile is None:
            if name not in PLACES:
                raise KeyError(name)
            # (thread-safe: the import system locks the module; every thread gets its PROFILE)
            module = importlib.import_module(f"{__name__}.{name}")
            profile = self._loaded[name] = module.PROFILE
        return profile

    def __contains__(self, name: object) -> bool:
        return name in PLACES

    def __iter__(self) -> Iterator[str]:
        return iter(PLACES)

    def __len__(self) -> int:
        return len(PLACES)

    def __repr__(self) -> str:
        return f"<provider profiles: {', '.join(PLACES)}>"


PROFILES: Mapping[str, Profile] = _Profiles()


def get(name: str) -> Profile:
    """The profile called `name`; KeyError names the valid ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(
            f"{name!r} is not a provider profile; valid: {', '.join(PROFILES)}"
        ) from None


__all__ = ["DEFAULT", "PROFILES", "Profile", "get"]
