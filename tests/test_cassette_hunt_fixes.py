"""Cassette loading, checking and replay: what a cassette holds that the server cannot send is
refused at load (serve does not start) with `file:line`, as `mockai check` reports it; compressed
bodies replay decoded; bodiless routed POSTs replay; check and serve agree on mixed folders."""

from __future__ import annotations

import base64
import gzip
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import brotli
import conformance
import httpx
import openai
import pytest
import vcr
import zstandard
from aiohttp import web
from cassette_support import LoopbackApp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockai import MockServer
from mockai.cassette import CassetteFile, DecodeError
from mockai.cassette.encodings import MAX_DECODED_BYTES
from mockai.cassette.matching import RequestView
from mockai.cassette.redact import Scrubber
from mockai.cli import main

ROOT = Path(__file__).resolve().parent.parent
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = {
    "id": "chatcmpl-zstd",
    "object": "chat.completion",
    "created": 1735689600,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello zstd", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
}

INTERACTION = """\
- request:
    body: '{{"model":"m","messages":[{{"role":"user","content":"q{n}"}}]}}'
    headers: {{}}
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body: {{string: '{{}}'}}
    headers: {{content-type: [application/json]}}
    status: {{code: {code}, message: OK}}
"""
LINES_PER_INTERACTION = INTERACTION.count("\n")
HTTP = ("100", "200", "429", "599")  # statuses that load (the first and last HTTP has)


def _yaml_cassette(codes: list[str]) -> str:
    interactions = "".join(INTERACTION.format(n=n, code=code) for n, code in enumerate(codes))
    return "interactions:\n" + interactions + "version: 1\n"


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mockai serve` that is expected to refuse to start (bounded: it must exit)."""
    return subprocess.run(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def _check(*paths: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mockai", "check", *paths],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


# --- 1. a status that is not HTTP's --------------------------------------------------------------


@pytest.mark.parametrize("code", ["4290", "600", "42", "99"])
def test_a_status_http_cannot_send_stops_serve_at_its_line_as_check_says(
    tmp_path: Path, code: str
) -> None:
    path = tmp_path / "status.yaml"
    path.write_text(_yaml_cassette(["200", code]))
    where = f"{path}:{2 + LINES_PER_INTERACTION}: interaction 1"
    expected = f"{where}: response status {code} is not an HTTP status"
    served = _serve("--cassette", str(path))
    assert served.returncode == 2, served.stdout + served.stderr
    assert f"mockai: {expected}" in served.stderr
    assert "listening" not in served.stdout
    checked = _check(str(path))
    assert checked.returncode == 1
    assert checked.stderr.splitlines()[0] == expected


# --- 2. a malformed interaction, at its own line --------------------------------------------------


def test_a_malformed_interaction_is_reported_at_its_line_by_check_and_serve(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(_yaml_cassette(["200"] * 5 + ["two hundred"]))
    start = 2 + 5 * LINES_PER_INTERACTION
    assert path.read_text().splitlines()[start - 1] == "- request:"
    expected = f"{path}:{start}: interaction 5 is not a vcrpy interaction"
    checked = _check(str(path))
    assert checked.stderr.startswith(expected), checked.stderr
    served = _serve("--cassette", str(path))
    assert served.returncode == 2
    assert f"mockai: {expected}" in served.stderr, served.stderr


def test_a_json_cassette_names_the_line_too(tmp_path: Path) -> None:
    good = {
        "request": {
            "body": json.dumps(CHAT),
            "headers": {},
            "method": "POST",
            "uri": "https://api.openai.com/v1/chat/completions",
        },
        "response": {
            "body": {"string": "{}"},
            "headers": {"Content-Type": ["application/json"]},
            "status": {"code": 200, "message": "OK"},
        },
    }
    bad = {**good, "response": {**good["response"], "status": {"code": 4290, "message": "x"}}}
    text = json.dumps({"interactions": [good, good, bad], "version": 1}, indent=4)
    path = tmp_path / "c.json"
    path.write_text(text)
    starts = [n for n, line in enumerate(text.splitlines(), 1) if line == "        {"]
    with pytest.raises(DecodeError) as raised:
        CassetteFile.load(path)
    assert str(raised.value) == (
        f"{path}:{starts[2]}: interaction 2: response status 4290 is not an HTTP status"
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(codes=st.lists(st.sampled_from([*HTTP, "x", "4290", "600", "99"]), min_size=1, max_size=8))
def test_the_first_unreadable_interaction_is_named_at_its_own_line(codes: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_text(_yaml_cassette(codes))
        bad = next((n for n, code in enumerate(codes) if code not in HTTP), None)
        if bad is None:
            assert len(CassetteFile.load(path).interactions) == len(codes)
            return
        with pytest.raises(DecodeError) as raised:
            CassetteFile.load(path)
        line = 2 + bad * LINES_PER_INTERACTION
        assert str(raised.value).startswith(f"{path}:{line}: interaction {bad}")


# --- 3. zstd and br bodies -----------------------------------------------------------------------


def _compressing_upstream() -> LoopbackApp:
    async def chat(request: web.Request) -> web.Response:
        data = json.dumps(ANSWER).encode()
        if "zstd" in request.headers.get("Accept-Encoding", ""):
            packed = zstandard.ZstdCompressor().compress(data)
            headers = {"Content-Encoding": "zstd", "Content-Type": "application/json"}
            return web.Response(body=packed, headers=headers)
        return web.Response(body=data, content_type="application/json")

    return LoopbackApp({"/v1/chat/completions": chat})


def test_a_zstd_body_vcrpy_recorded_replays_decoded(tmp_path: Path) -> None:
    cassette = tmp_path / "zstd.yaml"
    with _compressing_upstream() as upstream, vcr.use_cassette(str(cassette)):
        recorded = httpx.post(upstream.url + "/chat/completions", json=CHAT)
    assert recorded.request.headers["accept-encoding"].endswith("zstd")  # httpx asks for it
    assert "- zstd" in cassette.read_text()  # (so the cassette holds the compressed bytes)
    with (
        MockServer(cassette=str(cassette), allow_repeats=True, log_requests=False) as server,
        openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client,
    ):
        assert client.chat.completions.create(**CHAT).to_dict() == ANSWER
        raw = httpx.post(server.url + "/chat/completions", json=CHAT)
    assert "content-encoding" not in raw.headers
    assert raw.json() == ANSWER
    assert _check(str(cassette)).returncode == 0


def _encoded_interaction(body: bytes, encoding: str) -> str:
    packed = base64.b64encode(body).decode()
    return (
        "- request:\n    body: null\n    headers: {}\n    method: GET\n"
        "    uri: https://api.openai.com/v1/models\n  response:\n"
        f"    body: {{string: !!binary '{packed}'}}\n"
        f"    headers:\n      Content-Encoding: ['{encoding}']\n"
        "      Content-Type: [application/json]\n"
        "    status: {code: 200, message: OK}\n"
    )


def _encoded_cassette(body: bytes, encoding: str) -> str:
    return "interactions:\n" + _encoded_interaction(body, encoding) + "version: 1\n"


def _hidden(tmp_path: Path, module: str) -> dict[str, str]:
    """An environment in which `module` cannot be imported, as if it were not installed."""
    folder = tmp_path / "hidden"
    folder.mkdir(exist_ok=True)
    (folder / f"{module}.py").write_text(f"raise ImportError('{module} is not installed')\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT / "tests")])}


def test_a_zstd_body_without_zstandard_stops_serve_and_check_names_the_package(
    tmp_path: Path,
) -> None:
    path = tmp_path / "zstd.yaml"
    packed = zstandard.ZstdCompressor().compress(b"{}")
    path.write_text(
        "interactions:\n"
        + INTERACTION.format(n=0, code=200)
        + _encoded_interaction(packed, "zstd")
        + "version: 1\n"
    )
    env = _hidden(tmp_path, "zstandard")
    expected = (
        f"{path}:{2 + LINES_PER_INTERACTION}: interaction 1: its response body is zstd-encoded "
        "and mockai needs the zstandard package to decode it: pip install zstandard"
    )
    served = _serve("--cassette", str(path), env=env)
    assert served.returncode == 2
    assert f"mockai: {expected}" in served.stderr, served.stderr
    checked = _check(str(path), env=env)
    assert checked.returncode == 1
    assert checked.stderr.splitlines()[0] == expected


def test_a_br_body_replays_decoded_or_names_brotli(tmp_path: Path) -> None:
    path = tmp_path / "br.yaml"
    brotli = next(
        (m for m in ("brotli", "brotlicffi") if importlib.util.find_spec(m) is not None), None
    )
    if brotli is None:
        path.write_text(_encoded_cassette(b"\x1b\x01\x00\x00", "br"))
        with pytest.raises(DecodeError, match="pip install brotli"):
            CassetteFile.load(path)
        return
    module = importlib.import_module(brotli)
    path.write_text(_encoded_cassette(module.compress(b'{"data": []}'), "br"))
    [interaction] = CassetteFile.load(path).interactions
    assert interaction.response_body == b'{"data": []}'


def test_an_encoding_mockai_cannot_decode_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "compress.yaml"
    path.write_text(_encoded_cassette(b"\x1f\x9d\x90", "compress"))
    with pytest.raises(DecodeError, match=r":2: interaction 0: its response body is compress-"):
        CassetteFile.load(path)


ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
    "br": brotli.compress,
    "identity": lambda data: data,
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=512),
    encodings=st.lists(st.sampled_from(sorted(ENCODERS)), min_size=1, max_size=3),
)
def test_any_body_under_any_stack_of_encodings_loads_as_it_was(
    body: bytes, encodings: list[str]
) -> None:
    packed = body
    for encoding in encodings:  # applied in the order the header lists them
        packed = ENCODERS[encoding](packed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_text(_encoded_cassette(packed, ", ".join(encodings)))
        [interaction] = CassetteFile.load(path).interactions
    assert interaction.response_body == body
    assert "content-encoding" not in {name.lower() for name in interaction.response_headers}


# --- 3b. decoding is bounded -----------------------------------------------------------------

MIB = 1 << 20


def _zstd_frames(mebibytes: int) -> bytes:
    """A zstd body of `mebibytes` MiB of zeros, as that many 1 MiB frames (made in milliseconds)."""
    return zstandard.ZstdCompressor().compress(bytes(MIB)) * mebibytes


def _deflate_stream(mebibytes: int, wbits: int) -> bytes:
    """A deflate stream (zlib-wrapped, gzip-wrapped or raw by `wbits`) of more than the bound of
    zeros: one fully flushed 1 MiB block, which refers to nothing before it, repeated."""
    block = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    segment = block.compress(bytes(MIB)) + block.flush(zlib.Z_FULL_FLUSH)
    raw = segment * mebibytes + b"\x03\x00"  # (then an empty final block)
    if wbits < 0:
        return raw
    # (the checksums are never reached: decoding stops at the bound)
    if wbits & 16:  # gzip: header, data, CRC-32 and size
        return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + raw + bytes(8)
    return b"\x78\x01" + raw + bytes(4)  # zlib: header, data, Adler-32


BOMBS: dict[str, Callable[[int], bytes]] = {
    "gzip": lambda mib: _deflate_stream(mib, zlib.MAX_WBITS | 16),
    "deflate": lambda mib: _deflate_stream(mib, zlib.MAX_WBITS),
    "raw-deflate": lambda mib: _deflate_stream(mib, -zlib.MAX_WBITS),
    "zstd": _zstd_frames,
    "br": lambda mib: brotli.compress(bytes(mib * MIB), quality=0),
}


@pytest.mark.parametrize("form", sorted(BOMBS))
def test_a_body_decodes_up_to_the_bound_and_no_further(tmp_path: Path, form: str) -> None:
    """256 MiB (above any answer of the API) load; a MiB more is refused at its line, whatever
    the coding."""
    encoding = form.removeprefix("raw-")
    bound = MAX_DECODED_BYTES // MIB
    path = tmp_path / "c.yaml"
    if form == "zstd":  # (the whole bound itself, for the cheapest to make)
        path.write_text(_encoded_cassette(BOMBS[form](bound), encoding))
        [interaction] = CassetteFile.load(path).interactions
        assert len(interaction.response_body) == MAX_DECODED_BYTES
        assert not interaction.response_body.strip(b"\0")
        del interaction
    path.write_text(_encoded_cassette(BOMBS[form](bound + 1), encoding))
    with pytest.raises(DecodeError) as refused:
        CassetteFile.load(path)
    assert str(refused.value) == (
        f"{path}:2: interaction 0: its {encoding}-encoded response body decodes to more than "
        "256 MiB, more than any answer of the API: the cassette is damaged or hostile"
    )


def test_a_decompression_bomb_stops_check_and_serve_without_taking_its_memory(
    tmp_path: Path,
) -> None:
    """4 GiB of zeros in 128 KiB of zstd: `serve` refuses it at its line and never holds more
    than the bound of it (it held all 4 GiB, taking seconds, before; `check` reads cassettes
    with the same loader)."""
    path = tmp_path / "bomb.yaml"
    bomb = zstandard.ZstdCompressor().compress(bytes(64 * MIB)) * 64
    path.write_text(
        "interactions:\n"
        + INTERACTION.format(n=0, code=200)
        + _encoded_interaction(bomb, "zstd")
        + "version: 1\n"
    )
    expected = (
        f"{path}:{2 + LINES_PER_INTERACTION}: interaction 1: its zstd-encoded response body "
        "decodes to more than 256 MiB, more than any answer of the API: the cassette is damaged "
        "or hostile"
    )
    # `serve` run by a process of its own, whose children's peak RSS is then `serve`'s alone
    serve = [sys.executable, "-m", "mockai", "serve", "--port", "0", "--cassette", str(path)]
    probe = subprocess.run(
        [sys.executable, "-c", PEAK_OF_CHILD, *serve], capture_output=True, text=True, timeout=180
    )
    served = json.loads(probe.stdout)
    assert served["code"] == 2
    assert f"mockai: {expected}" in served["stderr"], served["stderr"]
    assert served["peak_kib"] < 768 * 1024, served["peak_kib"]  # (the bound and the server)


PEAK_OF_CHILD = """\
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=150)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
print(json.dumps({"code": done.returncode, "stderr": done.stderr, "peak_kib": peak}))
"""


# --- 4. bodiless routed POSTs --------------------------------------------------------------------


@pytest.fixture
def recorded_batch(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    """A cassette recorded through mockai from a (real, conformance-checked) mockai upstream: a
    file upload, a batch made of it, and the batch's cancel (a POST without a body)."""
    cassette = tmp_path / "batch.yaml"
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": CHAT}
    with (
        conformance.checked_server() as upstream,
        MockServer(cassette=str(cassette), record_mode="once", upstream=upstream.url) as proxy,
        openai.OpenAI(base_url=proxy.url, api_key="sk-test", max_retries=0) as client,
    ):
        upload = client.files.create(
            file=("in.jsonl", json.dumps(line).encode() + b"\n"), purpose="batch"
        )
        batch = client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        status = client.batches.cancel(batch.id).status
    assert status == "cancelling"
    assert "body: null" in cassette.read_text()  # the recorder stores no body for the cancel
    yield cassette, upload.id, batch.id


def _replay_batch(cassette: Path, file_id: str, batch_id: str) -> str:
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": CHAT}
    with (
        MockServer(cassette=str(cassette), log_requests=False) as server,
        openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client,
    ):
        upload = client.files.create(
            file=("in.jsonl", json.dumps(line).encode() + b"\n"), purpose="batch"
        )
        assert upload.id == file_id
        batch = client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert batch.id == batch_id
        status = client.batches.cancel(batch.id).status
        assert [entry.source for entry in server.requests] == ["cassette"] * 3
    return status


def test_a_recorded_batch_cancel_replays(recorded_batch: tuple[Path, str, str]) -> None:
    assert _replay_batch(*recorded_batch) == "cancelling"


def test_a_cancel_sent_with_an_empty_json_body_replays_the_same_recording(
    recorded_batch: tuple[Path, str, str],
) -> None:
    cassette, _, batch_id = recorded_batch
    with MockServer(cassette=str(cassette), log_requests=False, allow_repeats=True) as server:
        sent = httpx.post(f"{server.url}/batches/{batch_id}/cancel", json={})
        assert sent.status_code == 200, sent.text
        assert sent.json()["status"] == "cancelling"
        assert server.requests[-1].source == "cassette"


def test_a_cancel_vcrpy_recorded_around_the_sdk_replays(tmp_path: Path) -> None:
    # pytest-recording's way: vcrpy stores what the SDK sent (the cancel: no body at all).
    cassette = tmp_path / "vcrpy.yaml"
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": CHAT}
    with (
        conformance.checked_server() as upstream,
        vcr.use_cassette(str(cassette), record_mode="once"),
        openai.OpenAI(base_url=upstream.url, api_key="sk-test", max_retries=0) as client,
    ):
        upload = client.files.create(
            file=("in.jsonl", json.dumps(line).encode() + b"\n"), purpose="batch"
        )
        batch = client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert client.batches.cancel(batch.id).status == "cancelling"
    assert _replay_batch(cassette, upload.id, batch.id) == "cancelling"


# --- 5. a folder holding scenarios and cassettes -------------------------------------------------


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(ROOT / "scenarios" / "faq.yaml", folder / "faq.yaml")
    shutil.copy(ROOT / "cassettes" / "chat_json.yaml", folder / "chat_json.yaml")
    (folder / "notes.json").write_text('{"not": "a cassette"}')
    return folder


def test_check_and_serve_agree_on_a_folder_of_scenarios_and_cassettes(mixed: Path) -> None:
    assert main(["check", str(mixed)]) == 0
    # `--scenario FOLDER` loads its scenario files and leaves the cassette to `--cassette` ...
    with (
        MockServer(scenarios=(str(mixed),), log_requests=False) as server,
        openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client,
    ):
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "When are you open?"}]
        )
        assert reply.choices[0].message.content == (
            "We are open Monday to Friday, 9am to 6pm (CET)."
        )
    # ... and `--cassette FOLDER` replays its cassettes, leaving the scenario file (and other
    # JSON) alone, as `mockai check` does.
    recorded = CassetteFile.load(mixed / "chat_json.yaml").interactions[0]
    assert recorded.request_body is not None
    with MockServer(cassette=str(mixed), log_requests=False) as server:
        answer = httpx.post(
            server.url + "/chat/completions", json=json.loads(recorded.request_body)
        )
        assert answer.status_code == 200
        assert answer.content == recorded.response_body
        assert server.requests[-1].source == "cassette"


def test_a_broken_scenario_in_a_mixed_folder_is_still_refused_by_both(mixed: Path) -> None:
    (mixed / "zz.yaml").write_text("mockai: 1\nrules:\n  - {name: a, repy: x}\n")
    assert main(["check", str(mixed)]) == 1
    served = _serve("--scenario", str(mixed))
    assert served.returncode == 2
    assert "unknown key 'repy'" in served.stderr
    assert "chat_json.yaml" not in served.stderr


def test_a_scenario_folder_of_cassettes_only_points_to_cassette(mixed: Path) -> None:
    (mixed / "faq.yaml").unlink()
    served = _serve("--scenario", str(mixed))
    assert served.returncode == 2
    assert "no scenario files (*.yaml, *.yml) found" in served.stderr
    assert "cassettes: replay them with --cassette PATH" in served.stderr
    (mixed / "chat_json.yaml").unlink()  # an empty folder: no hint to give
    assert "--cassette" not in _serve("--scenario", str(mixed)).stderr


# --- 6. whole numbers written either way ---------------------------------------------------------


def test_a_whole_number_recorded_as_0_replays_to_a_client_sending_0_0(tmp_path: Path) -> None:
    """openai-node writes `temperature: 0.0` as `0`; a Python app sends `0.0`: the recording
    matches (it was `the bodies differ` before), and a different number still does not."""
    path = tmp_path / "node.json"
    recorded = {**CHAT, "temperature": 0, "top_p": 1, "tools": [_TOOL]}
    interaction = {
        "request": {
            "method": "POST",
            "uri": "https://api.openai.com/v1/chat/completions",
            "body": json.dumps(recorded, separators=(",", ":")),  # (as JSON.stringify writes)
            "headers": {},
        },
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-type": ["application/json"]},
            "body": {"string": json.dumps(ANSWER)},
        },
    }
    path.write_text(json.dumps({"interactions": [interaction], "version": 1}))
    with (
        MockServer(cassette=str(path), allow_repeats=True, log_requests=False) as server,
        openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client,
    ):
        answer = client.chat.completions.create(
            **CHAT, temperature=0.0, top_p=1.0, tools=[_TOOL_WITH_FLOATS]
        )
        assert answer.to_dict() == ANSWER
        with pytest.raises(openai.BadRequestError) as missed:
            client.chat.completions.create(**CHAT, temperature=0.5, top_p=1.0, tools=[_TOOL])
    assert "temperature: recorded 0, this request 0.5" in str(missed.value)


_TOOL = {
    "type": "function",
    "function": {
        "name": "f",
        "parameters": {"type": "object", "properties": {"x": {"type": "number", "minimum": 1}}},
    },
}
_TOOL_WITH_FLOATS = json.loads(json.dumps(_TOOL).replace('"minimum": 1', '"minimum": 1.0'))


def _whole_floats(value: Any) -> Any:
    """`value` with every int written as the float of the same value."""
    if isinstance(value, bool) or not isinstance(value, (int, list, dict)):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, list):
        return [_whole_floats(item) for item in value]
    return {key: _whole_floats(item) for key, item in value.items()}


JSON_TREES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(st.text(max_size=6), JSON_TREES, max_size=5))
def test_a_body_matches_itself_with_its_whole_numbers_written_as_floats(
    body: dict[str, Any],
) -> None:
    """The body matcher's view of any JSON body is the same with each int written `N.0` (what
    another language's JSON writer may do), and, parsed from its JSON text, stays that view."""
    scrubber = Scrubber()
    as_sent = RequestView.build("POST", "/v1/chat/completions", "", body)
    as_floats = RequestView.build("POST", "/v1/chat/completions", "", _whole_floats(body))
    assert as_sent.normalized == as_floats.normalized
    reparsed = RequestView.recorded(
        "POST", "https://api.openai.com/v1/chat/completions", json.dumps(body).encode(), scrubber
    )
    assert reparsed.normalized == as_sent.normalized
