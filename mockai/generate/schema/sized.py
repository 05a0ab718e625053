"""Strings matching a `pattern` whose length is within `minLength` / `maxLength`.

rstr expands a pattern with no idea of the length bounds: `^\\d+$` gives 1-9 digits, so a card
number (`minLength: 16`) never comes out, and padding with words breaks the pattern. Here the
pattern is compiled once into a plan that knows, for every part, how long what it matches can be;
a length is chosen first, then spread over the parts (the extra repetitions of `+`, `*`, `{m,}`
shared among them), so that the string has it.

A part is *dense* if it can match a string of every length between its shortest and longest
(`\\d+`, `[a-z]{2,5}`, `(ab|c)+`); then any length in that range is reached, shared out at
random. Others (`(ab)+`: even lengths; `(a|bcd)`: 1 or 3) know the exact set of lengths they can
match (up to `_EXACT`, as the bits of an int) and share a length only in ways that add up; past
`_EXACT` they aim for it and the caller checks. Lookarounds are left out (the caller checks);
patterns with parts this cannot build (backreferences, conditionals) give None, and the caller
falls back to rstr.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import string
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from mockai.regexes import sre_compile, sre_constants, sre_parse

if TYPE_CHECKING:
    from mockai.generate.schema.generator import Generator

_SPAN = 8  # with no maxLength: at most this much beyond the shortest length allowed
_EXACT = 2048  # lengths up to this are planned exactly for parts that are not dense
_SCAN = 4096  # past _EXACT: lengths looked through for one a part that is not dense can have


class _Unsupported(Exception):
    """A regex construct the plan cannot build (the caller falls back to rstr)."""


class _Part:
    """A piece of a pattern: the shortest and longest (None: unbounded) string it matches.

    `reach(cap)` is the set of lengths (up to `cap`) it can match, as the bits of an int: exact,
    and cached per part (parts are cached with their pattern) for a few rounded caps.
    """

    __slots__ = ("_reach", "dense", "high", "low")

    def __init__(self, low: int, high: int | None, dense: bool) -> None:
        self.low, self.high, self.dense = low, high, dense
        self._reach: dict[int, int] = {}

    def holds(self, length: int) -> bool:
        """Whether `length` is within the part's range."""
        return self.low <= length and (self.high is None or length <= self.high)

    def fits(self, length: int) -> bool:
        """Whether the part can match a string of `length` (past _EXACT: if it roughly can)."""
        if self.dense:
            return self.holds(length)
        if length <= _EXACT:
            return bool(self.reach(length) >> length & 1)
        return self.roughly_fits(length)

    def roughly_fits(self, length: int) -> bool:
        return self.holds(length)

    def reach(self, cap: int) -> int:
        if self.dense:
            return _span(self.low, self.high, cap)
        size = max(64, 1 << (cap - 1).bit_length())  # (a few sizes, however many lengths)
        found = self._reach.get(size)
        if found is None:
            found = self._reach[size] = self.lengths(size)
        return found & ((2 << cap) - 1)

    def lengths(self, cap: int) -> int:
        """`reach(cap)`, computed (parts that are not dense say how)."""
        raise NotImplementedError


class _Chars(_Part):
    """One character out of `pool` (`wide`: all it may hold, before `_pool` narrowed it)."""

    __slots__ = ("pool", "wide")

    def __init__(self, pool: str, wide: str) -> None:
        super().__init__(1, 1, True)
        self.pool, self.wide = pool, wide


class _Seq(_Part):
    __slots__ = ("items",)

    def __init__(self, items: tuple[_Part, ...]) -> None:
        high = None if any(item.high is None for item in items) else sum(i.high or 0 for i in items)
        super().__init__(sum(item.low for item in items), high, all(i.dense for i in items))
        self.items = items

    def lengths(self, cap: int) -> int:
        reach = 1
        for item in self.items:
            reach = _sumset(reach, item.reach(cap), cap)
        return reach


class _Alt(_Part):
    __slots__ = ("branches",)

    def __init__(self, branches: tuple[_Part, ...]) -> None:
        highs = [branch.high for branch in branches]
        high = None if None in highs else max(h or 0 for h in highs)
        super().__init__(min(b.low for b in branches), high, _covers(branches))
        self.branches = branches

    def roughly_fits(self, length: int) -> bool:
        return any(branch.fits(length) for branch in self.branches)

    def lengths(self, cap: int) -> int:
        reach = 0
        for branch in self.branches:
            reach |= branch.reach(cap)
        return reach


class _Repeat(_Part):
    __slots__ = ("body", "least", "most")

    def __init__(self, body: _Part, least: int, most: int | None) -> None:
        a, b = body.low, body.high
        if most == 0 or b == 0:
            high: int | None = 0
        elif most is None or b is None:
            high = None
        else:
            high = most * b
        # n copies of a dense body match every length in [n*a, n*b]; these ranges touch from one
        # count to the next iff n*(b - a) >= a - 1, which holds for all n once it holds for least.
        if not body.dense:
            dense = False
        elif most == least or high == 0:
            dense = True
        elif b is None:
            dense = least > 0 or a <= 1  # [0, 0] then [a, inf): a gap unless a <= 1
        else:
            dense = least * (b - a) >= a - 1
        super().__init__(least * a, high, dense)
        self.body, self.least, self.most = body, least, most

    def counts(self, length: int) -> tuple[int, int]:
        """The range of repeat counts whose total span holds `length` (empty if low > high)."""
        a, b = self.body.low, self.body.high
        low = self.least
        if b is not None:
            if b == 0:
                return (low, low) if length == 0 else (1, 0)
            low = max(low, -(-length // b))
        elif length > 0:
            low = max(low, 1)
        high = length // a if a > 0 else max(low, length)
        if self.most is not None:
            high = min(high, self.most)
        return low, high

    def roughly_fits(self, length: int) -> bool:
        if not self.body.dense:
            return self.holds(length)
        low, high = self.counts(length)
        return low <= high

    def layers(self, cap: int) -> tuple[list[int], bool]:
        """The lengths (up to `cap`) that exactly n copies match, for n = 0, 1, ... as far as
        they bring new lengths; and whether the last one holds for every count past it too.

        Counts past the last add no length a smaller count lacks (or, stable, the same ones:
        `(a?){50}` stops growing at `cap`), so looking no further loses no match.
        """
        body = self.body.reach(cap)
        current, layers = 1, [1]
        seen = 1 if self.least == 0 else 0  # what counts from `least` on have matched
        while self.most is None or len(layers) <= self.most:
            current = _sumset(current, body, cap)
            if current == layers[-1]:
                return layers, True
            if len(layers) > self.least:
                if current & ~seen == 0:
                    break
                seen |= current
            elif len(layers) == self.least:
                seen = current
            layers.append(current)
        return layers, False

    def lengths(self, cap: int) -> int:
        layers, stable = self.layers(cap)
        reach = layers[-1] if stable else 0
        for layer in layers[self.least :]:
            reach |= layer
        return reach


def _span(low: int, high: int | None, cap: int) -> int:
    """The lengths low..high (up to `cap`) as bits."""
    top = cap if high is None else min(high, cap)
    return 0 if top < low else ((1 << (top - low + 1)) - 1) << low


def _sumset(a: int, b: int, cap: int) -> int:
    """The lengths x + y for x in `a` and y in `b` (up to `cap`), taking `b` a run of bits at a
    time: `\\w+` is one run, however long."""
    out, shift = 0, 0
    while b and shift <= cap:
        zeros = (b & -b).bit_length() - 1
        b >>= zeros
        shift += zeros
        ones = (~b & (b + 1)).bit_length() - 1
        smeared, done = a, 1  # a | a << 1 | ... | a << (ones - 1), by doubling
        while done < ones:
            step = min(done, ones - done)
            smeared |= smeared << step
            done += step
        out |= smeared << shift
        b >>= ones
        shift += ones
    return out & ((2 << cap) - 1)


def _covers(branches: tuple[_Part, ...]) -> bool:
    """Whether dense `branches` together match every length from the shortest to the longest."""
    if not all(branch.dense for branch in branches):
        return False
    reach = -1.0
    for branch in sorted(branches, key=lambda part: part.low):
        if reach >= 0 and branch.low > reach + 1:
            return False
        reach = math.inf if branch.high is None else max(reach, branch.high)
    return True


# --- compiling a pattern into a plan --------------------------------------------------------------

_WHITESPACE = "\t\n\r\x0b\x0c"
_PRINTABLE = "".join(char for char in string.printable if char not in _WHITESPACE)
_ALNUM = frozenset(string.ascii_letters + string.digits)


@lru_cache(maxsize=512)
def plan(pattern: str) -> _Part | None:
    """`pattern` as parts that know their lengths, or None if it has a part this cannot build.

    Cached: a schema's patterns are compiled once, not per request.
    """
    try:
        parsed = sre_parse.parse(pattern)
        return _sequence(parsed, parsed.state, 0)
    except (_Unsupported, re.error, OverflowError, RecursionError):
        return None


def _sequence(states: Any, state: Any, flags: int) -> _Part:
    parts = (_part(op, arg, state, flags) for op, arg in states)
    items = [part for part in parts if part is not None]
    return items[0] if len(items) == 1 else _Seq(tuple(items))


def _part(op: Any, arg: Any, state: Any, flags: int) -> _Part | None:
    """The plan of one parsed regex item; `flags` those of the groups around it (`(?i:...)`)."""
    if op in (sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT):
        return None  # zero width: anchors hold at the ends; lookarounds are left to the check
    if op in _CHARS:
        wide = _wide_pool(op, arg, state, flags)
        return _Chars(_narrowed(wide), wide)
    if op == sre_constants.BRANCH:
        return _Alt(tuple(_sequence(branch, state, flags) for branch in arg[1]))
    if op == sre_constants.SUBPATTERN:
        return _sequence(arg[-1], state, flags | arg[1])
    if op == _ATOMIC_GROUP:
        return _sequence(arg, state, flags)
    if op in _REPEATS:
        least, most, body = arg
        most = None if most == sre_constants.MAXREPEAT else most
        return _Repeat(_sequence(body, state, flags), least, most)
    raise _Unsupported(str(op))  # backreferences, conditionals


_CHARS = (sre_constants.LITERAL, sre_constants.NOT_LITERAL, sre_constants.IN, sre_constants.ANY)
_ATOMIC_GROUP = getattr(sre_constants, "ATOMIC_GROUP", None)  # (3.11+, as possessive repeats)


_REPEATS = tuple(
    op
    for op in (
        sre_constants.MAX_REPEAT,
        sre_constants.MIN_REPEAT,
        getattr(sre_constants, "POSSESSIVE_REPEAT", None),
    )
    if op is not None
)


def _wide_pool(op: Any, arg: Any, state: Any, flags: int) -> str:
    """The characters one position may hold, as Python's `re` matches them (flags included).

    From printable ASCII (without tabs and newlines unless nothing else fits), plus the class's
    own characters for non-ASCII ones (`[à-ÿ]`).
    """
    single = sre_compile.compile(sre_parse.SubPattern(state, [(op, arg)]), flags)
    own = "".join(dict.fromkeys(_own_chars(op, arg)))
    for candidates in (_PRINTABLE, _WHITESPACE, own):
        pool = "".join(char for char in candidates if single.fullmatch(char))
        if pool:
            return pool
    raise _Unsupported("a character class nothing printable matches")


def _narrowed(pool: str) -> str:
    """A class as broad as `.` or `\\S` narrowed to letters and digits: `sk-` then 40 of them
    reads as a key, not as line noise. (A lookahead may still ask for one of the others.)"""
    return "".join(char for char in pool if char in _ALNUM) if set(pool) >= _ALNUM else pool


def _own_chars(op: Any, arg: Any) -> list[str]:
    """The characters a literal or class names itself (the first few of each range)."""
    if op == sre_constants.LITERAL:
        return [chr(arg)]
    if op != sre_constants.IN:
        return []
    chars = []
    for item_op, item_arg in arg:
        if item_op == sre_constants.LITERAL:
            chars.append(chr(item_arg))
        elif item_op == sre_constants.RANGE:
            first, last = item_arg
            chars += [chr(code) for code in range(first, min(last, first + 63) + 1)]
    return chars


@lru_cache(maxsize=512)
def required_classes(pattern: str) -> tuple[str, ...]:
    """The characters each leading lookahead `(?=.*X)` asks for (X a class or a literal), one
    pool per lookahead: a match holds at least one of each.

    The strong-password pattern has four; a string of random characters has all four by luck
    only, so `expand_sized` puts one of each in. Lookaheads after text the pattern consumes
    constrain only what follows, and other shapes of lookahead are left to the caller's check.
    """
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, OverflowError, RecursionError):
        return ()
    pools: list[str] = []
    for op, arg in parsed:
        if op == sre_constants.AT:
            continue
        if op != sre_constants.ASSERT:
            break
        wanted = _anywhere(arg)
        if wanted is not None:
            with contextlib.suppress(_Unsupported):  # (left to the caller's check)
                pools.append(_wide_pool(*wanted, parsed.state, 0))
    return tuple(pools)


def _anywhere(arg: Any) -> tuple[Any, Any] | None:
    """`(op, arg)` of X in a lookahead `(?=.*X)` / `(?=.*?X)`, else None."""
    direction, body = arg
    items = list(body)
    if direction != 1 or len(items) != 2 or items[1][0] not in _CHARS:
        return None
    (repeat, (least, most, inner)), wanted = items
    if repeat not in _REPEATS or least != 0 or most != sre_constants.MAXREPEAT:
        return None
    return wanted if list(inner) == [(sre_constants.ANY, None)] else None


# --- building a string of a chosen length ---------------------------------------------------------


class _Built:
    """The string being built, in chunks, with the pool each chunk's characters came from."""

    __slots__ = ("chunks", "runs")

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.runs: list[tuple[int, str]] = []

    def add(self, chars: str, pool: str) -> None:
        self.chunks.append(chars)
        self.runs.append((len(chars), pool))


def expand_sized(gen: Generator, pattern: str, low: int, high: int | None) -> str | None:
    """A string matching `pattern` (but for lookarounds; the caller checks) with a length in
    [low, high]; None if the pattern has parts this cannot build or no length in range suits it.
    """
    part = plan(pattern)
    if part is None:
        return None
    room = gen.room()
    least = max(low, part.low)
    most = _least_of(high, part.high, room)
    if most is not None and most < least:
        return None  # no length both allowed and matched (or within the answer)
    rng = gen.rng
    top = least + _SPAN if most is None else min(most, least + _SPAN)
    length = _length(rng, part, least, top, most)
    if length is None:
        return None
    out = _Built()
    _build(rng, part, length, out)
    required = required_classes(pattern)
    return _with_required(rng, out, required) if required else "".join(out.chunks)


def _with_required(rng: random.Random, built: _Built, required: tuple[str, ...]) -> str:
    """`built` with a character of each `required` pool, where one is missing, put in at a
    random position whose own pool allows it (and that no other requirement holds)."""
    chars = list("".join(built.chunks))
    pools = [pool for count, pool in built.runs for _ in range(count)]
    held: set[int] = set()
    missing = []
    for need in required:
        present = next((i for i, c in enumerate(chars) if c in need and i not in held), None)
        if present is None:
            missing.append(need)
        else:
            held.add(present)
    for need in missing:
        allowed = {pool: [c for c in pool if c in need] for pool in set(pools)}
        spots = [i for i, pool in enumerate(pools) if allowed[pool] and i not in held]
        if spots:  # (if not, the caller's check refuses the string)
            spot = rng.choice(spots)
            chars[spot] = rng.choice(allowed[pools[spot]])
            held.add(spot)
    return "".join(chars)


def _least_of(*bounds: int | None) -> int | None:
    known = [bound for bound in bounds if bound is not None]
    return min(known) if known else None


def _length(rng: random.Random, part: _Part, least: int, top: int, most: int | None) -> int | None:
    """A length in [least, top] that `part` matches, else the shortest one up to `most`."""
    if part.dense:
        return rng.randint(least, top)
    if least > _EXACT:
        length = rng.randint(least, top)
        return length if part.fits(length) else _fitting(part, least, top, length)
    reach = part.reach(top) >> least
    if not reach:  # none near the least: further on (`(?:[a-z]{10})+` with minLength 11)
        reach = part.reach(_EXACT if most is None else min(most, _EXACT)) >> least
        if not reach:
            return None
        return least + (reach & -reach).bit_length() - 1
    return least + _pick_bit(rng, reach)


def _pick_bit(rng: random.Random, bits: int) -> int:
    """The position of one of `bits`' set bits, at random (a binary search on bit counts)."""
    rank = rng.randrange(bits.bit_count())
    low, high = 0, bits.bit_length() - 1
    while low < high:
        middle = (low + high) // 2
        if (bits & ((2 << middle) - 1)).bit_count() > rank:
            high = middle
        else:
            low = middle + 1
    return low


def _fitting(part: _Part, low: int, high: int, length: int) -> int:
    """A length in [low, high] that `part` (roughly) fits, nearest `length` (else `length`)."""
    for offset in range(1, _SCAN):
        for candidate in (length + offset, length - offset):
            if low <= candidate <= high and part.fits(candidate):
                return candidate
        if length - offset < low and length + offset > high:
            break
    return length


def _build(rng: random.Random, part: _Part, length: int, out: _Built) -> int:
    """Append a string `part` matches, of `length` if it can; return the length appended.

    Dense parts share the length out at random (every share works); others, up to _EXACT, only
    in shares that their parts can match, and past it as near as they can.
    """
    if isinstance(part, _Chars):
        out.add(part.pool[rng.randrange(len(part.pool))], part.wide)
        return 1
    exact = not part.dense and length <= _EXACT and part.fits(length)
    if isinstance(part, _Alt):
        fitting = [b for b in part.branches if b.fits(length)] or [
            b for b in part.branches if b.holds(length)
        ]
        branch = (
            rng.choice(fitting)
            if fitting
            else min(part.branches, key=lambda b: abs(_clamp(b, length) - length))
        )
        return _build(rng, branch, _clamp(branch, length), out)
    if isinstance(part, _Seq):
        if exact:
            return _share_exactly(rng, part.items, _suffixes(part.items, length), length, out)
        return _share(rng, part.items, length, out)
    assert isinstance(part, _Repeat)
    body = part.body
    if exact:
        layers, _ = part.layers(length)
        last = len(layers) - 1  # (stable or not, the counts up to it are enough, see layers)
        counts = [n for n in range(part.least, last + 1) if layers[n] >> length & 1]
        count = rng.choice(counts) if counts else max(part.least, last)
        after = [layers[min(n, last)] for n in range(count - 1, -1, -1)]  # copies still to come
        return _share_exactly(rng, (body,) * count, after, length, out)
    low, high = part.counts(length)
    if low <= high:
        count = rng.randint(low, high)
    else:  # no count reaches `length`: the nearest one
        count = max(round(length / max(body.low, 1)), part.least)
        count = count if part.most is None else min(count, part.most)
    if isinstance(body, _Chars):  # the common case, in one go: `\d{16}`, `[A-Za-z0-9]+`
        out.add("".join(rng.choices(body.pool, k=count)), body.wide)
        return count
    return _share(rng, (body,) * count, length, out)


def _clamp(part: _Part, length: int) -> int:
    length = max(length, part.low)
    return length if part.high is None else min(length, part.high)


def _suffixes(items: tuple[_Part, ...], cap: int) -> list[int]:
    """For each item, the lengths the items after it can match together (up to `cap`)."""
    after = [1]
    for item in reversed(items[1:]):
        after.append(_sumset(after[-1], item.reach(cap), cap))
    return after[::-1]


def _share_exactly(
    rng: random.Random, items: tuple[_Part, ...], after: list[int], length: int, out: _Built
) -> int:
    """Append strings for `items`, `length` in all, each of a length it matches that leaves the
    rest one that the items after it (`after[i]`: their lengths) match together."""
    left = length
    for item, rest in zip(items, after, strict=True):
        # n such that the item matches n and the rest `left - n`: `rest` reversed, as bits
        width = left + 1
        rest_reversed = int(format(rest & ((1 << width) - 1), f"0{width}b")[::-1], 2)
        choices = item.reach(left) & rest_reversed
        size = _pick_bit(rng, choices) if choices else _clamp(item, left)
        left -= _build(rng, item, size, out)
    return length - left


def _share(rng: random.Random, items: tuple[_Part, ...], length: int, out: _Built) -> int:
    """Append strings for `items` in turn, `length` in all: each gets its shortest, and what is
    left over is shared out at random among those that can be longer (what one falls short of,
    the next ones make up)."""
    spare = [math.inf if item.high is None else item.high - item.low for item in items]
    after = [0.0] * (len(items) + 1)  # what the items after each one can take beyond the least
    for index in range(len(items) - 1, -1, -1):
        after[index] = after[index + 1] + spare[index]
    extra = length - sum(item.low for item in items)
    made = 0
    for index, item in enumerate(items):
        if extra <= 0:
            give = 0
        else:
            least = max(0, extra - after[index + 1])
            most = min(spare[index], extra)
            give = int(most) if least >= most else rng.randint(int(least), int(most))
        target = item.low + give
        if not item.dense and not item.fits(target) and extra > 0:
            lowest = item.low + int(max(0, extra - after[index + 1]))
            target = _fitting(item, lowest, item.low + int(min(spare[index], extra)), target)
        size = _build(rng, item, target, out)
        made += size
        extra -= size - item.low
    return made
