"""`MockServer`'s keywords are `mockai serve`'s options (docs/python.md): the command line's
`--quiet` by its own name, and `workers`, which one process cannot honour, refused rather than
ignored."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from mockai import Config, ConfigError, MockServer
from mockai.config import DEFAULT_PORT
from mockai.server.sites import StampedLoop


@pytest.mark.parametrize(("quiet", "logged"), [(True, False), (False, True)])
def test_quiet_is_the_command_lines_quiet(quiet: bool, logged: bool) -> None:
    with MockServer(quiet=quiet) as server:
        assert server.config.log_requests is logged
        assert httpx.get(server.url_for("/_mockai/health")).status_code == 200


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"quiet": "yes"}, "quiet: expected true or false, got 'yes'"),
        (
            {"quiet": True, "log_requests": True},
            (
                "quiet and log_requests name the same option; give only one of them "
                "(quiet=True is log_requests=False)"
            ),
        ),
        ({"quite": True}, "unknown option(s): quite (did you mean 'quiet'?)"),
        (
            {"workers": 2},
            (
                "workers=2: a MockServer (and the pytest fixture) serves in this process; several "
                "worker processes are `mockai serve --workers N`'s"
            ),
        ),
    ],
)
def test_an_option_one_server_in_this_process_cannot_take_is_refused(
    options: dict[str, Any], said: str
) -> None:
    """`MockServer(workers=4)` served every connection from the test's own process, silently
    (a load test got one process), while a recording one was refused as several."""
    with pytest.raises(ConfigError) as raised:
        MockServer(**options)
    assert str(raised.value) == said


def test_one_worker_is_what_it_always_was() -> None:
    with MockServer(workers=1) as server:
        assert httpx.get(server.url_for("/_mockai/health")).status_code == 200


def test_a_config_that_names_no_port_is_served_on_a_free_one() -> None:
    """`MockServer(Config(seed=3))` listened on 8000, the Config's default (`mockai serve`'s),
    not on a free port as `MockServer(seed=3)` does: two of them at once (pytest-xdist workers,
    or a `mockai serve` on 8000) failed to start with 'address already in use'."""
    with MockServer(Config(seed=3)) as first, MockServer(Config(seed=3)) as second:
        assert first.port != DEFAULT_PORT and second.port != DEFAULT_PORT
        assert first.port != second.port
        assert first.config.seed == second.config.seed == 3
        for server in (first, second):
            assert httpx.get(server.url_for("/_mockai/health")).status_code == 200
    with socket.socket() as probe:  # a port the Config sets is the one served
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with MockServer(Config().merged(port=port)) as server:
        assert server.port == port


def test_event_loop_chooses_the_loop_a_background_server_runs_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`MockServer(event_loop="asyncio")` was taken and ignored (it served on uvloop when that
    was installed), and a MOCKAI_EVENT_LOOP that `mockai serve` refuses chose uvloop silently."""
    monkeypatch.setenv("MOCKAI_EVENT_LOOP", "uvloop")  # the keyword wins over the variable
    with MockServer(event_loop="asyncio") as server:
        assert server._background is not None
        assert isinstance(server._background.loop, StampedLoop)
        assert httpx.get(server.url_for("/_mockai/health")).status_code == 200
    monkeypatch.setenv("MOCKAI_EVENT_LOOP", "asyncio")
    with MockServer() as server:
        assert server._background is not None
        assert isinstance(server._background.loop, StampedLoop)
    monkeypatch.setenv("MOCKAI_EVENT_LOOP", "asycnio")
    with pytest.raises(ConfigError) as raised:
        MockServer()
    assert (
        str(raised.value) == "MOCKAI_EVENT_LOOP: 'asycnio' is not valid (did you mean 'asyncio'?)"
    )


def test_mockai_variables_apply_to_a_mockserver_given_config_from_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What docs/python.md says: a MockServer reads no MOCKAI_* variable by itself, and
    `MockServer(Config.from_env())` takes them on a free port (it was `mockai serve`'s 8000)."""
    monkeypatch.setenv("MOCKAI_SEED", "7")
    monkeypatch.setenv("MOCKAI_MODELS", "gpt-4o")
    with MockServer() as plain, MockServer(Config.from_env()) as from_env:
        assert (plain.config.seed, plain.config.models) == (0, None)
        assert (from_env.config.seed, from_env.config.models) == (7, ("gpt-4o",))
        assert from_env.port != DEFAULT_PORT
        models = httpx.get(from_env.url_for("/v1/models")).json()["data"]
        assert [model["id"] for model in models] == ["gpt-4o"]
