"""What mockai says about itself (metrics, the journal, the inspector's data, the logs), checked
against what its clients were sent: real servers on loopback, the real SDK and prometheus-client's
own parser."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from mockai import MockServer

MODEL = "gpt-4o-mini"
HI = [{"role": "user", "content": "hi"}]


def _scrape(server: MockServer) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The metrics, parsed by prometheus-client's own parser: name -> labels -> value."""
    answer = httpx.get(server.url_for("/_mockai/metrics"))
    assert answer.status_code == 200, answer.text
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _total(
    metrics: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **where: str
) -> float:
    return sum(
        value
        for labels, value in metrics.get(name, {}).items()
        if all((key, want) in labels for key, want in where.items())
    )


def test_an_upstreams_answers_relayed_count_their_tokens_and_streams(tmp_path: Path) -> None:
    # A server relaying an upstream (`--upstream`, recording) counted no tokens at all in
    # mockai_tokens_total, and a relayed stream was never an active stream.
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(
        "mockai: 1\nfallback: generate\nrules:\n  - name: slow\n    match: {user: slow}\n"
        "    reply: {content: one two three four five six seven eight}\n"
        "    stream: {chunk_delay: 150ms}\n"
    )
    with (
        MockServer(scenarios=(str(scenario),), log_requests=False) as upstream,
        MockServer(log_requests=False, upstream=upstream.url) as proxy,
        openai.OpenAI(base_url=proxy.url, api_key="sk-test", max_retries=0) as client,
    ):
        whole = client.chat.completions.create(model=MODEL, messages=HI)
        stream = client.chat.completions.create(
            model=MODEL, messages=HI, stream=True, stream_options={"include_usage": True}
        )
        streamed = [chunk.usage for chunk in stream if chunk.usage is not None][-1]
        answer = client.responses.create(model=MODEL, input="hi")
        slow = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "slow"}], stream=True
        )
        with slow:
            next(iter(slow))
            during = _scrape(proxy)
            list(slow)
        after = _scrape(proxy)
    assert whole.usage is not None and answer.usage is not None
    sent_prompt = whole.usage.prompt_tokens + streamed.prompt_tokens + answer.usage.input_tokens
    sent_completion = (
        whole.usage.completion_tokens + streamed.completion_tokens + answer.usage.output_tokens
    )
    assert _total(after, "mockai_tokens_total", kind="prompt") == sent_prompt
    assert _total(after, "mockai_tokens_total", kind="completion") == sent_completion
    assert _total(during, "mockai_active_streams") == 1
    assert _total(after, "mockai_active_streams") == 0
