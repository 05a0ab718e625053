"""Transport faults: what can go wrong on the wire, as data that `deliver` executes.

Stream faults count chunks from 1 (`disconnect_after: 3` delivers three chunks, then drops the
connection). Connection faults replace the response entirely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mockai.exchange import Exchange
    from mockai.reply import Plan


class FaultType(str, Enum):
    """Every fault name the scenario format, chaos rates and `x-mockai-fault` accept."""

    MALFORMED_CHUNK = "malformed_chunk"  # chunk N is not JSON
    TRUNCATE_AFTER = "truncate_after"  # the stream ends after N chunks, no finish / [DONE]
    DISCONNECT_AFTER = "disconnect_after"  # the connection drops after N chunks
    ERROR_EVENT_AFTER = "error_event_after"  # an in-band {"error": ...} event after N chunks
    STALL_AFTER = "stall_after"  # after N chunks the socket stays open and silent
    DUPLICATE_CHUNK = "duplicate_chunk"  # chunk N is sent twice
    SPLIT_CHUNK = "split_chunk"  # chunk N is written in two halves, with a pause between
    RESET = "reset"  # the connection is closed before any response
    HANG = "hang"  # the headers never come
    EMPTY_RESPONSE = "empty_response"  # the connection closes without a byte
    NON_JSON = "non_json"  # an HTML 502 page, as gateways send

    def __str__(self) -> str:
        return self.value


# Faults that take a chunk number; the others are flags.
COUNTED = frozenset(
    {
        FaultType.MALFORMED_CHUNK,
        FaultType.TRUNCATE_AFTER,
        FaultType.DISCONNECT_AFTER,
        FaultType.ERROR_EVENT_AFTER,
        FaultType.STALL_AFTER,
        FaultType.DUPLICATE_CHUNK,
        FaultType.SPLIT_CHUNK,
    }
)


@dataclass(frozen=True, slots=True)
class Faults:
    """The faults to apply to one response; None / False means "not this one"."""

    malformed_chunk: int | None = None
    truncate_after: int | None = None
    disconnect_after: int | None = None
    error_event_after: int | None = None
    stall_after: int | None = None
    duplicate_chunk: int | None = None
    split_chunk: int | None = None
    reset: bool = False
    hang: bool = False
    empty_response: bool = False
    non_json: bool = False

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) not in (None, False) for f in fields(self))

    def merged(self, other: Faults) -> Faults:
        """These faults with every fault set in `other` taking precedence."""
        changes = {
            f.name: getattr(other, f.name)
            for f in fields(other)
            if getattr(other, f.name) not in (None, False)
        }
        return replace(self, **changes) if changes else self

    def names(self) -> list[str]:
        """The active faults as `name` or `name=N`, for the journal and logs."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is True:
                out.append(f.name)
            elif value not in (None, False):
                out.append(f"{f.name}={value}")
        return out


NO_FAULTS = Faults()


def parse_faults(value: Any) -> Faults:
    """Faults from a mapping such as `{disconnect_after: 3, reset: true}`.

    Counted faults take a chunk number >= 1 (`true` means 1); flags take `true`. A ValueError
    says what is wrong, naming the valid faults.
    """
    if not isinstance(value, Mapping):
        raise ValueError("faults is a mapping such as {disconnect_after: 3} or {reset: true}")
    changes: dict[str, Any] = {}
    for name, setting in value.items():
        try:
            kind = FaultType(name)
        except ValueError:
            valid = ", ".join(f.value for f in FaultType)
            raise ValueError(f"'{name}' is not a fault. Valid faults are: {valid}") from None
        changes[kind.value] = _fault_setting(kind, setting)
    return Faults(**changes)


def _fault_setting(kind: FaultType, setting: Any) -> int | bool | None:
    if setting is False or setting is None:
        return None if kind in COUNTED else False
    if kind not in COUNTED:
        if setting is not True:
            raise ValueError(f"{kind.value} is a flag: use `{kind.value}: true`")
        return True
    if setting is True:
        return 1
    if isinstance(setting, int) and setting >= 1:
        return setting
    raise ValueError(f"{kind.value} takes a chunk number >= 1, got {setting!r}")


class FaultPlanner:
    """Adds faults and timing to a Plan: per-request headers, global chaos rates, defaults.

    The pipeline calls `apply` on every plan after the sources decided what to answer.
    """

    def apply(self, plan: Plan, exchange: Exchange, headers: Mapping[str, str]) -> Plan:
        """`plan` with the faults and timing that apply to this request."""
        return plan
