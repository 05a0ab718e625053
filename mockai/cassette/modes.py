"""Record modes, with vcrpy's meanings (https://vcrpy.readthedocs.io, "Record Modes").

- `none`: replay only; a request the cassette does not hold is an error (nothing is recorded).
- `once`: record into a cassette that does not exist yet; once it exists, behave like `none`.
- `new_episodes`: replay what the cassette holds, record what it does not (appended).
- `all`: send everything to the upstream and record it; re-recorded interactions replace the ones
  they match, the others are kept, and the previous file is kept as `<cassette>.bak`.
"""

from __future__ import annotations

from enum import Enum


class RecordMode(str, Enum):
    """When a cassette is recorded into (vcrpy's modes, without its undocumented `any`)."""

    NONE = "none"
    ONCE = "once"
    NEW_EPISODES = "new_episodes"
    ALL = "all"

    def __str__(self) -> str:
        return self.value


def validate_record_mode(value: RecordMode | str) -> RecordMode:
    """The RecordMode for `value`, or a ValueError naming the valid modes."""
    try:
        return RecordMode(value)
    except ValueError:
        valid = ", ".join(mode.value for mode in RecordMode)
        raise ValueError(
            f"{value!r} is not a valid record_mode. Valid modes are: {valid}."
        ) from None
