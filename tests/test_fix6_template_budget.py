"""Template budgets hold everywhere: the time limit inside filter chains (`map`, `sum`, ...
loop in jinja2's code, not the template's), and the size limit for what methods, filters and
`%` formatting would make (refused before the big string exists, not after)."""

from __future__ import annotations

import contextlib
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from service_support import ServeProcess

from mockai.scenario import growth
from mockai.scenario.problems import Problems
from mockai.scenario.templates import RENDER_CHARACTERS, TemplateRenderError, compile_text

MODEL = "gpt-4o-mini"


class Server:
    """`mockai serve` in its own process: its URL and pid (its memory is its own to measure)."""

    def __init__(self, url: str, pid: int) -> None:
        self.url, self.pid = url, pid

    def rule(self, name: str, content: str) -> None:
        """A runtime rule answering the user message `name` with the template `content`."""
        rule = {"name": name, "match": {"user": {"equals": name}}, "reply": {"content": content}}
        response = httpx.post(f"{self.url}/_mockai/rules", json=rule, timeout=10)
        assert response.status_code < 300, response.text

    def chat(self, user: str, timeout: float = 60) -> tuple[int, Any]:
        """(status, content or error body) of one chat request."""
        body = {"model": MODEL, "messages": [{"role": "user", "content": user}]}
        response = httpx.post(f"{self.url}/v1/chat/completions", json=body, timeout=timeout)
        data = response.json()
        if response.status_code != 200:
            return response.status_code, data["error"]
        return 200, data["choices"][0]["message"]["content"]

    def peak_memory_kib(self) -> int:
        """The process's peak resident memory (VmHWM), in KiB."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """One server process for the module's HTTP tests (killed at the end, whatever it does: a
    server stuck in a render would not answer SIGTERM soon)."""
    process = ServeProcess(["--quiet"]).start()
    try:
        assert process.process is not None
        yield Server(process.base_url, process.process.pid)
    finally:
        process.stop(grace=0)


# --- 1. the time limit inside filter chains ----------------------------------------------------

CHAIN = "{{ range(50000)|map('string')|map('center', 1000)|map('wordwrap', 3)|map('length')|sum }}"


def test_a_filter_chain_past_the_time_limit_answers_400_and_health_never_waits(
    server: Server,
) -> None:
    server.rule("chain", CHAIN)
    answers: list[tuple[int, Any]] = []

    def ask() -> None:
        with contextlib.suppress(httpx.HTTPError):  # (no answer: the assertions below say)
            answers.append(server.chat("chain"))

    started = time.monotonic()
    asking = threading.Thread(target=ask)
    asking.start()
    waits = []
    while asking.is_alive() and time.monotonic() - started < 60:
        sent = time.monotonic()
        assert httpx.get(f"{server.url}/_mockai/health", timeout=60).status_code == 200
        waits.append(time.monotonic() - sent)
    asking.join(timeout=60)
    took = time.monotonic() - started
    assert answers, "the chain never answered"
    status, error = answers[0]
    assert status == 400 and error["code"] == "mockai_template_error", answers
    assert error["message"].startswith("rule 'chain' reply"), error["message"]
    # (The time limit, or on a slow moment the chain's 4,000,000 characters first: either is
    # counted inside the filters, and either ends the render within its second.)
    assert (
        "template time limit: rendering took more than 1 s" in error["message"]
        or "template size limit" in error["message"]
    ), error["message"]
    assert took < 6, took  # (the limit is 1 s; 9-27 s when the chain did not count)
    assert waits and max(waits) < 4, waits  # (at most the render's second, and some slack)


# --- 2. the size limit, before the string is made ----------------------------------------------

BIG = 3 * 10**8  # characters: 300 MB made, if not refused first
GROWERS = {
    "ljust": f"{{{{ 'a'.ljust({BIG})|length }}}}",
    "format": f"{{{{ '%{BIG}s'|format('a')|length }}}}",
    "percent": f"{{{{ ('%*s' % ({BIG}, 'a'))|length }}}}",
    "str-format": f"{{{{ '{{:>{{}}}}'.format('a', {BIG})|length }}}}",
    "expandtabs": f"{{{{ 'a\\tb'.expandtabs({BIG})|length }}}}",
    "replace": f"{{{{ ('a' * 1000).replace('a', 'b' * {BIG // 1000})|length }}}}",
    "join": "{{ '-'.join(['x' * 3000000] * 100)|length }}",
    "mapped": "{{ range(100000)|map('center', 100000)|join|length }}",
}


def test_methods_and_filters_past_the_size_limit_are_refused_before_they_are_made(
    server: Server,
) -> None:
    for name, template in GROWERS.items():
        server.rule(name, template)
    server.rule("fits", "{{ 'ab'.ljust(5) }}|{{ '%4s'|format('a') }}|{{ '{:>3}'.format(1) }}")
    before = server.peak_memory_kib()
    for name in GROWERS:
        started = time.monotonic()
        status, error = server.chat(name)
        assert time.monotonic() - started < 5, name
        assert status == 400 and error["code"] == "mockai_template_error", (name, status, error)
        assert error["message"].startswith(f"rule '{name}' reply"), error["message"]
        assert "template size limit" in error["message"], error["message"]
    grown_mib = (server.peak_memory_kib() - before) / 1024
    assert grown_mib < 100, f"the server's peak memory grew {grown_mib:.0f} MiB"
    assert server.chat("fits") == (200, "ab   |   a|  1")


# --- the property: on the renderer itself -------------------------------------------------------

# (method, template of width w, the length jinja2 makes): each makes a string of about w.
SHAPES = {
    "ljust": ("{{ 'ab'.ljust(%d)|length }}", lambda w: max(w, 2)),
    "rjust": ("{{ 'ab'.rjust(%d)|length }}", lambda w: max(w, 2)),
    "center": ("{{ 'ab'.center(%d)|length }}", lambda w: max(w, 2)),
    "zfill": ("{{ '12'.zfill(%d)|length }}", lambda w: max(w, 2)),
    "center filter": ("{{ 'ab'|center(%d)|length }}", lambda w: max(w, 2)),
    "format filter": ("{{ '%%%ds'|format('ab')|length }}", lambda w: max(w, 2)),
    "percent precision": ("{{ ('%%.%dd' %% 7)|length }}", lambda w: max(w, 1)),
    "percent star": ("{{ ('%%*s|' %% (%d, 'ab'))|length }}", lambda w: max(w, 2) + 1),
    "str.format": ("{{ '{:>%d}'.format('ab')|length }}", lambda w: max(w, 2)),
    "format_map": ("{{ '{x:>{w}}'.format_map({'x': 'ab', 'w': %d})|length }}", lambda w: max(w, 2)),
    "float digits": ("{{ '{:.%df}'.format(1.5)|length }}", lambda w: w + 2 if w else 1),
    "expandtabs": ("{{ 'a\\tb'.expandtabs(%d)|length }}", lambda w: max(w + 1, 3) if w else 2),
    "indent": ("{{ 'x\\ny\\nz'|indent(%d)|length }}", lambda w: 5 + 2 * w),
    "wordwrap": ("{{ 'a b c'|wordwrap(1, wrapstring='-' * %d)|length }}", lambda w: 3 + 2 * w),
    "replace": ("{{ 'abab'.replace('a', 'c' * %d)|length }}", lambda w: 2 + 2 * w),
    "batch": ("{{ range(3)|batch(%d, 0)|first|length }}", lambda w: w),
}
WIDTHS = st.one_of(
    st.integers(0, 3000),
    st.integers(RENDER_CHARACTERS // 2 - 5, RENDER_CHARACTERS // 2 + 5),
    st.integers(RENDER_CHARACTERS - 5, RENDER_CHARACTERS + 5),
    st.integers(RENDER_CHARACTERS + 1, 5 * 10**7),
)


def render(source: str) -> str:
    """`source` rendered as a reply's template (with its budget), no server."""
    problems = Problems("<test>")
    text = compile_text(source, 1, "reply.content", problems)
    assert text is not None, problems.items
    return text.render({})


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(SHAPES)), WIDTHS)
def test_no_method_or_filter_makes_a_string_past_the_size_limit(method: str, width: int) -> None:
    template, made = SHAPES[method]
    source = template % width
    tracemalloc.start()
    try:
        try:
            answer: str | None = render(source)
        except TemplateRenderError as error:
            assert "template size limit" in str(error), (source, str(error))
            answer = None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if made(width) <= RENDER_CHARACTERS:  # unchanged: what jinja2 makes
        assert answer == str(made(width)), source
    else:  # refused, before anything near its size was made
        assert answer is None, f"{source} rendered {answer}"
        assert peak < 16 * 2**20, f"{source}: {peak / 2**20:.0f} MiB made before the refusal"


# --- the sizes themselves: what each says is what Python makes ---------------------------------

TEXTS = st.text(alphabet="ab \t\n\r%", max_size=40)


@settings(max_examples=200, deadline=None)
@given(TEXTS, st.integers(1, 12), TEXTS, TEXTS, st.integers(-1, 5), st.integers(-3, 9))
def test_each_size_is_the_length_python_makes(
    text: str, tabsize: int, old: str, new: str, count: int, width: int
) -> None:
    from jinja2.filters import do_indent

    assert growth.columns_size(text, tabsize) == len(text.expandtabs(tabsize))
    assert growth.expandtabs_size(text, tabsize) == len(text.expandtabs(tabsize))
    assert growth.replace_size(text, old, new, count) == len(text.replace(old, new, count))
    assert growth.join_size(new, [text, old, text]) == len(new.join([text, old, text]))
    table = {ord("a"): new, ord("b"): None, ord("%"): 37}
    assert growth.translate_size(text, table) == len(text.translate(table))
    for first, blank in ((False, False), (True, True)):
        made = do_indent(text, width, first, blank)
        assert growth.indent_size(text, width, first=first, blank=blank) == len(made)
    for spec in (f"%{width}s", f"%-*.{max(width, 0)}d|%%", "%(k)*s"):
        values: Any = {"k": text} if "(k)" in spec else (width, 7) if "*" in spec else text
        with contextlib.suppress(TypeError, ValueError):  # (a bound: at most what is made)
            assert growth.percent_size(spec, values) <= len(spec % values)
    formatted = format(1.5, f">{max(width, 0)}.{max(width, 0)}f")
    assert growth.spec_size(f">{max(width, 0)}.{max(width, 0)}f", 1.5) <= len(formatted)


# --- containers printed: their text measured before it is made -------------------------------

NESTED = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.lists(inner, max_size=6).map(tuple)
        | st.dictionaries(st.text(max_size=5), inner, max_size=6)
        | st.frozensets(st.integers() | st.text(max_size=5), max_size=6)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(NESTED, st.integers(0, 400))
def test_a_containers_printed_size_is_a_lower_bound_counted_to_the_limit(
    value: Any, limit: int
) -> None:
    """`printed_size` never counts more than `str()` makes (nothing under the limit refused);
    under the limit it is the whole count, past it it stops but says so."""
    whole = growth.printed_size(value, 10**9)
    if isinstance(value, growth.CONTAINERS):
        assert whole <= len(str(value))
    else:
        assert whole == 0  # (strings are counted as they are written)
    counted = growth.printed_size(value, limit)
    assert counted == whole if whole <= limit else counted > limit


REPEATED = "[['x' * 1000] * 1000] * 1000"  # ~1,000 lists of 1,000 references: 1 GB as text


@pytest.mark.parametrize(
    "source",
    [
        "{{ %s }}",
        "{{ (%s)|string|length }}",
        "{{ (%s)|tojson|length }}",
        "{{ (%s)|pprint|length }}",
        "{{ 'a' ~ %s }}",
        "{{ '%%s' %% (%s,) }}",
        "{{ '%%s' %% %s }}",
        "{{ '{}'.format(%s) }}",
        "{{ '%%s'|format(%s) }}",
        "{{ (%s)|center(10) }}",
        "{{ [%s]|join(',') }}",
        "{{ {'k': %s} }}",
        "{{ '%%s' %% {'k': %s} }}",
    ],
)
def test_a_container_whose_text_is_past_the_size_limit_is_refused_before_it_is_made(
    source: str,
) -> None:
    """Printing a list repeating one big list made its 1 GB text (4 s, ~1 GB of memory) before
    the size limit could refuse it; now it is measured first, walking only to the limit."""
    tracemalloc.start()
    try:
        with pytest.raises(TemplateRenderError, match="template size limit"):
            render(source % REPEATED)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, peak


def test_containers_within_the_size_limit_print_as_python_prints_them() -> None:
    assert render("{{ [[1, 2], {'a': 'b'}, ('c',)] }}") == "[[1, 2], {'a': 'b'}, ('c',)]"
    assert render("{{ ['x' * 1000] * 1000 }}") == str(["x" * 1000] * 1000)
    assert render("{{ '%s-%s' % ([1], {'k': 2}) }}") == "[1]-{'k': 2}"
    assert render("{{ '%(k)s' % {'k': [3], 'other': [[0] * 3000] * 3000} }}") == "[3]"
    # Joined, a list's strings are written bare: a million of them fit (2 million characters),
    # though the list's own text (quoted, `, `-separated: 5 million) would not. (1.5 million
    # took more than the 1 s render bound on a machine busy with other work.)
    assert render("{{ (['a'] * 1000000)|join(',')|length }}") == str(2 * 1000000 - 1)
    assert render("{{ {'k': 'v'}|urlencode }}") == "k=v"


# --- one Faker call, one big-integer operation: bounded before they run -------------------------


def _with_faker(source: str) -> str:
    from mockai.generate.prose import seeded_faker
    from mockai.scenario.templates import FakerView

    problems = Problems("<test>")
    text = compile_text(source, 1, "reply.content", problems)
    assert text is not None, problems.items
    with seeded_faker(7) as faker:
        return text.render({"faker": FakerView(faker)})


@pytest.mark.parametrize(
    ("call", "says"),
    [
        ("faker.paragraphs(nb=3000000)", "faker.paragraphs(nb=3,000,000) is more than 1,000"),
        ("faker.paragraphs(3000000)", "faker.paragraphs(nb=3,000,000)"),
        ("faker.unique.paragraphs(nb=5000)", "faker.paragraphs(nb=5,000)"),
        ("faker.csv(num_rows=10000)", "faker.csv(num_rows=10,000)"),
        ("faker.pylist(nb_elements=3000000)", "faker.pylist(nb_elements=3,000,000)"),
        ("faker.password(length=200000000)", "faker.password(length=200,000,000)"),
        ("faker.zip(uncompressed_size=200000000)", "faker.zip(uncompressed_size=200,000,000)"),
        ("faker.image(size=(20000, 20000))", "400,000,000 pixels"),
        # each argument within its bound, together past it (1,000 texts of up to a million
        # characters each: the server stopped answering, SIGTERM included)
        ("faker.texts(nb_texts=1000, max_nb_chars=1000000)", "1,000 items of up to 1,000,000"),
        ("faker.texts(1000, 1000000)", "1,000 items of up to 1,000,000"),
        (
            "faker.json(num_rows=1000, data_columns=[('t', 'pystr', {'max_chars': 100000})])",
            "1,000 items of up to 100,000",
        ),
        ("faker.json(num_rows=100, data_columns={'a': ['texts', {'nb_texts': 100}]})", "10,000"),
    ],
)
def test_a_faker_call_asking_too_much_is_refused_before_it_runs(call: str, says: str) -> None:
    # (the render limits are checked between calls: `faker.paragraphs(nb=3000000)` had held the
    # server 100 s, `faker.image(size=(20000, 20000))` taken 1.6 GB)
    with pytest.raises(TemplateRenderError, match="mockai's bound on one Faker call") as refused:
        _with_faker("{{ " + call + "|length }}")
    assert says in str(refused.value)


def test_faker_calls_within_the_bound_answer_as_faker_does() -> None:
    assert _with_faker("{{ faker.paragraphs(nb=1000)|length }}") == "1000"
    assert _with_faker("{{ faker.texts(nb_texts=1000, max_nb_chars=1000)|length }}") == "1000"
    assert _with_faker("{{ faker.json(num_rows=3)|length > 0 }}") == "True"
    assert _with_faker("{{ faker.password(length=64)|length }}") == "64"
    assert _with_faker("{{ faker.unique.pylist(nb_elements=5)|length > 0 }}") == "True"
    first = _with_faker("{{ faker.sentence(nb_words=12) }}")
    assert first == _with_faker("{{ faker.sentence(nb_words=12) }}")  # (seeded: the same)


@pytest.mark.parametrize(
    "source",
    [
        # squared five times, then divided: each step in C, past any time check (15-110 s)
        "{% set a = 2 ** 99999 %}{% set b = a * a %}{{ (b * b * b) // 7 }}",
        "{% set a = 2 ** 99999 %}{{ ((a * a) // 3) > 0 }}",
        "{% set a = 2 ** 99999 * 2 ** 99999 %}{{ a % 7 }}",
        "{% set a = 2 ** 99999 %}{{ (a * 4) - 1 > 0 }}",
    ],
)
def test_operations_on_integers_past_the_bound_are_refused(source: str) -> None:
    with pytest.raises(TemplateRenderError, match="integers of more than 30,102 digits"):
        render(source)


def test_operations_on_integers_within_the_bound_answer_as_python_does() -> None:
    assert render("{% set a = 2 ** 99999 %}{{ (a // 3) % 1000 }}") == str((2**99999 // 3) % 1000)
    assert render("{{ 7 / 2 }} {{ 7 // 2 }} {{ 7 - 10 }} {{ 10 ** 3 * 3 }}") == "3.5 3 -3 3000"
