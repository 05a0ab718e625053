"""Reply templates: jinja2, sandboxed, strict about names, compiled and checked at load time.

A reply string containing `{{`, `{%` or `{#` is a template rendered per request with:
- `request`: a read-only view of the request (`RequestView`: model, user, system, messages, ...);
- `faker`: a Faker seeded from the request's content key (the same request, the same text);
- `call`: how many times this rule has answered, this request included (1, 2, ...).

The environment is jinja2's ImmutableSandboxedEnvironment (no attribute tricks, no mutation of the
request) with StrictUndefined, so `{{ request.modle }}` fails instead of rendering nothing; names
and `request.` / `faker.` attributes are even checked at load time, with a did-you-mean.
Strings without template syntax are constants: they cost nothing per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mockai.exchange import Exchange
from mockai.generate.prose import seeded_faker
from mockai.scenario.problems import Problems, suggest
from mockai.wire import jsonbytes

if TYPE_CHECKING:
    from faker import Faker
    from jinja2 import Template

_ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
)
CONTEXT_NAMES = ("request", "faker", "call")
_MARKERS = ("{{", "{%", "{#")


class TemplateRenderError(Exception):
    """A template failed while rendering (an undefined value, a sandbox violation, ...)."""


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
        """The JSON body as sent."""
        return self._exchange.body

    @property
    def headers(self) -> dict[str, str]:
        """The request headers, names in lower case."""
        return {name.lower(): value for name, value in self._exchange.headers.items()}

    def __repr__(self) -> str:
        return f"<request {self.endpoint} {self.model!r}>"


class Text:
    """A string that may be a template: `render(context)` gives the text.

    Templates are parsed and checked at load time, but compiled to Python on first use: compiling
    costs about a millisecond each, which a 1000-rule file should not pay before serving.
    """

    __slots__ = ("_compiled", "source", "tree")

    def __init__(self, source: str, tree: nodes.Template | None = None) -> None:
        self.source = source
        self.tree = tree  # None: a constant
        self._compiled: Template | None = None

    @property
    def dynamic(self) -> bool:
        """True for a template, False for a constant string."""
        return self.tree is not None

    def render(self, context: Mapping[str, Any]) -> str:
        """The text for this request."""
        if self.tree is None:
            return self.source
        if self._compiled is None:  # a race compiles twice, harmlessly
            self._compiled = _ENV.from_string(self.tree)
        try:
            return self._compiled.render(context)
        except Exception as error:  # jinja raises many kinds; all mean "this template failed"
            raise TemplateRenderError(f"{type(error).__name__}: {error}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"Text({self.source!r})"


def is_template(text: str) -> bool:
    """True when `text` contains template syntax."""
    return any(marker in text for marker in _MARKERS)


def compile_text(source: str, line: int, where: str, problems: Problems) -> Text | None:
    """A Text for `source`; syntax errors and unknown names are recorded as problems."""
    if not is_template(source):
        return Text(source)
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as error:
        at = f" (template line {error.lineno})" if error.lineno and error.lineno > 1 else ""
        problems.add(line, f"invalid template in {where}: {error.message}{at}")
        return None
    if not _names_known(tree, line, where, problems):
        return None
    return Text(source, tree)


def _names_known(tree: nodes.Template, line: int, where: str, problems: Problems) -> bool:
    ok = True
    known = (*CONTEXT_NAMES, *sorted(_ENV.globals))
    for name in sorted(meta.find_undeclared_variables(tree)):
        if name not in known:
            problems.add(
                line,
                f"unknown name '{name}' in the template of {where}"
                + suggest(name, CONTEXT_NAMES, noun="names"),
            )
            ok = False
    for node in tree.find_all(nodes.Getattr):
        if not isinstance(node.node, nodes.Name):
            continue
        if node.node.name == "request" and node.attr not in RequestView.FIELDS:
            problems.add(
                line,
                f"unknown field 'request.{node.attr}' in the template of {where}"
                + suggest(node.attr, RequestView.FIELDS, noun="fields"),
            )
            ok = False
        elif node.node.name == "faker" and not _faker_has(node.attr):
            close = suggest(node.attr, _faker_names(), noun="see the Faker docs")
            if "did you mean" not in close:
                close = " (see the Faker providers' documentation)"
            problems.add(line, f"unknown faker method 'faker.{node.attr}' in {where}{close}")
            ok = False
    return ok


def _faker_has(name: str) -> bool:
    if name.startswith("_"):
        return False
    with seeded_faker(0) as faker:
        try:
            getattr(faker, name)
        except AttributeError:
            return False
    return True


def _faker_names() -> list[str]:
    with seeded_faker(0) as faker:
        return [name for name in dir(faker) if not name.startswith("_")]


def context(exchange: Exchange, faker: Faker, call: int) -> dict[str, Any]:
    """The variables a template sees for this request."""
    return {"request": RequestView(exchange), "faker": faker, "call": call}
