"""Reply templates: bounded rendering (a runaway loop no longer freezes the server, a huge
string is refused), and reproducible text (the `random` filter, `lipsum()` and faker's dates
follow the seed, not the process's RNG or the wall clock)."""

from __future__ import annotations

import contextlib
import datetime as dt
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from conformance import checked_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_support import ServeProcess

from mockai import MockServer

MODEL = "gpt-4o-mini"
CREATED = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)  # the `created` instant


def write(folder: Path, text: str, name: str = "scenario.yaml") -> Path:
    """A scenario file in `folder` (the text is dedented)."""
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def chat(url: str, user: str, timeout: float = 30) -> tuple[int, Any]:
    """(status, content or error body) of one chat request sent with httpx."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": user}]}
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=timeout)
    data = response.json()
    if response.status_code != 200:
        return response.status_code, data["error"]
    return 200, data["choices"][0]["message"]["content"]


@contextlib.contextmanager
def cli_server(*args: str) -> Iterator[str]:
    """`mockai serve` in its own process (killed at the end, whatever it is doing): its URL."""
    with ServeProcess(["--quiet", *args]) as process:
        yield process.base_url


# --- 1. bounded rendering ----------------------------------------------------------------------

LOOP = """
mockai: 1
rules:
  - name: loop
    match: {user: loop}
    reply: "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
  - name: ping
    match: {user: ping}
    reply: "pong {{ request.model }}"
"""


def test_a_runaway_loop_answers_400_while_the_server_keeps_answering(tmp_path: Path) -> None:
    with cli_server("--scenario", str(write(tmp_path, LOOP))) as url:
        assert chat(url, "ping") == (200, f"pong {MODEL}")
        answers: list[tuple[int, Any]] = []

        def ask() -> None:
            with contextlib.suppress(httpx.HTTPError):  # (no answer: the assertions below say)
                answers.append(chat(url, "loop", timeout=60))

        started = time.monotonic()
        looping = threading.Thread(target=ask)
        looping.start()
        # Health checks all along the render: each answers (at worst after the render limit).
        checks = 0
        while looping.is_alive() and time.monotonic() - started < 30:
            health = httpx.get(f"{url}/_mockai/health", timeout=5)
            assert health.status_code == 200
            checks += 1
        looping.join(timeout=60)
        assert checks >= 1
        assert answers, "the runaway template never answered"
        status, error = answers[0]
        assert time.monotonic() - started < 20
        assert status == 400 and error["code"] == "mockai_template_error"
        assert error["message"].startswith("rule 'loop' reply")
        assert "template time limit: rendering took more than 1 s" in error["message"]
        assert chat(url, "ping") == (200, f"pong {MODEL}")  # and serving goes on


SIZES = """
mockai: 1
rules:
  - name: product
    match: {user: product}
    reply: "{{ 'x' * 10**7 }}"
  - name: pieces
    match: {user: pieces}
    reply: "{% for i in range(100000) %}{{ 'y' * 100 }}{% endfor %}"
  - name: doubling
    match: {user: doubling}
    reply: "{% set ns = namespace(s='z') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"
  - name: power
    match: {user: power}
    reply: "{{ 7 ** 10000000 }}"
  - name: halves
    match: {user: halves}
    reply:
      json: {a: "{{ 'a' * 3000000 }}", b: "{{ 'b' * 3000000 }}"}
  - name: normal
    match: {user: normal}
    reply: "{% for i in range(3) %}{{ i * 2 }}{{ 'ab' ~ i }}{{ '%d' % i }}{{ loop.length }}{% endfor %} {{ 2 ** 10 }} {{ ['q'] * 2 + ['r'] }}"
"""


def test_a_template_past_the_size_limit_answers_400_and_ordinary_ones_render(
    tmp_path: Path,
) -> None:
    with checked_server(scenarios=(str(write(tmp_path, SIZES)),)) as server:
        expected = "0ab0032ab1134ab223 1024 ['q', 'q', 'r']"
        assert chat(server.base_url, "normal") == (200, expected)
        for user in ("product", "pieces", "doubling", "halves"):  # halves: 2 x 3 M, one budget
            started = time.monotonic()
            status, error = chat(server.base_url, user)
            assert time.monotonic() - started < 10
            assert status == 400 and error["code"] == "mockai_template_error", (user, status)
            assert error["message"].startswith(f"rule '{user}' reply"), error["message"]
            assert "template size limit" in error["message"], error["message"]
        status, error = chat(server.base_url, "power")
        assert status == 400 and "7 ** 10000000 has more than 30,102 digits" in error["message"]


# --- 2 and 3. reproducible text ----------------------------------------------------------------

SEEDED = """
mockai: 1
seed: 7
rules:
  - name: pick
    match: {user: {startswith: pick}}
    reply: "{{ ['red', 'green', 'blue', 'cyan', 'magenta', 'yellow', 'black', 'white']|random }} {{ range(1000)|random }}"
  - name: lorem
    match: {user: {startswith: lorem}}
    reply: "{{ lipsum(2, html=false, min=5, max=9) }}|{{ lipsum(1) }}"
  - name: empty
    match: {user: empty}
    reply: "{{ []|random }}"
  - name: when
    match: {user: {startswith: when}}
    reply: "{{ faker.date_time() }}|{{ faker.unix_time() }}|{{ faker.date_this_month() }}|{{ faker.future_date() }}|{{ faker.iso8601() }}|{{ faker.date_of_birth() }}"
"""
ASKS = ("pick one", "pick two", "lorem one", "lorem two", "when one", "when two")


def answers(url: str, asks: tuple[str, ...] = ASKS) -> list[tuple[int, Any]]:
    return [chat(url, ask) for ask in asks]


def test_random_lipsum_and_dates_give_the_same_text_in_another_process(tmp_path: Path) -> None:
    path = str(write(tmp_path, SEEDED))
    with MockServer(scenarios=(path,), log_requests=False) as server:
        here = answers(server.base_url)
        again = answers(server.base_url)
    with cli_server("--scenario", path) as url:
        there = answers(url)
        status, error = chat(url, "empty")
    assert all(status == 200 for status, _ in here), here
    assert here == again == there
    assert status == 400 and "No random item, sequence was empty" in error["message"]


def test_faker_dates_read_the_created_instant_not_the_wall_clock(tmp_path: Path) -> None:
    from faker import Faker

    with checked_server(scenarios=(str(write(tmp_path, SEEDED)),)) as server:
        status, text = chat(server.base_url, "when")
        today = dt.date.today()
        theirs = Faker().date_this_month()  # the test's own Faker, in the server's process
    assert status == 200
    moment, unix, this_month, future, iso, born = text.split("|")
    assert dt.datetime.fromisoformat(moment) < CREATED.replace(tzinfo=None)
    assert float(unix) < CREATED.timestamp()
    assert this_month == "2025-01-01"  # "this month, before now": now is 2025-01-01T00:00Z
    assert CREATED.date() < dt.date.fromisoformat(future) <= dt.date(2025, 1, 31)
    assert dt.datetime.fromisoformat(iso) < CREATED.replace(tzinfo=None)
    assert dt.date.fromisoformat(born) < CREATED.date()
    # The stopped clock is mockai's own: `datetime` and other Fakers still read the real one.
    assert abs(dt.datetime.now().timestamp() - time.time()) < 60
    if dt.date.today() == today:  # (not across a midnight)
        assert theirs.replace(day=1) == today.replace(day=1)


TEMPLATE_PARTS = (
    "{{ range(100)|random }}",
    "{{ ['a', 'b', 'c']|random }}",
    "{{ lipsum(1, html=false, min=3, max=6) }}",
    "{{ faker.date_time() }}",
    "{{ faker.unix_time() }}",
    "{{ faker.date_this_year() }}",
    "{{ faker.first_name() }}",
)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    parts=st.lists(st.sampled_from(TEMPLATE_PARTS), min_size=1, max_size=4),
    seed=st.integers(0, 2**31),
    user=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20),
    paragraphs=st.integers(1, 3),
    shortest=st.integers(2, 6),
    longer=st.integers(1, 6),
)
def test_same_request_and_seed_in_two_fresh_servers_give_the_same_text(
    tmp_path: Path,
    parts: list[str],
    seed: int,
    user: str,
    paragraphs: int,
    shortest: int,
    longer: int,
) -> None:
    lorem = f"{{{{ lipsum({paragraphs}, html=false, min={shortest}, max={shortest + longer}) }}}}"
    template = " ".join(parts).replace("'", "''")
    scenario = f"""
    mockai: 1
    rules:
      - name: any
        match: {{endpoint: chat}}
        reply: '{template}|{lorem}'
    """
    path = str(write(tmp_path, scenario, f"s{seed}.yaml"))

    def render() -> str:
        with MockServer(scenarios=(path,), seed=seed, log_requests=False) as server:
            status, text = chat(server.base_url, user)
        assert status == 200, text
        return str(text)

    first, second = render(), render()
    assert first == second
    # lipsum's shape: the paragraphs asked for, each of min to max-1 words, ending a sentence.
    made = first.rsplit("|", 1)[1].split("\n\n")
    assert len(made) == paragraphs
    for paragraph in made:
        assert shortest <= len(paragraph.split()) < shortest + longer
        assert paragraph.endswith(".")
