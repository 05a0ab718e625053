"""Moderations through the real SDK."""

from __future__ import annotations

import openai
import pytest


def test_flags_violence_not_small_talk(client: openai.OpenAI) -> None:
    result = client.moderations.create(input=["I will kill you", "What a lovely day for a walk"])
    assert result.id.startswith("modr-")
    threat, benign = result.results
    assert threat.flagged and threat.categories.violence
    assert threat.category_scores.violence > 0.5
    assert not benign.flagged
    assert max(benign.category_scores.model_dump().values()) < 0.1
    assert threat.category_applied_input_types.violence == ["text"]


def test_multimodal_input(client: openai.OpenAI) -> None:
    result = client.moderations.create(
        model="omni-moderation-latest",
        input=[
            {"type": "text", "text": "hello"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ],
    )
    assert len(result.results) == 1
    assert "image" in result.results[0].category_applied_input_types.violence


@pytest.mark.asyncio
async def test_async(aclient: openai.AsyncOpenAI) -> None:
    result = await aclient.moderations.create(input="I will kill you")
    assert result.results[0].flagged
