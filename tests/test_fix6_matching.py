"""Rule matching: batches matched input by input (as each input sent alone: its own `turn` and
`body`), the no-match report of a batch, hosted tools matched by type, the "can never match"
check for globs and case, and texts compared composed (NFC)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conformance import checked_server
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk import sdk
from test_rule_index import compiled

from mockai import MockServer
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.scenario.index import RuleIndex
from mockai.scenario.matchers.fields import BodyField
from mockai.scenario.matchers.values import ModelGlob
from mockai.scenario.operators import Op, TextTest, compile_text
from mockai.scenario.problems import Problems

EMBEDDING = "text-embedding-3-small"
INSTRUCT = "gpt-3.5-turbo-instruct"

RULES: list[dict[str, Any]] = [
    {
        "name": "pin-query",
        "match": {"endpoint": "embeddings", "body": {"input": "the pinned query"}},
        "reply": {"vector": [1.0, 0.0, 0.0]},
    },
    {
        "name": "alpha-prompt",
        "match": {"endpoint": "completions", "body": {"prompt": "alpha"}},
        "reply": "ALPHA",
    },
    {
        "name": "first-turn",
        "match": {"endpoint": "completions", "turn": 1, "user": {"equals": "beta"}},
        "reply": "BETA",
    },
    # A batch of two prompts is not a second turn: this rule answers nothing.
    {"name": "second-turn", "match": {"endpoint": "completions", "turn": 2}, "reply": "TWO"},
]
# Asked after the rules above (on the server that generates what no rule answers).
CATCH_ALL = {"name": "seeded", "match": {"endpoint": "embeddings"}, "reply": {"seed": 3}}


@pytest.fixture(scope="module", params=["no fallback", "generate"])
def server(request: pytest.FixtureRequest) -> Iterator[Any]:
    generate = request.param == "generate"
    options = {"fallback": "generate"} if generate else {}
    with checked_server(**options) as running:
        running.add_rules([*RULES, CATCH_ALL] if generate else RULES)
        yield running


def post(server: Any, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, timeout=10)


def texts(server: Any, prompt: Any) -> list[str]:
    answer = post(server, "/completions", {"model": INSTRUCT, "prompt": prompt, "max_tokens": 3})
    assert answer.status_code == 200, answer.text
    return [choice["text"] for choice in answer.json()["choices"]]


def vectors(server: Any, given_input: Any) -> list[list[float]]:
    answer = post(server, "/embeddings", {"model": EMBEDDING, "input": given_input})
    assert answer.status_code == 200, answer.text
    return [item["embedding"] for item in answer.json()["data"]]


# --- 1. a batch's inputs are matched as each is sent alone -------------------------------------


@pytest.mark.parametrize(("prompt", "scripted"), [("alpha", "ALPHA"), ("beta", "BETA")])
def test_a_prompt_keeps_its_rule_in_a_batch(server: Any, prompt: str, scripted: str) -> None:
    assert texts(server, prompt) == [scripted]
    first, other = texts(server, [prompt, "gamma"])
    assert first == scripted
    assert other not in ("ALPHA", "BETA", "TWO")
    assert texts(server, ["gamma", prompt])[1] == scripted


def test_the_generated_prompt_of_a_batch_is_its_answer_alone(server: Any) -> None:
    alone = post(server, "/completions", {"model": INSTRUCT, "prompt": "gamma", "max_tokens": 3})
    if server.config.fallback == "generate":
        assert texts(server, ["alpha", "gamma"])[1] == alone.json()["choices"][0]["text"]
    else:  # (alone, it matches no rule: in a batch, it gets the generator's answer)
        assert alone.status_code == 400


def test_a_batch_of_prompts_is_one_turn(server: Any) -> None:
    answer = post(server, "/completions", {"model": INSTRUCT, "prompt": ["x", "y"]})
    if server.config.fallback == "generate":
        assert "TWO" not in [c["text"] for c in answer.json()["choices"]]
    else:
        assert answer.status_code == 400
        assert "turn: 2 | 1" in " ".join(answer.json()["error"]["message"].split())


def test_an_input_pinned_by_body_keeps_its_vector_in_a_batch(server: Any) -> None:
    assert vectors(server, "the pinned query") == [[1.0, 0.0, 0.0]]
    batch = vectors(server, ["a document", "the pinned query"])
    assert batch[1] == [1.0, 0.0, 0.0]
    if server.config.fallback == "generate":  # the catch-all's vector, as alone
        assert batch[0] == vectors(server, "a document")[0]


def test_a_body_condition_on_the_whole_list_still_answers_the_batch() -> None:
    rule = {
        "match": {"endpoint": "embeddings", "body": {"input": ["a", "b"]}},
        "reply": {"vector": [0.0, 1.0]},
    }
    with checked_server() as running:
        running.add_rule(rule)
        assert vectors(running, ["a", "b"]) == [[0.0, 1.0], [0.0, 1.0]]


# --- 2. the no-match report of a batch -----------------------------------------------------------


@pytest.fixture(scope="module")
def strict() -> Iterator[Any]:
    with checked_server() as running:
        running.add_rules(
            [
                {
                    "name": "alpha",
                    "match": {"endpoint": "completions", "user": {"equals": "alpha"}, "turn": 1},
                    "reply": "A",
                },
                {
                    "name": "alpha-vector",
                    "match": {"endpoint": "embeddings", "user": {"equals": "alpha"}},
                    "reply": {"vector": [1.0]},
                },
            ]
        )
        yield running


def report(server: Any, path: str, body: dict[str, Any]) -> list[str]:
    answer = post(server, path, body)
    assert answer.status_code == 400
    return [" ".join(line.split()) for line in answer.json()["error"]["message"].splitlines()]


def test_the_report_of_a_batch_of_prompts_shows_the_closest_prompt_alone(strict: Any) -> None:
    lines = report(strict, "/completions", {"model": INSTRUCT, "prompt": ["alpha ", "zzz"]})
    assert "Closest rule | completions request, prompt 1 of 2" in lines
    assert "user: equals 'alpha' | 'alpha ' <<<<< user does not match" in lines
    assert "turn: 1 | 1" in lines
    assert "rule 'alpha' (<runtime>): 1 of 3 conditions failed" in lines


def test_the_report_of_a_batch_of_inputs_shows_one_input(strict: Any) -> None:
    lines = report(strict, "/embeddings", {"model": EMBEDDING, "input": ["zzz", "alpha "]})
    assert "Closest rule | embeddings request, input 2 of 2" in lines
    assert "user: equals 'alpha' | 'alpha ' <<<<< user does not match" in lines
    assert not any("\\n" in line for line in lines)


# --- 3. hosted tools are matched by their type ---------------------------------------------------

FUNCTION = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}


@pytest.fixture(scope="module")
def tooled() -> Iterator[Any]:
    with checked_server() as running:
        running.add_rules(
            [
                {"match": {"tools": ["web_search", "f"]}, "reply": "searched"},
                # (as the codec named hosted tools inside: still matched)
                {"match": {"tools": ["<web_search_preview>"]}, "reply": "previewed"},
            ]
        )
        yield running


def test_a_hosted_tool_is_matched_by_its_type(tooled: Any) -> None:
    with sdk(tooled) as client:
        answer = client.responses.create(
            model="gpt-4o-mini", input="search", tools=[{"type": "web_search"}, FUNCTION]
        )
        assert answer.output_text == "searched"
        answer = client.responses.create(
            model="gpt-4o-mini", input="search", tools=[{"type": "web_search_preview"}]
        )
        assert answer.output_text == "previewed"


def test_the_report_names_a_hosted_tool_by_its_type(tooled: Any) -> None:
    lines = report(
        tooled,
        "/responses",
        {"model": "gpt-4o-mini", "input": "search", "tools": [{"type": "web_search"}]},
    )
    assert "tools: offers f, web_search | offers web_search <<<<< tools does not match" in lines


# --- 4. the check finds rules shadowed by a glob or a condition ignoring case --------------------

SHADOWED = """\
mockai: 1
rules:
  - name: any-gpt
    match: {model: "gpt-*"}
    reply: a
  - name: gpt4o
    match: {model: "gpt-4o*"}
    reply: b
  - name: hello-any
    match: {user: {contains: hello, ignore_case: true}}
    reply: c
  - name: hello-exact
    match: {user: {equals: "Hello"}}
    reply: d
  - name: mini
    match: {model: "gpt-*mini"}
    reply: e
  - name: hello-loud
    match: {user: {contains: HELLO}, model: "o1"}
    reply: f
"""


def test_the_check_names_rules_a_glob_or_ignore_case_shadows(tmp_path: Path) -> None:
    path = tmp_path / "c1.yaml"
    path.write_text(SHADOWED)
    done = subprocess.run(
        [sys.executable, "-m", "mockai", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    said = done.stdout + done.stderr
    for line, rule, earlier in [
        (6, "gpt4o", "any-gpt"),
        (12, "hello-exact", "hello-any"),
        (15, "mini", "any-gpt"),
        (18, "hello-loud", "hello-any"),
    ]:
        assert f"{path}:{line}: rule '{rule}' can never match: rule '{earlier}' (line " in said


GLOB = st.text(alphabet="ab*?[]!", max_size=5)
# Every model of up to 4 characters over the globs' own letters: exhaustive, so a claim that
# one glob's models are all another's is checked on every model that could refute it.
MODELS = ["".join(t) for n in range(5) for t in itertools.product("ab[]!", repeat=n)]


def glob(text: str) -> ModelGlob | None:
    problems = Problems("t.yaml")
    compiled = ModelGlob.compile(text, 1, "match", problems)
    return compiled[0] if compiled else None  # type: ignore[return-value]


@st.composite
def glob_pairs(draw: st.DrawFn) -> tuple[str, str, bool]:
    """(later, earlier, certain): half of them the earlier glob's text around a random one, so
    that implications are claimed often enough to be checked; `certain` when the earlier glob is
    `P*S` (no other wildcard) and the later one starts with P and ends with S, wildcards or not:
    then every model of the later one is the earlier one's, and that must be seen."""
    fixed = st.text(alphabet="ab!", max_size=2)
    if draw(st.booleans()):
        head, tail = draw(fixed), draw(fixed)
        later = head + draw(GLOB) + tail
        return later, f"{head}*{tail}", draw(st.booleans())
    earlier = draw(GLOB)
    if draw(st.booleans()):
        head, _, tail = earlier.partition("*")
        return head + draw(GLOB) + tail, earlier, False
    return draw(GLOB), earlier, False


@settings(max_examples=300, deadline=None)
@given(glob_pairs())
def test_a_glob_implies_another_only_when_all_its_models_match_it(
    pair: tuple[str, str, bool],
) -> None:
    later_text, earlier_text, certain = pair
    later, earlier = glob(later_text), glob(earlier_text)
    if later is None or earlier is None:
        return  # (an empty glob: a load problem)
    if certain:
        assert later.implies(earlier), (later_text, earlier_text)
    if not later.implies(earlier):
        return
    for model in MODELS:
        if later.pattern is None:
            accepted = model == later.glob
        else:
            accepted = later.pattern.match(model) is not None
        if accepted:
            held = (
                earlier.glob == model if earlier.pattern is None else earlier.pattern.match(model)
            )
            assert held, (later_text, earlier_text, model)


def test_trailing_star_globs_imply_as_expected() -> None:
    def implied(later: str, earlier: str) -> bool:
        mine, theirs = glob(later), glob(earlier)
        assert mine is not None and theirs is not None
        return mine.implies(theirs)

    assert implied("gpt-4o*", "gpt-*")
    assert implied("gpt-4o-*mini", "gpt-*mini")
    assert not implied("gpt-*", "gpt-4o*")
    assert not implied("gpt-?o*", "gpt-4*")


# (dotless i, sigma in its three forms, marks: case folding's corners)
LETTERS = "aAbBßsSİi\u0131\u03a3\u03c3\u03c2\u0307\u0301eé "
OPS = st.sampled_from(["contains", "equals", "startswith", "endswith", "regex"])


def text_test(op: str, value: str, ignore_case: bool, negate: bool) -> TextTest | None:
    if not value and op not in ("equals", "regex"):
        value = "a"
    condition: Any = {op: value, "ignore_case": ignore_case}
    return compile_text({"not": condition} if negate else condition, "w", 1, Problems("t.yaml"))


def passing(test: TextTest, around: list[str]) -> list[str]:
    """Texts `test` may hold for: its value in each case and form, with text around it."""
    value = test.value
    forms = {value, value.upper(), value.lower(), value.casefold(), value.swapcase()}
    forms |= {unicodedata.normalize("NFD", form) for form in forms}
    return [a + form + b for form in forms for a in ["", *around] for b in ["", *around]]


SHORT = st.text(alphabet=LETTERS, max_size=3)
RARELY = st.integers(0, 4).map(lambda n: n == 0)  # (a `not`: implied by its like alone)
CASES = st.sampled_from([str, str.upper, str.lower, str.casefold, str.swapcase])


@st.composite
def later_values(draw: st.DrawFn, earlier: str) -> str:
    """Half of them the earlier value, in some case, with text around it (claims to check)."""
    if draw(st.booleans()):
        return draw(SHORT) + draw(CASES)(earlier) + draw(SHORT)
    return draw(st.text(alphabet=LETTERS, max_size=4))


@settings(max_examples=400, deadline=None)
@given(
    OPS,
    st.data(),
    st.booleans(),
    RARELY,
    OPS,
    st.text(alphabet=LETTERS, min_size=1, max_size=3),
    st.booleans(),
    RARELY,
    st.lists(SHORT, max_size=3),
)
def test_a_text_test_implies_another_only_when_every_text_passing_it_passes_it(
    op: str,
    data: st.DataObject,
    ignore_case: bool,
    negate: bool,
    other_op: str,
    other_value: str,
    other_ignore_case: bool,
    other_negate: bool,
    around: list[str],
) -> None:
    value = data.draw(later_values(other_value))
    later = text_test(op, value, ignore_case, negate)
    earlier = text_test(other_op, other_value, other_ignore_case, other_negate)
    if later is None or earlier is None:
        return
    if (
        earlier.op is Op.CONTAINS
        and earlier.ignore_case
        and not (earlier.negate or later.negate)
        and later.op is not Op.REGEX
        and earlier.value.casefold() in later.value.casefold()
    ):
        # Certain, whatever the later test's case handling: every text passing it holds its
        # value (folded, when it ignores case), so holds the earlier value once folded.
        assert later.implies(earlier), (later.describe(), earlier.describe())
    if not later.implies(earlier):
        return
    for text in [*around, *passing(later, around)]:
        if later.test(text):
            assert earlier.test(text), (later.describe(), earlier.describe(), text)


def test_a_case_sensitive_condition_implies_one_ignoring_case() -> None:
    def implied(later: Any, earlier: Any) -> bool:
        mine = compile_text(later, "w", 1, Problems("t.yaml"))
        theirs = compile_text(earlier, "w", 1, Problems("t.yaml"))
        assert mine is not None and theirs is not None
        return mine.implies(theirs)

    loose = {"contains": "hello", "ignore_case": True}
    assert implied({"equals": "Hello"}, loose)
    assert implied({"startswith": "Oh HELLO"}, loose)
    assert implied({"contains": "straße"}, {"contains": "STRASSE", "ignore_case": True})
    assert not implied({"contains": "hello", "ignore_case": True}, {"contains": "hello"})
    assert not implied({"regex": "Hello"}, loose)


# --- 5. texts are compared composed (NFC) --------------------------------------------------------


# Three rules gated by a literal of their `user` text: enough for the rule index to narrow the
# candidates by the literals the request's text holds (`index._WORTH_INDEXING`).
TOPICS = [{"match": {"endpoint": "chat", "user": f"topic {i}"}, "reply": f"T{i}"} for i in range(3)]


@pytest.fixture(scope="module")
def pinned() -> Iterator[Any]:
    with checked_server(fallback="generate") as running:
        running.add_rules(
            [
                *TOPICS,
                {
                    "match": {"endpoint": "embeddings", "user": {"equals": "café au lait"}},
                    "reply": {"vector": [1.0, 0.0]},
                },
                {
                    # written decomposed, as macOS types it
                    "match": {"endpoint": "chat", "user": {"startswith": "cafe\u0301"}},
                    "reply": "coffee",
                },
            ]
        )
        yield running


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_a_text_condition_holds_composed_or_decomposed(pinned: Any, form: str) -> None:
    text = unicodedata.normalize(form, "café au lait")
    assert vectors(pinned, text) == [[1.0, 0.0]]
    assert vectors(pinned, ["other", text])[1] == [1.0, 0.0]
    with sdk(pinned) as client:
        answer = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
        )
        assert answer.choices[0].message.content == "coffee"


def test_the_report_escapes_texts_that_look_alike() -> None:
    with MockServer(log_requests=False) as running:
        running.add_rule({"match": {"user": {"equals": "\ufb01le"}}, "reply": "x"})
        lines = report(
            running,
            "/chat/completions",
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "file"}]},
        )
    assert "user: equals '\\ufb01le' | 'file' <<<<< user does not match" in lines


# Composed and decomposed letters, and their parts alone, so that literals and texts overlap in
# either form.
ACCENTED = st.lists(st.sampled_from(["é", "e\u0301", "e", "\u0301", "a", " "]), max_size=5).map(
    "".join
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["contains", "equals", "startswith", "endswith"]), ACCENTED),
        min_size=3,
        max_size=8,
    ),
    ACCENTED,
    st.sampled_from(["NFC", "NFD"]),
)
def test_the_index_keeps_every_rule_a_text_in_either_form_matches(
    conditions: list[tuple[str, str]], text: str, form: str
) -> None:
    definitions = [
        {"match": {"user": {op: value or "a"}}, "reply": "x"} for op, value in conditions
    ]
    rules = compiled(definitions)
    request = Exchange(
        endpoint=Endpoint.CHAT,
        model="gpt-4o-mini",
        body={},
        headers={},
        user_text=unicodedata.normalize(form, text),
    )
    candidates = RuleIndex(rules).candidates(request)
    matching = [rule for rule in rules if all(check(request) for check in rule.checks)]
    assert [rule for rule in candidates if rule in matching] == matching


def test_the_report_ranks_a_decomposed_text_as_near_as_its_composed_form() -> None:
    with MockServer(log_requests=False) as running:
        running.add_rules(
            [
                {"name": "far", "match": {"user": {"equals": "cafe au la"}}, "reply": "x"},
                {"name": "near", "match": {"user": {"equals": "café au lait"}}, "reply": "y"},
            ]
        )
        # ("café au lai" is one letter from 'near', two from 'far', in either form)
        text = unicodedata.normalize("NFD", "café au lai")
        answer = post(
            running,
            "/chat/completions",
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]},
        )
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert message.index("rule 'near'") < message.index("rule 'far'"), message


# --- 6. a rule on the whole input list, and a list of one input ---------------------------------

PINS: list[dict[str, Any]] = [
    {
        "name": "pin-b",  # before the list rules: it keeps `b` in their batches
        "match": {"endpoint": "embeddings", "body": {"input": "b"}},
        "reply": {"vector": [1.0, 0.0]},
    },
    {
        "name": "list-ab",
        "match": {"endpoint": "embeddings", "body": {"input": ["a", "b"]}},
        "reply": {"vector": [0.0, 1.0]},
    },
    {
        "name": "list-cd",
        "match": {"endpoint": "embeddings", "body": {"input": ["c", "d"]}},
        "reply": {"vector": [0.0, 2.0]},
    },
    {
        "name": "pin-d",  # after `list-cd`: it does not take `d` from it
        "match": {"endpoint": "embeddings", "body": {"input": "d"}},
        "reply": {"vector": [2.0, 0.0]},
    },
    {
        "name": "user-x",
        "match": {"endpoint": "embeddings", "user": {"equals": "x"}},
        "reply": {"vector": [3.0, 0.0]},
    },
    {
        "name": "pin-q",  # written as a list of one
        "match": {"endpoint": "embeddings", "body": {"input": ["q"]}},
        "reply": {"vector": [4.0, 0.0]},
    },
    {
        "name": "pin-moderation",
        "match": {"endpoint": "moderations", "body": {"input": "flag me"}},
        "reply": {"flagged": True, "categories": {"violence": True}},
    },
    {"name": "catch-all", "match": {"endpoint": "embeddings"}, "reply": {"vector": [9.0, 9.0]}},
]


@pytest.fixture(scope="module")
def lists() -> Iterator[Any]:
    with checked_server(fallback="generate") as running:
        running.add_rules(PINS)
        yield running


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        (["a", "b"], [[0.0, 1.0], [1.0, 0.0]]),  # `b`: pin-b, written first
        (["c", "d"], [[0.0, 2.0], [0.0, 2.0]]),  # `d`: list-cd, written before pin-d
        (["a", "c"], [[9.0, 9.0], [9.0, 9.0]]),  # no list rule: the catch-all
        (["x", "y"], [[3.0, 0.0], [9.0, 9.0]]),  # a `user` rule answers its input only
        (["d", "x"], [[2.0, 0.0], [3.0, 0.0]]),
    ],
)
def test_a_rule_on_the_whole_list_answers_the_batch_before_a_catch_all(
    lists: Any, batch: list[str], expected: list[list[float]]
) -> None:
    assert vectors(lists, batch) == expected


@pytest.mark.parametrize("sent", ["q", ["q"], ["other", "q"], ["q", "x"]])
def test_a_rule_written_as_a_list_of_one_pins_its_input(lists: Any, sent: Any) -> None:
    index = sent.index("q") if isinstance(sent, list) else 0
    assert vectors(lists, sent)[index] == [4.0, 0.0]


def test_a_pinned_input_sent_as_a_list_of_one_keeps_its_pin(lists: Any, server: Any) -> None:
    with sdk(server) as client:
        for sent in (["the pinned query"], "the pinned query"):
            answer = client.embeddings.create(model=EMBEDDING, input=sent)
            assert answer.data[0].embedding == [1.0, 0.0, 0.0]
    assert texts(server, ["alpha"]) == ["ALPHA"]  # a list of one prompt
    with sdk(lists) as client:
        for sent in (["flag me"], "flag me", ["fine", "flag me"]):
            result = client.moderations.create(input=sent).results[-1]
            assert result.flagged, sent


def test_langchain_embed_query_gets_the_pinned_vector(lists: Any) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    # (without `check_embedding_ctx_length=False` it sends token ids, which tiktoken makes
    # from encodings it downloads)
    embedder = langchain_openai.OpenAIEmbeddings(
        model=EMBEDDING, base_url=lists.url, api_key="sk-test", check_embedding_ctx_length=False
    )
    assert embedder.embed_query("q") == [4.0, 0.0]  # sent as ["q"]
    assert embedder.embed_documents(["a document", "q"])[1] == [4.0, 0.0]


JSON_SCALARS = st.one_of(st.text(max_size=4), st.integers(-3, 3), st.booleans(), st.none())
# (not a list of one: one level of list is unwrapped, `[[x]]` is not `x`)
JSON_VALUES = st.one_of(
    JSON_SCALARS, st.lists(JSON_SCALARS, max_size=3).filter(lambda v: len(v) != 1)
)


def body_holds(wanted: Any, sent: Any, endpoint: Endpoint, field: str = "input") -> bool:
    problems = Problems("<test>")
    (condition,) = BodyField.compile({field: wanted}, 1, "match", problems)
    request = Exchange(endpoint=endpoint, model="m", body={field: sent}, headers={})
    return condition.holds(request) and condition.predicate()(request)


@settings(max_examples=150, deadline=None)
@given(JSON_VALUES, JSON_VALUES, st.sampled_from(list(Endpoint)))
def test_a_list_of_one_input_is_that_input_only_in_an_inputs_field(
    wanted: Any, other: Any, endpoint: Endpoint
) -> None:
    field = "prompt" if endpoint is Endpoint.COMPLETIONS else "input"
    inputs = endpoint in (Endpoint.EMBEDDINGS, Endpoint.MODERATIONS, Endpoint.COMPLETIONS)
    for rule, sent in [(wanted, wanted), ([wanted], [wanted])]:
        assert body_holds(rule, sent, endpoint, field)
    for rule, sent in [(wanted, [wanted]), ([wanted], wanted)]:
        assert body_holds(rule, sent, endpoint, field) is inputs, (rule, sent)
    if other != wanted and [other] != wanted and other != [wanted]:
        # Told apart as before: only a list of one is its item.
        assert not body_holds(wanted, other, endpoint, field)
        assert not body_holds(wanted, [other], endpoint, field)
