"""Reply templates: jinja2, sandboxed, strict about names, compiled and checked at load time.

A reply string containing `{{`, `{%` or `{#` is a template rendered per request with:
- `request`: a read-only view of the request (`RequestView`: model, user, system, messages, ...);
- `faker`: a Faker seeded from the request's content key (the same request, the same text),
  seen through `FakerView`: the providers' methods only;
- `call`: how many times this rule has answered, this request included (1, 2, ...).

The environment is jinja2's ImmutableSandboxedEnvironment (no attribute tricks, no mutation of the
request) with StrictUndefined, so `{{ request.modle }}` fails instead of rendering nothing; names
and `request.` / `faker.` attributes are even checked at load time, with a did-you-mean.
Strings without template syntax are constants: they cost nothing per request.

Rendering is bounded: a reply's templates get RENDER_SECONDS and RENDER_CHARACTERS between them
(see `render_limits`), checked in the sandbox's hooks (calls, attributes, items, operators, every
loop's iterations, every piece of output), in every filter and test (wrapped: `map`, `select`, ...
call them per item), and at every item of a filter's lazy result (`range(n)|map(...)|sum` loops in
jinja2's code, not the template's). Operations that would make a string past the size limit are
refused before they make it (see `growth`). Templates render on the event loop: a loop of 10^10
steps would otherwise freeze every client and the health check, and `'x' * 10**9` fill the memory.

jinja2's `random` filter and `lipsum()` draw from the process's global RNG: here they draw from
the request's seeded Faker, so that the same request and seed give the same text.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import BuiltinFunctionType, BuiltinMethodType, FunctionType, MethodType
from typing import TYPE_CHECKING, Any, Literal, cast

from mockai.generate.prose import provider_methods, seeded_faker
from mockai.pipeline.exchange import Exchange
from mockai.scenario import growth
from mockai.scenario.problems import Problems, suggest
from mockai.wire import jsonbytes

if TYPE_CHECKING:
    from faker import Faker
    from jinja2 import Template, nodes
    from jinja2.runtime import Context
    from jinja2.sandbox import ImmutableSandboxedEnvironment

# What one reply's templates may take, together: far beyond any real reply (a long answer is a
# few thousand characters, rendered in well under a millisecond), far short of a frozen server.
RENDER_SECONDS = 1.0
RENDER_CHARACTERS = 4_000_000
_POWER_BITS = 100_000  # `a ** b` of more than ~30,000 digits: seconds of big-integer arithmetic


class RenderLimitError(Exception):
    """A template went past RENDER_SECONDS or RENDER_CHARACTERS."""


_TOO_LONG = (
    f"template time limit: rendering took more than {RENDER_SECONDS:g} s "
    "(mockai's bound on a reply's templates)"
)


def _too_big(size: int) -> RenderLimitError:
    return RenderLimitError(
        f"template size limit: {size:,} characters is more than {RENDER_CHARACTERS:,} "
        "(mockai's bound on a reply's templates)"
    )


class _Budget:
    """The time and output left to the templates of one reply."""

    __slots__ = ("deadline", "written")

    def __init__(self) -> None:
        self.deadline = time.monotonic() + RENDER_SECONDS
        self.written = 0

    def tick(self) -> None:
        """Raise once the time is up (called from the sandbox's hooks: ~50 ns each)."""
        if time.monotonic() > self.deadline:
            raise RenderLimitError(_TOO_LONG)

    def write(self, size: int) -> None:
        """Count `size` characters of output."""
        self.written += size
        if self.written > RENDER_CHARACTERS:
            raise _too_big(self.written)
        self.tick()

    def iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """`iterable`, checking the time at every step (a `{% for %}` loop's iterations)."""
        for item in iterable:
            self.tick()
            yield item

    def stream(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """A filter's lazy result, checking the time at every item and refusing it past the size
        limit: what it yields is usually all held at once (`|list`, `|join`, `|sum`)."""
        size = 0
        for item in iterable:
            self.tick()
            size += len(item) if isinstance(item, (str, bytes, list, tuple)) else 1
            if size > RENDER_CHARACTERS:
                raise _too_big(size)
            yield item


# Per thread: replies are built on the event loop and, for heavy requests, in a worker thread.
_limits = threading.local()


def _budget() -> _Budget | None:
    budget: _Budget | None = getattr(_limits, "budget", None)
    return budget


@contextmanager
def render_limits() -> Iterator[_Budget]:
    """One budget for the templates rendered inside the block (those of one reply); inside
    another such block, that block's budget."""
    outer = _budget()
    if outer is not None:
        yield outer
        return
    budget = _Budget()
    _limits.budget = budget
    try:
        yield budget
    finally:
        _limits.budget = None


def _sized(value: Any) -> Any:
    """`value`, refused when it is a string or sequence past the size limit."""
    if isinstance(value, (str, bytes, list, tuple)) and len(value) > RENDER_CHARACTERS:
        raise _too_big(len(value))
    return value


def _printable(value: Any) -> Any:
    """`value`, refused when it is a container whose text would pass the size limit: printing
    one (`{{ x }}`, `~`, `|string`, `|tojson`, `%s`) makes the whole text before anything could
    count it (`{{ [['x' * 1000] * 1000] * 1000 }}` made 1 GB in 4 s)."""
    if isinstance(value, growth.CONTAINERS):
        _refuse(growth.printed_size(value, RENDER_CHARACTERS))
    elif isinstance(value, _FUNCTIONS):
        # (Printed, a function is its memory address, another in every run: `request.user.upper`
        # for `request.user.upper()`; `faker.name` is refused as the file loads.)
        name = getattr(value, "__name__", "it")
        raise TypeError(f"the template prints the function {name} itself: call it, {name}()")
    return value


_FUNCTIONS = (FunctionType, BuiltinFunctionType, MethodType, functools.partial)


# Filters that make the text of their positional arguments, containers included (`[...]|string`,
# `|tojson`, `'%s'|format([...])`, `|center` of a list...): a container argument is measured
# first. (`join` prints its items: see `_guarded`. `urlencode` and `xmlattr` write a mapping's
# items in their own, shorter form, and `format`'s keywords are printed by name only.)
_PRINTING_FILTERS = frozenset(
    {
        "capitalize", "center", "e", "escape", "forceescape", "format", "indent", "lower",
        "pprint", "replace", "safe", "string", "striptags", "title", "tojson", "trim",
        "truncate", "upper", "urlize", "wordcount", "wordwrap",
    }
)  # fmt: skip


def _refuse(size: int | None) -> None:
    """Refuse a result of `size` characters (None: unknown) past the size limit."""
    if size is not None and size > RENDER_CHARACTERS:
        raise _too_big(size)


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """`args` for the call of `obj`, once a str or bytes method's result is known to fit (a
    `join`'s items are made a list to be measured, as `join` itself does)."""
    subject = getattr(obj, "__self__", None)
    if not isinstance(subject, (str, bytes)) or not isinstance(
        obj, (BuiltinMethodType, MethodType)
    ):
        return args
    if obj.__name__ == "join" and len(args) == 1 and not kwargs:
        items = list(args[0])
        _refuse(growth.join_size(subject, items))
        return (items,)
    _refuse(growth.method_size(subject, obj.__name__, args, kwargs))
    return args


def _guarded(
    func: Callable[..., Any],
    size: Callable[[dict[str, Any]], int | None] | None = None,
    *,
    prints: Literal["arguments", "items"] | None = None,
) -> Callable[..., Any]:
    """A filter or test checking the budget: the time at each call, the size of its result
    (`size` gives it before it is made) and of each item of a lazy result; with `prints`, the
    text of each container among its positional arguments (or among their items, as `join`
    prints them) before the filter makes it."""
    signature = inspect.signature(func) if size is not None else None

    @functools.wraps(func)  # (keeps `jinja_pass_arg`: jinja2 still passes the context)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        if budget is not None:
            budget.tick()
        if prints == "arguments":
            for argument in args:
                _printable(argument)
        elif prints == "items":
            for argument in args:
                if isinstance(argument, list | tuple):
                    for item in argument:
                        _printable(item)
        if size is not None and signature is not None:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                pass  # (the filter itself says what is wrong with its arguments)
            else:
                bound.apply_defaults()
                _refuse(size(bound.arguments))  # (may make an iterable argument a list)
                args, kwargs = bound.args, bound.kwargs
        result = func(*args, **kwargs)
        if budget is not None and isinstance(result, Iterator):
            return budget.stream(result)
        return _sized(result)

    return guarded


def _wordwrap(
    environment: Any,
    s: str,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    """jinja2's `wordwrap`, measured first when a long `wrapstring` could multiply the text."""
    from jinja2.filters import do_wordwrap

    if isinstance(wrapstring, str) and len(wrapstring) > 1:
        lines = do_wordwrap(environment, s, width, break_long_words, "\n", break_on_hyphens)
        _refuse(growth.replace_size(lines, "\n", wrapstring))  # (its lines hold no "\n")
    return do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)


def _names_keys(template: str | bytes) -> bool:
    """Whether a `%` template takes its values by key (`%(name)s`) from a mapping."""
    return b"%(" in template if isinstance(template, bytes) else "%(" in template


# Operators whose work grows faster than their integers' size (a division of two million-digit
# numbers takes seconds, in C, where no time check can stop it): their operands are bounded.
_INT_OPERATORS = frozenset({"*", "//", "/", "%", "+", "-"})


def _int_bits(operator: str, left: int, right: int) -> int:
    """The size that bounds `left <operator> right`: a product's, or its larger operand's."""
    if operator == "*":
        return left.bit_length() + right.bit_length()
    return max(left.bit_length(), right.bit_length())


def _check_operands(operator: str, left: Any, right: Any) -> None:
    """Refuse, before computing it, a product, a power or a `%` formatting too big to make
    quickly."""
    if operator == "%" and isinstance(left, (str, bytes)):
        _refuse(growth.percent_size(left, right))
        if isinstance(right, tuple):
            printed: Any = right
        elif isinstance(right, dict) and _names_keys(left):
            printed = ()  # (a mapping's values are printed by key, one at a time)
        else:
            printed = (right,)
        for value in printed:
            _printable(value)
    elif operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int):
                size = len(seq) * times
                if size > RENDER_CHARACTERS:
                    raise _too_big(size)
    if (
        operator in _INT_OPERATORS
        and type(left) is int
        and type(right) is int
        and _int_bits(operator, left, right) > _POWER_BITS
    ):
        raise RenderLimitError(
            f"template size limit: {operator} on integers of more than "
            f"{int(_POWER_BITS * math.log10(2)):,} digits (mockai's bound on a reply's templates)"
        )
    if (
        operator == "**"
        and isinstance(left, int)
        and isinstance(right, int)
        and right > 0
        and abs(left) > 1
        and right * math.log2(abs(left)) > _POWER_BITS
    ):
        raise RenderLimitError(
            f"template size limit: {left} ** {right} has more than "
            f"{int(_POWER_BITS * math.log10(2)):,} digits (mockai's bound on a reply's templates)"
        )


@functools.cache
def _env() -> ImmutableSandboxedEnvironment:
    """The templates' environment, made when the first template is met (jinja2 is slow to
    import, and most servers have no template)."""
    from jinja2 import StrictUndefined, nodes, pass_context, pass_environment
    from jinja2.compiler import CodeGenerator, Frame
    from jinja2.sandbox import (
        ImmutableSandboxedEnvironment,
        SandboxedEscapeFormatter,
        SandboxedFormatter,
    )
    from markupsafe import Markup

    class CheckedFormatter(SandboxedFormatter):
        """The sandbox's `str.format`, adding up its fields' widths as it goes."""

        size = 0

        def format_field(self, value: Any, format_spec: str) -> Any:
            self.size += growth.spec_size(format_spec, value)
            if isinstance(value, growth.CONTAINERS):
                self.size += growth.printed_size(value, RENDER_CHARACTERS)
            _refuse(self.size)
            return super().format_field(value, format_spec)

    class CheckedEscapeFormatter(CheckedFormatter, SandboxedEscapeFormatter):
        """The same, for a Markup string's `format` (its fields escaped)."""

        def __init__(self, env: Any, escape: Callable[[Any], Markup]) -> None:
            super().__init__(env, escape=escape)

    class Guarded(CodeGenerator):
        """jinja2's code, with every loop's iterable and every `~` passing through the
        environment: the sandbox has hooks for calls, attributes and operators, not these."""

        def visit_For(self, node: nodes.For, frame: Frame) -> None:
            guarded = copy.copy(node)  # (the tree is the Text's: left as parsed)
            guarded.iter = nodes.Call(
                nodes.EnvironmentAttribute("iterate"), [node.iter], [], None, None
            ).set_lineno(node.lineno)
            super().visit_For(guarded, frame)

        def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
            guarded = copy.copy(node)  # each operand measured before it is made text
            guarded.nodes = []
            for operand in node.nodes:
                printable = nodes.EnvironmentAttribute("printable")
                call = nodes.Call(printable, [operand], [], None, None)
                call.set_lineno(node.lineno)
                guarded.nodes.append(call)
            self.write("environment.sized(")
            super().visit_Concat(guarded, frame)
            self.write(")")

    class Sandbox(ImmutableSandboxedEnvironment):
        """The sandbox, checking the render's budget in its hooks."""

        code_generator_class = Guarded
        intercepted_binops = frozenset({"*", "**", "+", "%", "//", "/", "-"})

        def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
            budget = _budget()
            if budget is not None:
                budget.tick()
            args = _check_call(obj, args, kwargs)
            return _sized(super().call(context, obj, *args, **kwargs))

        def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
            """jinja2's sandboxed `str.format` / `format_map`, each field's width checked
            before the field is made (`'{:>500000000}'.format('a')`)."""
            if super().wrap_str_format(value) is None:  # (not a str's format or format_map)
                return None
            text, is_map = value.__self__, value.__name__ == "format_map"

            def wrapper(*args: Any, **kwargs: Any) -> str:
                fields: Mapping[str, Any] = kwargs
                if is_map:
                    if kwargs or len(args) != 1:
                        raise TypeError("format_map() takes exactly one argument, no keywords")
                    fields, args = args[0], ()
                if isinstance(text, Markup):
                    formatter: SandboxedFormatter = CheckedEscapeFormatter(self, text.escape)
                else:
                    formatter = CheckedFormatter(self)
                made: str = type(text)(formatter.vformat(text, args, fields))
                return made

            return functools.update_wrapper(wrapper, value)

        def getattr(self, obj: Any, attribute: str) -> Any:
            budget = _budget()
            if budget is not None:
                budget.tick()
            return super().getattr(obj, attribute)

        def getitem(self, obj: Any, argument: Any) -> Any:
            budget = _budget()
            if budget is not None:
                budget.tick()
            return super().getitem(obj, argument)

        def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
            _check_operands(operator, left, right)
            return _sized(super().call_binop(context, operator, left, right))

        def iterate(self, iterable: Iterable[Any]) -> Iterable[Any]:
            budget = _budget()
            return iterable if budget is None else budget.iterate(iterable)

        @staticmethod
        def sized(value: Any) -> Any:
            return _sized(value)

        @staticmethod
        def printable(value: Any) -> Any:
            return _printable(value)

    # `optimized=False`: jinja2 would otherwise fold constant expressions (`'x'|center(10**9)`)
    # while compiling, at load time and outside any budget.
    env = Sandbox(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        optimized=False,
        finalize=_printable,  # (each `{{ }}`'s value, before it is made text)
    )
    env.filters["random"] = pass_context(_random_item)
    env.filters["wordwrap"] = pass_environment(_wordwrap)
    env.globals["lipsum"] = pass_context(_lipsum)
    for name, func in env.filters.items():
        prints: Literal["arguments", "items"] | None = (
            "arguments" if name in _PRINTING_FILTERS else "items" if name == "join" else None
        )
        env.filters[name] = _guarded(func, growth.FILTER_SIZES.get(name), prints=prints)
    for name, test in env.tests.items():
        env.tests[name] = _guarded(cast("Callable[..., Any]", test))
    return env


def _rng(context: Context) -> random.Random:
    """The request's seeded RNG: its Faker's (a template that renamed `faker`: a fixed one)."""
    view = context.get("faker")
    if isinstance(view, FakerView):
        rng: random.Random = view._faker.random
        return rng
    return random.Random(0)


def _random_item(context: Context, seq: Sequence[Any]) -> Any:
    """jinja2's `random` filter, drawing from the request's seeded RNG."""
    try:
        return _rng(context).choice(seq)
    except IndexError:
        return context.environment.undefined("No random item, sequence was empty.")


def _lipsum(context: Context, n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """jinja2's `lipsum()` (jinja2.utils.generate_lorem_ipsum, the same text for the same
    draws), drawing from the request's seeded RNG."""
    from jinja2.constants import LOREM_IPSUM_WORDS
    from markupsafe import Markup, escape

    rng = _rng(context)
    budget = _budget()
    words = LOREM_IPSUM_WORDS.split()
    result = []
    for _ in range(n):
        next_capitalized = True
        last_comma = last_fullstop = 0
        last = None
        paragraph = []
        for idx in range(rng.randrange(min, max)):  # 20 to 100 words by default
            if budget is not None:
                budget.tick()
            while True:
                word = rng.choice(words)
                if word != last:
                    last = word
                    break
            if next_capitalized:
                word = word.capitalize()
                next_capitalized = False
            if idx - rng.randrange(3, 8) > last_comma:  # a comma now and then
                last_comma = idx
                last_fullstop += 2
                word += ","
            if idx - rng.randrange(10, 20) > last_fullstop:  # and the end of a sentence
                last_comma = last_fullstop = idx
                word += "."
                next_capitalized = True
            paragraph.append(word)
        text = " ".join(paragraph)
        if text.endswith(","):
            text = text[:-1] + "."
        elif not text.endswith("."):
            text += "."
        result.append(text)
    if not html:
        return "\n\n".join(result)
    return Markup("\n".join(f"<p>{escape(text)}</p>" for text in result))


CONTEXT_NAMES = ("request", "faker", "call")
_MARKERS = ("{{", "{%", "{#")


class TemplateRenderError(Exception):
    """A template failed while rendering (an undefined value, a sandbox violation, ...).

    `origin` says which template: `rule 'a' reply.content (scenarios/a.yaml:6)`.
    """

    def __init__(self, message: str, origin: str = "") -> None:
        super().__init__(message)
        self.origin = origin


class RequestView:
    """What a template sees of the request: read-only, computed on access."""

    FIELDS = (
        "model",
        "endpoint",
        "user",
        "system",
        "messages",
        "tool_result",
        "tool_calls",
        "has_tool_result",
        "turn",
        "tools",
        "inputs",
        "stream",
        "body",
        "headers",
        "files",
    )
    __slots__ = ("_exchange",)

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    @property
    def model(self) -> str:
        """The requested model id."""
        return self._exchange.model

    @property
    def endpoint(self) -> str:
        """chat | completions | embeddings | responses | moderations."""
        return self._exchange.endpoint.value

    @property
    def user(self) -> str:
        """The last user message (completions: the prompt; embeddings: the inputs)."""
        return self._exchange.user_text

    @property
    def system(self) -> str:
        """The system / developer messages or `instructions` ("" if none)."""
        return self._exchange.system_text

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation: `{role, content, name, tool_call_id}` per message."""
        return [
            {
                "role": m.role,
                "content": m.text,
                "name": m.name,
                "tool_call_id": m.tool_call_id,
            }
            for m in self._exchange.messages
        ]

    @property
    def tool_result(self) -> str | None:
        """The latest tool result (None if there is none)."""
        return self._exchange.tool_result

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """The calls of the latest assistant turn: `{id, name, arguments}` (arguments parsed)."""
        for message in reversed(self._exchange.messages):
            if message.role == "assistant" and message.tool_calls:
                out = []
                for call in message.tool_calls:
                    try:
                        arguments: Any = jsonbytes.loads(call.arguments)
                    except ValueError:
                        arguments = call.arguments
                    out.append({"id": call.id, "name": call.name, "arguments": arguments})
                return out
        return []

    @property
    def has_tool_result(self) -> bool:
        """True when the latest message is a tool result."""
        return self._exchange.has_tool_result

    @property
    def turn(self) -> int:
        """How many user turns the conversation holds."""
        return self._exchange.turn

    @property
    def tools(self) -> list[str]:
        """The names of the offered tools."""
        return [tool.name for tool in self._exchange.tools]

    @property
    def inputs(self) -> list[str]:
        """Embeddings / moderations / completions inputs."""
        return list(self._exchange.inputs)

    @property
    def stream(self) -> bool:
        """True for a streaming request."""
        return self._exchange.stream

    @property
    def body(self) -> Mapping[str, Any]:
        """The JSON body as sent (a multipart form's fields, each file as its summary)."""
        return self._exchange.body

    @property
    def files(self) -> list[str]:
        """The names of the uploaded files (transcriptions, image edits, file uploads)."""
        return [upload.filename for upload in self._exchange.uploads]

    @property
    def headers(self) -> dict[str, str]:
        """The request headers, names in lower case."""
        return {name.lower(): value for name, value in self._exchange.headers.items()}

    def __repr__(self) -> str:
        return f"<request {self.endpoint} {self.model!r}>"


class FakerView:
    """What a template sees of Faker: the providers' public methods, and `unique` / `optional`.

    Not the Faker itself: its `format`, `parse`, `get_formatter` and `set_formatter` reach any
    attribute by name (dunders too, around the sandbox), and `set_arguments`, `add_provider`,
    `seed_instance`, `random`, ... change the Faker every later request shares.
    """

    __slots__ = ("_faker", "_proxies")
    PROXIES = ("unique", "optional")

    def __init__(self, faker: Any, *, proxies: bool = True) -> None:
        self._faker = faker
        self._proxies = proxies  # `faker.unique.unique` is not a thing

    def __getattr__(self, name: str) -> Any:
        if name in provider_methods():
            method = _bounded_provider(name, getattr(self._faker, name))
            return _with_sets_in_order(method) if name in _SET_MAKERS else method
        if self._proxies and name in self.PROXIES:
            return FakerView(getattr(self._faker, name), proxies=False)
        raise AttributeError(f"faker.{name} is not available to templates ({_ONLY_PROVIDERS})")

    def __repr__(self) -> str:
        return "<faker>"


_ONLY_PROVIDERS = "only the Faker providers' methods are, such as faker.first_name()"

# The providers whose answer may be a set (`pyiterable` picks a list, a tuple or a set).
_SET_MAKERS = frozenset({"pyset", "pyiterable"})


def _with_sets_in_order(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` answering a set as an `OrderedSet`: the same seed makes the same elements, but
    a set of texts prints and iterates in an order of their hashes, which each process draws
    anew (PYTHONHASHSEED), so `{{ faker.pyset() }}` answered differently from run to run."""

    @functools.wraps(method)
    def in_order(*args: Any, **kwargs: Any) -> Any:
        made = method(*args, **kwargs)
        return OrderedSet(made) if isinstance(made, set) else made

    return in_order


class OrderedSet(set[Any]):
    """A set that prints and iterates in one order in every process: its elements sorted by
    their type's name, then their `repr`."""

    def _in_order(self) -> list[Any]:
        return sorted(set.__iter__(self), key=lambda item: (type(item).__name__, repr(item)))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._in_order())

    def __repr__(self) -> str:
        return "{" + ", ".join(map(repr, self._in_order())) + "}" if self else "set()"


# Faker's arguments that say how much a method makes, and the most a template may ask: the render
# limits are checked between calls, never inside one, so one call must stay well within them
# (`faker.paragraphs(nb=3000000)` held the server 100 s; `faker.csv(num_rows=10000)` takes 4.5
# s, 1,000 rows 0.45 s; a million characters of `password` 0.15 s).
_FAKER_COUNT = 1_000
_FAKER_CHARACTERS = 1_000_000
_FAKER_PIXELS = 1_000_000
_FAKER_BOUNDS = {
    **dict.fromkeys(
        (
            "nb", "nb_elements", "nb_texts", "nb_sentences", "nb_words", "num_rows", "num_files",
            "count", "number", "depth", "deep", "levels", "digits", "left_digits", "right_digits",
        ),
        _FAKER_COUNT,
    ),
    **dict.fromkeys(
        ("length", "max_nb_chars", "max_chars", "min_chars", "uncompressed_size", "min_file_size"),
        _FAKER_CHARACTERS,
    ),
}  # fmt: skip
# The character arguments that size each item a call makes (the others, `uncompressed_size` and
# `min_file_size`, are a whole archive's): with counts, the call makes about count x that.
_PER_ITEM = frozenset({"length", "max_nb_chars", "max_chars", "min_chars"})


def _bounded_provider(name: str, method: Any) -> Any:
    """A Faker provider method whose size arguments are held to what one call may make."""
    watched = _watched_arguments(name, method)
    if not watched:
        return method

    @functools.wraps(method)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        signature = watched[0]
        try:
            given = signature.bind_partial(*args, **kwargs).arguments
        except TypeError:
            return method(*args, **kwargs)  # (the method says what is wrong with them)
        for argument in watched[1]:
            _check_faker_argument(name, argument, given.get(argument))
        _check_faker_total(name, given)
        return method(*args, **kwargs)

    return bounded


def _check_faker_total(name: str, given: Mapping[str, Any]) -> None:
    """Refuse a call whose arguments together ask for too much, each within its bound:
    `texts(nb_texts=1000, max_nb_chars=1000000)` (a billion characters), or `json` rows whose
    `data_columns` call providers with counts and sizes of their own."""
    counts, size = 1, 1
    for argument, value in _size_arguments(given):
        if argument in _PER_ITEM:
            size = max(size, value)
        elif argument in _FAKER_BOUNDS and _FAKER_BOUNDS[argument] == _FAKER_COUNT:
            counts *= max(value, 1)
    if counts > _FAKER_COUNT or counts * size > _FAKER_CHARACTERS:
        raise RenderLimitError(
            f"template size limit: faker.{name} asks for {counts:,} items of up to {size:,} "
            f"characters, more than {_FAKER_COUNT:,} items or {_FAKER_CHARACTERS:,} characters "
            "in all (mockai's bound on one Faker call)"
        )


def _size_arguments(value: Any, depth: int = 0) -> Iterator[tuple[str, int]]:
    """The (argument, integer) pairs in a call's arguments, and in the argument mappings that
    `data_columns` passes on to the providers it names (within a few levels)."""
    if depth > 4:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, int) and not isinstance(item, bool) and key in _FAKER_BOUNDS:
                yield key, item
            elif isinstance(item, Mapping | list | tuple):
                yield from _size_arguments(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _size_arguments(item, depth + 1)


def _watched_arguments(name: str, method: Any) -> tuple[inspect.Signature, tuple[str, ...]] | None:
    """The signature of provider method `name` and its arguments that say how much it makes
    (worked out once per name: every seeded Faker's method has the same; by name, not by the
    bound method, which is another object with every request's Faker)."""
    if name in _WATCHED:
        return _WATCHED[name]
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):
        found = None
    else:
        watched = tuple(
            a for a in signature.parameters if a in _FAKER_BOUNDS or a in ("size", "data_columns")
        )
        found = (signature, watched) if watched else None
    _WATCHED[name] = found  # (bounded: one entry per provider method name)
    return found


_WATCHED: dict[str, tuple[inspect.Signature, tuple[str, ...]] | None] = {}


def _check_faker_argument(name: str, argument: str, value: Any) -> None:
    if argument == "data_columns":  # (checked with the others: `_check_faker_total`)
        return
    if argument == "size":  # (`image`'s width and height)
        if isinstance(value, tuple | list) and all(isinstance(v, int) for v in value):
            pixels = math.prod(value)
            if pixels > _FAKER_PIXELS:
                raise RenderLimitError(
                    f"template size limit: faker.{name}({argument}={tuple(value)}) makes "
                    f"{pixels:,} pixels, more than {_FAKER_PIXELS:,} (mockai's bound on one "
                    "Faker call)"
                )
        return
    most = _FAKER_BOUNDS[argument]
    if isinstance(value, int) and not isinstance(value, bool) and value > most:
        raise RenderLimitError(
            f"template size limit: faker.{name}({argument}={value:,}) is more than {most:,} "
            "(mockai's bound on one Faker call)"
        )


class Text:
    """A string that may be a template: `render(context)` gives the text.

    Templates are parsed and checked at load time, but compiled to Python on first use: compiling
    costs about a millisecond each, which a 1000-rule file should not pay before serving.
    """

    __slots__ = ("_compiled", "origin", "source", "tree")

    def __init__(self, source: str, tree: nodes.Template | None = None, origin: str = "") -> None:
        self.source = source
        self.tree = tree  # None: a constant
        self.origin = origin  # where it was written, for render errors
        self._compiled: Template | None = None

    @property
    def dynamic(self) -> bool:
        """True for a template, False for a constant string."""
        return self.tree is not None

    def render(self, context: Mapping[str, Any]) -> str:
        """The text for this request, within the reply's render limits (see `render_limits`)."""
        if self.tree is None:
            return self.source
        if self._compiled is None:  # a race compiles twice, harmlessly
            self._compiled = _env().from_string(self.tree)
        # (render_limits() inlined: its generator would cost ~2 us a render)
        budget = outer = _budget()
        if budget is None:
            budget = _limits.budget = _Budget()
        try:
            parts = []
            for part in self._compiled.generate(context):  # (piece by piece: the size cap)
                budget.write(len(part))
                parts.append(part)
            return "".join(parts)
        except RenderLimitError as error:
            raise TemplateRenderError(str(error), self.origin) from None
        except Exception as error:  # jinja raises many kinds; all mean "this template failed"
            raise TemplateRenderError(f"{type(error).__name__}: {error}", self.origin) from None
        finally:
            if outer is None:
                _limits.budget = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"Text({self.source!r})"


def is_template(text: str) -> bool:
    """True when `text` contains template syntax."""
    return any(marker in text for marker in _MARKERS)


def compile_text(
    source: str, line: int, where: str, problems: Problems, *, block: int = 0
) -> Text | None:
    """A Text for `source`; syntax errors and unknown names are recorded as problems.

    `line` is the line of the key holding the text; `block` the line its text starts on when it
    is a literal block scalar (`content: |`), so a problem inside a multi-line template is
    reported at its own line of the file (see yamlsrc.block_line).
    """
    if not is_template(source):
        return Text(source)
    from jinja2 import TemplateSyntaxError

    place = _Place(line, block, multiline="\n" in source.rstrip("\n"))
    try:
        tree = _env().parse(source)
    except TemplateSyntaxError as error:
        at, inside = place.of(error.lineno)
        problems.add(at, f"invalid template in {where}: {error.message}{inside}")
        return None
    if not _check_tree(tree, place, where, problems):
        return None
    origin = f"{where} ({problems.file}:{line})" if line else where
    return Text(source, tree, origin)


class _Place:
    """Where a template's line N is in the file."""

    def __init__(self, line: int, block: int, *, multiline: bool) -> None:
        self.line, self.block, self.multiline = line, block, multiline

    def of(self, lineno: int | None) -> tuple[int, str]:
        """(file line, ` (template line N)` for multi-line templates)."""
        if not lineno or not (self.multiline or self.block):
            return self.line, ""
        # (a `|` block of one line is on the line after its key's, as is a longer one's first)
        at = self.block + lineno - 1 if self.block else self.line
        return at, f" (template line {lineno})" if self.multiline else ""


def _names_known(
    tree: nodes.Template, undeclared: set[str], place: _Place, where: str, problems: Problems
) -> bool:
    from jinja2 import nodes

    ok = True
    known = (*CONTEXT_NAMES, *sorted(_env().globals))
    for name in sorted(undeclared):
        if name not in known:
            first = next(n for n in tree.find_all(nodes.Name) if n.name == name)
            at, inside = place.of(first.lineno)
            problems.add(
                at,
                f"unknown name '{name}' in the template of {where}{inside}"
                + suggest(name, CONTEXT_NAMES, noun="names"),
            )
            ok = False
    for node in tree.find_all(nodes.Getattr):
        if not isinstance(node.node, nodes.Name):
            continue
        at, inside = place.of(node.lineno)
        if node.node.name == "request" and node.attr not in RequestView.FIELDS:
            problems.add(
                at,
                f"unknown field 'request.{node.attr}' in the template of {where}{inside}"
                + suggest(node.attr, RequestView.FIELDS, noun="fields"),
            )
            ok = False
        elif node.node.name == "faker" and not _faker_has(node.attr, proxies=True):
            problems.add(at, _faker_problem(f"faker.{node.attr}", node.attr, where, inside))
            ok = False
    for node in tree.find_all(nodes.Getattr):  # `faker.unique.first_name`
        inner = node.node
        if (
            isinstance(inner, nodes.Getattr)
            and isinstance(inner.node, nodes.Name)
            and inner.node.name == "faker"
            and inner.attr in FakerView.PROXIES
            and not _faker_has(node.attr, proxies=False)
        ):
            at, inside = place.of(node.lineno)
            name = f"faker.{inner.attr}.{node.attr}"
            problems.add(at, _faker_problem(name, node.attr, where, inside))
            ok = False
    return _faker_methods_called(tree, place, where, problems) and ok


def _faker_methods_called(
    tree: nodes.Template, place: _Place, where: str, problems: Problems
) -> bool:
    """False (with a problem) for a faker method written without its call: `{{ faker.name }}`
    prints the bound method, `<bound method Provider.name of <... object at 0x7f...>>`, whose
    address changes from run to run (the answer is no longer reproducible). Kept in a variable
    to be called later (`{% set pick = faker.name %}`), it is left alone."""
    from jinja2 import nodes

    used = {id(call.node) for call in tree.find_all(nodes.Call)}
    used |= {id(assign.node) for assign in tree.find_all(nodes.Assign)}
    used |= {id(value) for scope in tree.find_all(nodes.With) for value in scope.values}
    ok = True
    for node in tree.find_all(nodes.Getattr):
        name = _faker_method(node)
        if name is None or id(node) in used:
            continue
        at, inside = place.of(node.lineno)
        problems.add(
            at,
            f"'{name}' in the template of {where}{inside} is a method: call it, {name}() "
            "(uncalled, it prints as the method itself, a memory address that differs every run)",
        )
        ok = False
    return ok


def _faker_method(node: nodes.Getattr) -> str | None:
    """`faker.first_name` or `faker.unique.first_name` for such an attribute, else None."""
    from jinja2 import nodes

    if node.attr not in provider_methods():
        return None
    inner = node.node
    if isinstance(inner, nodes.Name) and inner.name == "faker":
        return f"faker.{node.attr}"
    if (
        isinstance(inner, nodes.Getattr)
        and isinstance(inner.node, nodes.Name)
        and inner.node.name == "faker"
        and inner.attr in FakerView.PROXIES
    ):
        return f"faker.{inner.attr}.{node.attr}"
    return None


def _faker_problem(name: str, attr: str, where: str, inside: str) -> str:
    """`unknown faker method ...`, or why a real Faker attribute is out of a template's reach."""
    if not attr.startswith("_") and _faker_attribute(attr):
        return f"'{name}' is not available to templates in {where}{inside} ({_ONLY_PROVIDERS})"
    close = suggest(attr, sorted(provider_methods()), noun="see the Faker docs")
    if "did you mean" not in close:
        close = " (see the Faker providers' documentation)"
    return f"unknown faker method '{name}' in {where}{inside}{close}"


def _check_tree(tree: nodes.Template, place: _Place, where: str, problems: Problems) -> bool:
    """What jinja2 only finds when compiling (unknown filters and tests, ...) and the names the
    template uses, checked now: a load-time problem, not an error answered to a request."""
    from jinja2 import TemplateSyntaxError, meta, nodes

    ok = True
    for kind, node_type, known in (
        ("filter", nodes.Filter, _env().filters),
        ("test", nodes.Test, _env().tests),
    ):
        for node in tree.find_all(node_type):
            name = getattr(node, "name", "")
            if name not in known:
                at, inside = place.of(node.lineno)
                problems.add(
                    at,
                    f"unknown {kind} '{name}' in the template of {where}{inside}"
                    + suggest(name, sorted(known), noun=f"{kind}s"),
                )
                ok = False
    for other in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        at, inside = place.of(other.lineno)
        problems.add(
            at, f"the template of {where}{inside} cannot extend, include or import other templates"
        )
        ok = False
    if not ok:
        return False
    try:  # runs jinja2's code generator: the rest of what compiling checks (a block defined twice)
        undeclared = meta.find_undeclared_variables(tree)
    except TemplateSyntaxError as error:
        at, inside = place.of(error.lineno)
        problems.add(at, f"invalid template in {where}: {error.message}{inside}")
        return False
    return _names_known(tree, undeclared, place, where, problems)


def _faker_has(name: str, *, proxies: bool) -> bool:
    """True when a template may use `faker.<name>` (or `faker.unique.<name>`: no proxies)."""
    return name in provider_methods() or (proxies and name in FakerView.PROXIES)


def _faker_attribute(name: str) -> bool:
    """True when Faker itself has `name` (`format`, `seed_instance`, ...)."""
    with seeded_faker(0) as faker:
        return name in dir(faker)


def context(exchange: Exchange, faker: Faker, call: int) -> dict[str, Any]:
    """The variables a template sees for this request."""
    return {"request": RequestView(exchange), "faker": FakerView(faker), "call": call}
