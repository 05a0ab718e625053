"""The provider-by-difference table, made from the profiles (README.md, docs/providers.md).

`python -m mockai.profiles.table` prints it; `scripts/gen_profile_table.py` writes it between the
`<!-- profiles:NAME -->` markers of the docs, and a test fails when the docs and the profiles
disagree, so the table cannot drift from what mockai does.
"""

from __future__ import annotations

import re

from mockai.api.codecs import ENDPOINT_PATHS
from mockai.pipeline.exchange import Endpoint
from mockai.profiles import PROFILES
from mockai.profiles.base import Profile

_SAME = "—"  # as OpenAI


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or _SAME


def _row(profile: Profile) -> list[str]:
    absent = [f"`{ENDPOINT_PATHS[e]}`" for e in Endpoint if e not in profile.endpoints]
    # (`/models` is no pipeline endpoint: every profile serves it, in its own shape)
    present = [f"`{ENDPOINT_PATHS[e]}`" for e in Endpoint if e in profile.endpoints] + ["`/models`"]
    if len(present) < len(absent):  # (shorter said the other way round)
        absent = ["all but " + ", ".join(present)]
    if Endpoint.RESPONSES in profile.endpoints and not profile.place.keeps_responses:
        absent.append("the Responses API's state (`/responses/{id}`, `/conversations`: stateless)")
    requests = profile.requests
    fields = []
    if requests is not None and requests.rejects:
        fields.append("refuses " + requests.rejects)
    if requests is not None and requests.ignores:
        fields.append("ignores " + requests.ignores)
    if requests is not None and requests.fills:
        fields.append("fills " + requests.fills)
    if profile.extra_fields.describe():  # (what `--strict-requests` takes beside OpenAI's)
        fields.append(profile.extra_fields.describe())
    chat = profile.chat
    streaming = chat.stream_usage if chat is not None else ""
    if chat is not None and chat.comments:
        comments = ", ".join(f"`: {text}`" for text in chat.comments)
        streaming = f"{streaming}; SSE comments {comments}" if streaming else comments
    errors = profile.errors.envelope
    if profile.errors.extra_statuses:
        errors += "; " + profile.errors.extra_statuses
    finishes = ", ".join(f"`{reason}`" for reason in profile.finish_reasons)
    return [
        f"**{profile.title}** `{profile.name}`",
        ", ".join(f"`{prefix}`" for prefix in profile.prefixes),
        _cell(profile.models_shape),
        _cell(", ".join(absent)),
        _cell("; ".join(fields)),
        _cell(chat.extras if chat is not None else ""),
        _cell(streaming),
        _cell(errors if errors != "OpenAI's" else ""),
        _cell(profile.limits.describe if profile.limits is not None else ""),
        _cell(profile.tool_call_ids),
        _cell(finishes),
        _cell(profile.auth.describe),
    ]


HEADER = (
    "Provider",
    "Served at",
    "`/models`",
    "Not there (its 404)",
    "Request fields",
    "Extras in answers",
    "Streaming",
    "Errors",
    "Rate-limit headers",
    "Tool-call ids",
    "Extra finish reasons",
    "Key",
)


def differences() -> str:
    """The provider-by-difference table (— means: as OpenAI, or no difference confirmed)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for profile in PROFILES.values():
        if profile.by_name:
            lines.append("| " + " | ".join(_row(profile)) + " |")
    return "\n".join(lines) + "\n"


def versions() -> str:
    """What each profile models: the date or version of the provider's API, and the sources."""
    lines = ["| Profile | Models | Facts from |", "|---|---|---|"]
    for profile in PROFILES.values():
        sources = ", ".join(profile.sources) or "the OpenAI API spec"
        lines.append(f"| `{profile.name}` | {_cell(profile.as_of)} | {sources} |")
    return "\n".join(lines) + "\n"


TABLES = {"differences": differences, "versions": versions}


def replace_blocks(text: str) -> str:
    """`text` with every `<!-- profiles:NAME -->` ... `<!-- /profiles:NAME -->` block made anew."""

    def made(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"<!-- profiles:{name} -->\n{TABLES[name]()}<!-- /profiles:{name} -->"

    return re.sub(r"<!-- profiles:(\w+) -->\n.*?<!-- /profiles:\1 -->", made, text, flags=re.DOTALL)


if __name__ == "__main__":
    print(differences(), end="")
