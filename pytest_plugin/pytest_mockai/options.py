"""The plugin's options: where each comes from, and how they merge (later wins).

    ini `mockai_*`  <  `--mockai-*`  <  `mockai_config` fixture  <  `@pytest.mark.mockai(...)`

Markers merge key by key: module < class < the test's own (`marker_options`). A None value, in
the fixture's dict or a marker, means "not set" and never overrides a layer below.

Plugin-level options (`strict`, `strict_fixtures`, `cassette`, `scenario`, `api_key`) shape the
fixture; every other key is a mockai server option (`mockai serve --help`: `models`, `latency`,
`limits`, `fallback`, `strict_requests`...) passed through to `mockai.Config`, which validates it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest

RECORD_MODES = ("none", "once", "new_episodes", "all")

# name -> (ini type, help); all also have a --mockai-<name> command-line option.
_OPTIONS: dict[str, tuple[str, str]] = {
    "record_mode": ("string", "cassette record mode: none (default), once, new_episodes, all"),
    "upstream": ("string", "OpenAI-compatible base URL to record cassettes from"),
    "scenario": ("linelist", "scenario files or folders loaded into every server"),
    "seed": ("string", "seed for generated answers, ids and chaos"),
    "chaos": ("string", "fault rates for every server, e.g. rate_limit=0.1"),
    "strict": ("bool", "fail a test whose server got a request nothing matched (default true)"),
    # The server's own `strict` (`mockai serve --strict`), which the plugin's `strict` hides.
    "strict_fixtures": ("bool", "stale fixtures (bad scripted JSON, tool arguments) are errors"),
    "cassette_dir": ("string", "cassette folder, relative to each test file (default: cassettes)"),
}
OPTION_NAMES = tuple(_OPTIONS)
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
PLUGIN_KEYS = frozenset(
    {"strict", "strict_fixtures", "cassette", "scenario", "cassette_dir", "api_key"}
)
# What pytest-recording's `get_default_cassette_name` replaces with "-" (its names, its rule).
_UNSAFE_IN_NAMES = str.maketrans(dict.fromkeys("<>?%*:|\"'/\\", "-"))
try:  # pytest-recording's limit for a long name, read as it reads it (`_vcr.MAX_FILENAME_LEN`)
    MAX_FILENAME_LEN = os.pathconf(".", "PC_NAME_MAX")
except (AttributeError, ValueError, OSError):  # (Windows)
    MAX_FILENAME_LEN = 255


def add_options(parser: pytest.Parser) -> None:
    """Register `--mockai-*` options and `mockai_*` ini keys."""
    group = parser.getgroup("mockai", "mockai: a test double for the OpenAI API")
    for name, (kind, help_text) in _OPTIONS.items():
        flag = "--mockai-" + name.replace("_", "-")
        if kind == "linelist":
            group.addoption(flag, action="append", dest=f"mockai_{name}", help=help_text)
        elif kind == "bool":
            group.addoption(
                flag,
                action="store",
                dest=f"mockai_{name}",
                choices=("true", "false"),
                help=help_text,
            )
        elif name == "record_mode":
            group.addoption(flag, dest=f"mockai_{name}", choices=RECORD_MODES, help=help_text)
        else:
            group.addoption(flag, dest=f"mockai_{name}", help=help_text)
        parser.addini(f"mockai_{name}", help_text, type=kind, default=None)  # type: ignore[arg-type]


def marker_line() -> str:
    """The marker's documentation for `pytest --markers`."""
    return (
        "mockai(scenario=None, cassette=None, record_mode=None, seed=None, strict=None, "
        "strict_fixtures=None, chaos=None, **options): configure this test's `mockai` server; "
        "options are those of `mockai serve` (models=, latency=, limits=, fallback=, ...). "
        "See the mockai README."
    )


def merged_options(request: pytest.FixtureRequest, fixture_config: Any) -> dict[str, Any]:
    """All layers merged for this test, then the `pytest_mockai_configure` hooks of the test's
    folder, then the cassette path resolved (so a hook's `cassette=` is read like a marker's)."""
    config = request.config
    options: dict[str, Any] = {"record_mode": "none", "strict": True}
    for name, (kind, _) in _OPTIONS.items():  # ini
        try:
            value = config.getini(f"mockai_{name}")
        except (ValueError, pytest.UsageError) as error:  # (`mockai_strict = maybe`)
            refuse(f"mockai_{name} in {config.inipath}: {error}")
        if value not in (None, "", []):
            options[name] = _typed(name, kind, value)
    if options.get("scenario"):
        options["scenario"] = _beside_the_ini_file(config, options["scenario"])
    for name, (kind, _) in _OPTIONS.items():  # command line
        value = config.getoption(f"mockai_{name}")
        if value is not None:
            options[name] = _typed(name, kind, value)
    if not isinstance(fixture_config, Mapping):  # (an override that forgot its `return`)
        refuse(f"mockai_config must return a dict of options, got {fixture_config!r}")
    options.update(_set(fixture_config))
    options.update(marker_options(request.node))
    # The node's hook relay: only the conftest files on the test's own path take part.
    request.node.ihook.pytest_mockai_configure(options=options, request=request)
    _check_plugin_options(options)
    if options.get("cassette") is False:
        # No cassette: nothing to record into, so nothing is forwarded upstream either (with
        # the user's real key); an unscripted request is a no-match, as in a replay run.
        options.pop("upstream", None)
        options["record_mode"] = "none"
    options["cassette"] = _cassette_path(request, options)
    if options["cassette"] is None:
        # A replay run of a test without a cassette: what its rules do not answer is a
        # no-match, not a request forwarded to the API it would record from (with no network,
        # 502s retried; with one, the test's key sent to the real API).
        options.pop("upstream", None)
    return options


def _beside_the_ini_file(config: pytest.Config, paths: list[str]) -> list[str]:
    """The ini file's scenario paths, relative to that file, as pytest reads its own paths
    (`type="paths"`): the same ini must find them whichever folder pytest runs in (an IDE's
    run of one test folder, `cd tests && pytest`), not only from the folder it is in."""
    folder = config.inipath.parent if config.inipath is not None else config.invocation_params.dir
    return [str(folder / path) for path in paths]


def marker_options(node: pytest.Item) -> dict[str, Any]:
    """Every `mockai` marker on the test, merged key by key, the closest winning per key.

    pytest's `iter_markers` yields the closest first: the test's own markers (of stacked
    decorators, the one nearest the `def`; then `pytest.param(marks=...)`), then its class's,
    then its module's. Merged from the farthest in, as pytest-recording merges `vcr` markers, so a
    module's `scenario=` survives a test's own `seed=` instead of the closest marker hiding it.
    """
    merged: dict[str, Any] = {}
    for marker in reversed(list(node.iter_markers("mockai"))):
        if marker.args:
            refuse(
                "@pytest.mark.mockai takes keyword arguments only, got "
                f"{', '.join(map(repr, marker.args))} (a scenario file is `scenario=...`)"
            )
        merged.update(_set(marker.kwargs))
    return merged


def _set(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options given a value: None is what `pytest --markers` shows as each option's
    default, so it means "not set here" and leaves the layer below in force (`strict=None` must
    not turn strict mode off).

    `scenarios=` (MockServer's name, the same option) is read as `scenario=`: kept apart, it
    went to the server alongside the plugin's `scenario`, which replaced it, so a test's own
    `scenarios=` lost to its module's `scenario=` (or the ini file's). Likewise `quiet=` is
    `log_requests=` turned around: given in two layers, the two spellings reached the server
    together, a ConfigError, instead of the closer one winning.
    """
    given = {key: value for key, value in options.items() if value is not None}
    if "scenarios" in given:
        if "scenario" in given:
            refuse("scenario= and scenarios= name the same option: give only one of them")
        given["scenario"] = given.pop("scenarios")
    if isinstance(given.get("quiet"), bool):  # (another value is the server's to refuse)
        if "log_requests" in given:
            refuse("quiet= and log_requests= name the same option: give only one of them")
        given["log_requests"] = not given.pop("quiet")
    return given


def _typed(name: str, kind: str, value: Any) -> Any:
    if kind == "bool":
        return flag(name, value)
    if kind == "linelist":
        return list(value)
    return value


def refuse(problem: str) -> NoReturn:
    """Fail the test at setup, saying what is wrong with its options (no traceback: the
    plugin's, which pytest would print, says nothing about the user's marker)."""
    raise pytest.fail.Exception(f"mockai could not start:\n{problem}", pytrace=False) from None


def flag(name: str, value: Any) -> bool:
    """A boolean option as the ini file and the command line take it (`true`, `false`, ...):
    `strict="false"` in a marker must not turn strict mode on, as `bool("false")` would."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    refuse(f"{name}: {value!r} is neither true nor false")


def _check_plugin_options(options: dict[str, Any]) -> None:
    """The plugin's own options as given in any layer (or set by a hook), checked before use;
    mockai.Config checks the server's."""
    for name in ("strict", "strict_fixtures"):
        if options.get(name) is not None:
            options[name] = flag(name, options[name])
    scenario = options.get("scenario")
    paths = [scenario] if isinstance(scenario, (str, Path)) else scenario
    if scenario is not None and not (
        isinstance(paths, (list, tuple)) and all(isinstance(p, (str, Path)) for p in paths)
    ):
        refuse(f"scenario: expected a file or folder path, or a list of them, got {scenario!r}")
    cassette = options.get("cassette")
    if cassette is not None and not isinstance(cassette, (bool, str, Path)):
        refuse(f"cassette: expected True, False or a path, got {cassette!r}")
    folder = options.get("cassette_dir")
    if folder is not None and not isinstance(folder, (str, Path)):
        refuse(f"cassette_dir: expected a folder path, got {folder!r}")


def _cassette_path(request: pytest.FixtureRequest, options: dict[str, Any]) -> Path | None:
    """pytest-recording's convention: `<test dir>/cassettes/<module>/<Class.>test.yaml`.

    `cassette=None` uses that file if it exists, or records into it when recording from an
    upstream; `True` requires it; a string is a path relative to the test file; `False` never.
    A `.json` one (pytest-recording's `serializer="json"`) is used when there is no `.yaml`.
    """
    wanted = options.get("cassette")
    if wanted is False:
        return None
    test_file = Path(str(request.node.path))
    if isinstance(wanted, (str, Path)):
        return test_file.parent / wanted
    folder = test_file.parent / str(options.get("cassette_dir") or "cassettes") / test_file.stem
    cls = getattr(request.node, "cls", None)
    class_name = cls.__name__ if cls is not None else None
    recording = options.get("record_mode", "none") != "none" and bool(options.get("upstream"))
    # (An older name is read in replay runs only: a recording goes to the test's own name, which
    # no other test has, whichever tests this run selected.)
    taken = _names_beside(request) if not recording else None
    path = _existing_cassette(folder, class_name, request.node.name, taken)
    if path is not None or wanted is True or recording:
        # (New recordings are YAML, as before.)
        return path or folder / cassette_file_name(cassette_name(class_name, request.node.name))
    return None


def _names_beside(request: pytest.FixtureRequest) -> frozenset[str]:
    """The cassette names of the tests collected from the test's own file (made once a file)."""
    by_file = request.session.stash.setdefault(_NAMES_BY_FILE, {})
    path = request.node.path
    names = by_file.get(path)
    if names is None:
        names = frozenset(
            cassette_name(getattr(getattr(item, "cls", None), "__name__", None), item.name)
            for item in request.session.items
            if getattr(item, "path", None) == path
        )
        by_file[path] = names
    return names


_NAMES_BY_FILE = pytest.StashKey[dict[Path, frozenset[str]]]()


def _existing_cassette(
    folder: Path,
    class_name: str | None,
    test_name: str,
    taken: frozenset[str] | None = frozenset(),
) -> Path | None:
    """The test's cassette in `folder`, under the name pytest-recording gives it with either of
    its serializers, else under the name earlier versions gave, unless that is the name another
    collected test's cassette has now (`taken`: `test[hello world]` was `test[hello_world].yaml`,
    which is `test[hello_world]`'s own); None (`taken`) looks for no older name at all. None
    when there is none."""
    name = cassette_name(class_name, test_name)
    as_yaml, as_json = (folder / cassette_file_name(name, kind) for kind in ("yaml", "json"))
    if _exists(as_yaml) and _exists(as_json):
        pytest.fail(
            f"mockai: two cassettes for this test, {as_yaml} and {as_json}: keep the one to "
            "replay and delete the other.",
            pytrace=False,
        )
    legacy_name = _legacy_cassette_name(class_name, test_name)
    candidates = [as_yaml, as_json]
    if taken is not None and (legacy_name == name or legacy_name not in taken):
        candidates.append(folder / (legacy_name + ".yaml"))
    return next((path for path in candidates if _exists(path)), None)


def _exists(path: Path) -> bool:
    """Whether `path` is a file; a name the file system refuses (too long) names none."""
    try:
        return path.exists()
    except OSError:
        return False


def cassette_name(class_name: str | None, test_name: str) -> str:
    """pytest-recording's default cassette name (`get_default_cassette_name`): `Class.test[id]`
    with only the characters file systems forbid, `<>?%*:|"'/\\`, replaced by `-`, so that its
    cassettes replay here under the same names."""
    name = f"{class_name}.{test_name}" if class_name else test_name
    return name.translate(_UNSAFE_IN_NAMES)


def _legacy_cassette_name(class_name: str | None, test_name: str) -> str:
    """The name earlier versions gave (everything outside `[\\w.\\-\\[\\]]` became `_`)."""
    name = f"{class_name}.{test_name}" if class_name else test_name
    return re.sub(r"[^\w.\-\[\]]", "_", name)


def cassette_file_name(name: str, serializer: str = "yaml") -> str:
    """The file pytest-recording keeps cassette `name` in (`_vcr.use_cassette`): a name too long
    for the file system becomes its first characters, `...` and the name's md5.

    Its rule, quirks included, so that its cassettes are found: it counts characters, not bytes,
    and the suffix it allows for is the serializer's name (`json`) unless it is the default's
    (`.yaml`), one character short of the `.json` it then appends.
    """
    suffix = serializer if serializer != "yaml" else ".yaml"
    if len(name) + len(suffix) > MAX_FILENAME_LEN:
        hash_part = hashlib.md5(name.encode()).hexdigest()
        prefix = name[: MAX_FILENAME_LEN - len(suffix) - len(hash_part) - 3]
        name = f"{prefix}...{hash_part}"
    return f"{name}.{serializer}"
