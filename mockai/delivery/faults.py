"""Faults: what can go wrong, as data. `deliver` executes them; `delivery.chaos` decides them.

One vocabulary everywhere (a rule's or step's `faults:`, chaos rates, the `x-mockai-fault`
header): the transport faults of `FaultType`, the named errors of `mockai.wire.errors` (answered
instead of the reply), and the alias `disconnect` (the connection drops somewhere mid-answer, at a
chunk the seed picks).

Stream faults count chunks from 1 (`disconnect_after: 3` delivers three chunks, then drops the
connection). Connection faults replace the response entirely. Flags without a count take `true`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from mockai.delivery.timing import parse_duration
from mockai.hints import suggest
from mockai.wire import errors
from mockai.wire.outgoing import EventStream, Relay

if TYPE_CHECKING:
    import random

    from mockai.errors import ApiError
    from mockai.wire.outgoing import Outgoing


class FaultType(str, Enum):
    """Every transport fault the scenario format, chaos rates and `x-mockai-fault` accept."""

    MALFORMED_CHUNK = "malformed_chunk"  # chunk N is not JSON
    TRUNCATE_AFTER = "truncate_after"  # the stream ends after N chunks, no finish / [DONE]
    DISCONNECT_AFTER = "disconnect_after"  # the connection drops after N chunks
    ERROR_EVENT_AFTER = "error_event_after"  # an in-band {"error": ...} event after N chunks
    STALL_AFTER = "stall_after"  # after N chunks the socket stays open and silent
    DUPLICATE_CHUNK = "duplicate_chunk"  # chunk N is sent twice
    SPLIT_CHUNK = "split_chunk"  # chunk N is written in two halves, with a pause between
    RESET = "reset"  # the connection is closed (RST) before any response
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
# Faults that also break a JSON (non-streaming) answer: halfway through its body.
BODY_FAULTS = frozenset({FaultType.DISCONNECT_AFTER, FaultType.STALL_AFTER})
# Other names for faults: `disconnect` is the contract's chaos name for a mid-answer drop.
ALIASES = {"disconnect": FaultType.DISCONNECT_AFTER}
# A counted fault's chunk left to the seed (`disconnect`, or any counted fault drawn by chaos):
# resolved per request to a chunk in 1..SOMEWHERE_MAX.
SOMEWHERE = -1
SOMEWHERE_MAX = 8
# A body fault on a JSON answer, which is cut halfway whatever chunk was asked for (`for_answer`):
# the journal names it as the docs do (`disconnect`, `stall_after`), without a chunk number.
HALFWAY = -2
# How the journal names a fault at HALFWAY.
_HALFWAY_NAMES = {"disconnect_after": "disconnect", "stall_after": "stall_after"}


@dataclass(frozen=True, slots=True)
class ErrorFault:
    """A named error answered instead of the reply, with optional retry headers."""

    name: str
    retry_after: float | None = None  # seconds: `retry-after` / `retry-after-ms`
    should_retry: bool | None = None  # `x-should-retry`

    def build(self, model: str | None = None) -> ApiError:
        """The ApiError to answer with."""
        return errors.named(
            self.name, model=model, retry_after=self.retry_after, should_retry=self.should_retry
        )

    def __str__(self) -> str:
        text = self.name
        if self.retry_after is not None:
            text += f";retry_after={self.retry_after:g}s"
        if self.should_retry is not None:
            text += f";should_retry={str(self.should_retry).lower()}"
        return text


@dataclass(frozen=True, slots=True)
class Faults:
    """The faults to apply to one response; None / False means "not this one"."""

    error: ErrorFault | None = None
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
        if self is NO_FAULTS:  # nearly every request: no fault at all
            return False
        return any(getattr(self, name) not in (None, False) for name in _FIELDS)

    @property
    def unresolved(self) -> bool:
        """True when a counted fault's chunk is left to the seed (see `resolved`)."""
        if self is NO_FAULTS:
            return False
        return any(getattr(self, name) == SOMEWHERE for name in _COUNTED_NAMES)

    @property
    def no_response(self) -> bool:
        """True when the client gets no response at all (reset, hang, empty response)."""
        return self.reset or self.hang or self.empty_response

    @property
    def before_answer(self) -> bool:
        """True for faults that replace the answer: an error, no response, a gateway page."""
        return self.error is not None or self.no_response or self.non_json

    @property
    def cuts_body(self) -> bool:
        """True for faults that leave a JSON answer's body unfinished (dropped or stalled)."""
        return self.disconnect_after is not None or self.stall_after is not None

    def merged(self, other: Faults) -> Faults:
        """These faults with every fault set in `other` taking precedence."""
        if other is NO_FAULTS:
            return self
        if self is NO_FAULTS:
            return other
        changes = {
            name: getattr(other, name)
            for name in _FIELDS
            if getattr(other, name) not in (None, False)
        }
        return replace(self, **changes) if changes else self

    def without(self, names: Collection[str]) -> Faults:
        """These faults less the ones named (faults, aliases or named errors)."""
        if self is NO_FAULTS or not names:
            return self
        changes: dict[str, Any] = {
            kind.value: getattr(NO_FAULTS, kind.value)
            for name in names
            if (kind := _kind(name)) is not None
        }
        if self.error is not None and self.error.name in names:
            changes["error"] = None
        return replace(self, **changes) if changes else self

    def resolved(self, rng: random.Random) -> Faults:
        """Chunks left to the seed (SOMEWHERE) replaced by a chunk drawn from `rng`."""
        changes: dict[str, Any] = {
            kind.value: rng.randint(1, SOMEWHERE_MAX)
            for kind in sorted(COUNTED)
            if getattr(self, kind.value) == SOMEWHERE
        }
        return replace(self, **changes) if changes else self

    def for_answer(self, outgoing: Outgoing) -> Faults:
        """The faults as they happen to this answer: only those that apply to its kind (stream
        faults need a stream), at the chunk they really land on (N capped as `deliver` caps it),
        and a JSON body's cut at HALFWAY. The journal records these."""
        if self is NO_FAULTS:
            return self
        if isinstance(outgoing, EventStream):
            return self._capped(chunks(outgoing))
        keep = set() if isinstance(outgoing, Relay) else {k.value for k in BODY_FAULTS}
        changes: dict[str, Any] = {
            kind.value: None if kind.value not in keep else HALFWAY
            for kind in COUNTED
            if getattr(self, kind.value) is not None
        }
        return replace(self, **changes) if changes else self

    def _capped(self, body: int) -> Faults:
        """Counted faults capped at the stream's `body` chunks, as `deliver.plan_writes` caps
        them: a cut comes after the last of them at the latest, a chunk fault lands on it."""
        changes: dict[str, Any] = {}
        for name in _COUNTED_NAMES:
            number = getattr(self, name)
            if number is not None:
                last = body if name in _CUT_NAMES else max(body, 1)
                if number > last:
                    changes[name] = last
        return replace(self, **changes) if changes else self

    def names(self) -> list[str]:
        """The active faults as `name` or `name=N`, for the journal and logs."""
        if not self:
            return []  # the common case: nothing injected
        out = []
        for name in _FIELDS:
            value = getattr(self, name)
            if isinstance(value, ErrorFault):
                out.append(str(value))
            elif value is True:
                out.append(name)
            elif value == HALFWAY:
                out.append(_HALFWAY_NAMES[name])
            elif value not in (None, False):
                out.append(f"{name}={value}")
        return out


# The field names, once: `fields()` and enum `.value` are slow, and these run for every request.
_FIELDS = tuple(f.name for f in fields(Faults))
_COUNTED_NAMES = tuple(sorted(kind.value for kind in COUNTED))
# The counted faults that end a stream early (the others change one chunk).
_CUT_NAMES = frozenset({"truncate_after", "disconnect_after", "error_event_after", "stall_after"})
NO_FAULTS = Faults()


def chunks(stream: EventStream) -> int:
    """How many chunks of `stream` faults count, as `deliver.plan_writes` numbers them: not the
    preamble, SSE comments, nor the tail frames that complete the stream."""
    frames = stream.frames
    end = len(frames) - stream.tail
    return sum(1 for index in range(stream.preamble, end) if not frames[index].startswith(b":"))


def _kind(name: str) -> FaultType | None:
    """The transport fault `name` (or its alias) stands for; None for a named error."""
    if name in ALIASES:
        return ALIASES[name]
    try:
        return FaultType(name)
    except ValueError:
        return None


def fault_names() -> list[str]:
    """Every name the fault vocabulary accepts: faults, the alias, then named errors."""
    return [f.value for f in FaultType] + list(ALIASES) + list(errors.NAMED)


def parse_faults(value: Any) -> Faults:
    """Faults from a mapping such as `{disconnect_after: 3, reset: true}`.

    Counted faults take a chunk number >= 1 (`true` means 1); flags take `true`; a named error
    takes `true` or `{retry_after, should_retry}`; `disconnect: true` drops the connection at a
    chunk the seed picks. A ValueError says what is wrong, naming the valid faults.
    """
    if not isinstance(value, Mapping):
        raise ValueError("faults is a mapping such as {disconnect_after: 3} or {reset: true}")
    faults = NO_FAULTS
    for name, setting in value.items():
        faults = _merge_one(faults, fault(str(name), setting))
    return faults


def _merge_one(faults: Faults, more: Faults) -> Faults:
    if faults.error is not None and more.error is not None:
        raise ValueError(
            f"only one named error per answer: {faults.error.name} and {more.error.name}"
        )
    return faults.merged(more)


def fault(name: str, setting: Any = True) -> Faults:
    """One fault by name (a fault, an alias or a named error) with its setting; see parse_faults."""
    if name in errors.NAMED:
        return (
            Faults(error=_error_fault(name, setting)) if setting not in (False, None) else NO_FAULTS
        )
    if name in ALIASES:
        if setting is False or setting is None:  # (a step switching the rule's one off)
            return NO_FAULTS
        if setting is not True:
            raise ValueError(f"{name} is a flag: use `{name}: true`")
        somewhere: dict[str, Any] = {ALIASES[name].value: SOMEWHERE}
        return Faults(**somewhere)
    try:
        kind = FaultType(name)
    except ValueError:
        raise ValueError(
            f"'{name}' is not a fault or a named error"
            + suggest(name, fault_names(), noun="valid names")
        ) from None
    value: dict[str, Any] = {kind.value: _fault_setting(kind, setting)}
    return Faults(**value) if value[kind.value] not in (None, False) else NO_FAULTS


def _fault_setting(kind: FaultType, setting: Any) -> int | bool | None:
    if setting is False or setting is None:
        return None if kind in COUNTED else False
    if kind not in COUNTED:
        if setting is not True:
            raise ValueError(f"{kind.value} is a flag: use `{kind.value}: true`")
        return True
    if setting is True:
        return 1
    if isinstance(setting, str) and _whole(setting):
        setting = int(setting)
    if isinstance(setting, int) and not isinstance(setting, bool) and setting >= 1:
        return setting
    raise ValueError(f"{kind.value} takes a chunk number >= 1, got {setting!r}")


_ERROR_OPTIONS = frozenset({"retry_after", "should_retry"})


def _error_fault(name: str, setting: Any) -> ErrorFault:
    if setting is True:
        return ErrorFault(name)
    if not isinstance(setting, Mapping):
        raise ValueError(f"{name} takes `true` or {{retry_after, should_retry}}, got {setting!r}")
    for option in setting:
        if option not in _ERROR_OPTIONS:
            raise ValueError(
                f"{name}: unknown option {option!r}"
                + suggest(option, sorted(_ERROR_OPTIONS), noun="known")
            )
    retry_after = None
    if "retry_after" in setting:
        retry_after = parse_duration(setting["retry_after"])
        if retry_after <= 0:
            raise ValueError(f"{name}: retry_after must be more than 0")
    return ErrorFault(name, retry_after, _flag(setting.get("should_retry"), "should_retry"))


def _flag(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    words = {"true": True, "false": False}
    if isinstance(value, str) and value.lower() in words:
        return words[value.lower()]
    raise ValueError(f"{name} must be true or false, got {value!r}")


# --- the x-mockai-fault header ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requested:
    """One item of `x-mockai-fault`: faults, applied only to the first `attempts` attempts."""

    faults: Faults
    attempts: int | None = None  # None: every attempt
    # `count=requests`: the server numbers the attempts (identical requests while they fail),
    # not the SDK's `x-stainless-retry-count`, which a retry layer above the SDK (LangChain
    # JS's) leaves at 0 on every attempt.
    by_requests: bool = False


@dataclass(frozen=True, slots=True)
class FaultRequest:
    """A parsed `x-mockai-fault` header."""

    items: tuple[Requested, ...] = field(default_factory=tuple)

    @property
    def counts_attempts(self) -> bool:
        """True when some item applies only to the first attempts."""
        return any(item.attempts is not None for item in self.items)

    @property
    def counts_requests(self) -> bool:
        """True when the server numbers the attempts (`count=requests`), whatever the client
        says its retry count is."""
        return any(item.by_requests for item in self.items)

    def for_attempt(self, attempt: int) -> Faults:
        """The faults for attempt number `attempt` (0 for the first)."""
        faults = NO_FAULTS
        for item in self.items:
            if item.attempts is None or attempt < item.attempts:
                faults = _merge_one(faults, item.faults)
        return faults


def parse_fault_header(text: str) -> FaultRequest:
    """`rate_limit;retry_after=300ms;attempts=2, disconnect_after=3` -> FaultRequest.

    Items are separated by commas; each is a name, with `=N` for a chunk number, and `;`
    parameters: `attempts=N` (only the first N attempts; with `count=requests` numbered by the
    server rather than the SDK's retry count), and for named errors `retry_after=` (a duration)
    and `should_retry=true|false`. ValueError says what is wrong.
    """
    items = []
    given: dict[str, str] = {}  # each fault's name -> how it was first written
    for part in text.split(","):
        if part.strip():
            items.append(_requested(part.strip()))
            _once(given, part.strip())
    if not items:
        raise ValueError("empty; name a fault or a named error, e.g. `rate_limit`")
    request = FaultRequest(tuple(items))
    request.for_attempt(0)  # rejects two named errors for the same attempt
    return request


def _once(given: dict[str, str], part: str) -> None:
    """Note the fault `part` names; ValueError if an earlier item named it (else the later one
    would win, silently), in `x-mockai-stream`'s words."""
    head = part.split(";")[0].strip()
    name = head.partition("=")[0].strip()
    kind = _kind(name)
    key = kind.value if kind is not None else name  # (`disconnect` is `disconnect_after`)
    if key in given:
        raise ValueError(f"{key!r} is given twice, {given[key]} and {head}; give it once")
    given[key] = head


def _whole(text: str) -> bool:
    """Whether `text` is a whole number in ASCII digits: `str.isdigit` (and `int()`) also take
    other scripts' digits (Arabic-Indic, fullwidth) and superscripts, which no client means."""
    return text.isascii() and text.isdigit()


def _requested(part: str) -> Requested:
    head, *params = (piece.strip() for piece in part.split(";"))
    name, sep, count = head.partition("=")
    name = name.strip()
    options: dict[str, str] = {}
    for param in params:
        key, has_value, value = param.partition("=")
        key, value = key.strip(), value.strip()
        if not has_value or not key or not value:
            raise ValueError(f"{param!r} in {part!r} is not NAME=VALUE")
        if key in options:  # (else the later one won, silently)
            raise ValueError(
                f"{key!r} is given twice, {key}={options[key]} and {key}={value}; give it once"
            )
        options[key] = value
    counting = ["attempts", "count"]
    known = [*counting, *sorted(_ERROR_OPTIONS)] if name in errors.NAMED else counting
    for option in options:
        if option not in known:
            raise ValueError(
                f"{part!r}: unknown parameter {option!r}" + suggest(option, known, noun="known")
            )
    attempts = _attempts(options.pop("attempts", None), part)
    by_requests = _counted_by(options.pop("count", None), attempts, part)
    setting: Any = count.strip() if sep else True
    if isinstance(setting, str) and setting.lower() in ("true", "false"):
        setting = setting.lower() == "true"  # `reset=true` spells the flag as in YAML
    if name in errors.NAMED:
        if sep:
            raise ValueError(f"{name} is a named error and takes no `={count}`")
        setting = options or True
    return Requested(fault(name, setting), attempts, by_requests)


def _counted_by(value: str | None, attempts: int | None, part: str) -> bool:
    """`count=requests` (the server numbers the attempts) or `count=retries` (the SDK's retry
    count, when the client sends one: the default)."""
    if value is None:
        return False
    if attempts is None:
        raise ValueError(f"{part!r}: count= says how attempts are counted; add attempts=N")
    if value not in ("requests", "retries"):
        raise ValueError(f"{part!r}: count must be requests or retries, got {value!r}")
    return value == "requests"


def _attempts(value: str | None, part: str) -> int | None:
    if value is None:
        return None
    if not _whole(value) or int(value) < 1:
        raise ValueError(f"{part!r}: attempts must be a whole number >= 1, got {value!r}")
    return int(value)


# --- chaos rates ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChaosRates:
    """Random faults over all traffic: each request gets at most one, drawn with its own RNG.

    `rates` keeps the given order; a request draws u in [0, 1) and gets the first fault whose
    cumulative rate exceeds u, so `rate_limit=0.1` means 10% of requests get a 429.
    """

    rates: tuple[tuple[str, float], ...] = ()

    @classmethod
    def parse(cls, rates: Mapping[str, Any]) -> ChaosRates:
        """Validated rates; ValueError names a bad fault or rate."""
        checked = []
        for name, rate in rates.items():
            fault(str(name))  # validates the name
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                raise ValueError(f"{name}: a rate is a number between 0 and 1, got {rate!r}")
            checked.append((str(name), float(rate)))
        total = sum(rate for _, rate in checked)
        if total > 1 + 1e-9:
            raise ValueError(f"the rates add up to {total:g}; at most one fault per request (<= 1)")
        return cls(tuple(checked))

    def __bool__(self) -> bool:
        return any(rate > 0 for _, rate in self.rates)

    def draw(self, rng: random.Random) -> Faults:
        """At most one fault, chosen by one draw from `rng` (counted faults: a seeded chunk)."""
        if not self:
            return NO_FAULTS
        u = rng.random()
        for name, rate in self.rates:
            if u < rate:
                drawn = fault(name)
                return _somewhere(drawn) if name not in errors.NAMED else drawn
            u -= rate
        return NO_FAULTS


def _somewhere(faults: Faults) -> Faults:
    """Counted faults drawn by chaos happen at a chunk the seed picks, not always at chunk 1."""
    changes: dict[str, Any] = {
        kind.value: SOMEWHERE for kind in COUNTED if getattr(faults, kind.value)
    }
    return replace(faults, **changes) if changes else faults
