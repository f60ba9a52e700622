"""`nas search` flags and config files, both derived from the fields of `SearchConfig`.

Every field is one flag (`--field-name`, or the spelling its `setting` gives), typed by its annotation,
with the help and choices its `setting` declares; adding a setting is adding a field. A config file
(YAML or JSON) maps field names to values; flags given on the command line override it.

A small generator over `dataclasses.fields` rather than a library (tyro, jsonargparse): the flags keep
their spelling, argparse's own one-line messages (`invalid int value`), `--train-subset all` and
`--rungs 1,2`, and the command stays free of a dependency and quick to start.
"""

from __future__ import annotations

import argparse
import difflib
import json
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any, Callable

from nas._cli import int_list
from nas.errors import NasError
from nas.search._config import SearchConfig
from nas.search._run_dir import BEFORE_IT_EXISTED
from nas.search._samplers import SAMPLERS


def _int_or(word: str) -> Callable[[str], int | None]:
    """An integer, or `word` (such as 'all') for None."""

    def convert(text: str) -> int | None:
        if text.lower() == word:
            return None
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer or {word!r}, got {text!r}") from None

    return convert


def _number_or(word: str, keep: str) -> Callable[[str], float | str | None]:
    """A number, `word` (such as 'none') for None, or the word `keep` (such as 'auto') as it is."""

    def convert(text: str) -> float | str | None:
        if text.lower() in (word, keep):
            return None if text.lower() == word else keep
        try:
            return float(text)
        except ValueError:  # argparse: `invalid float value: 'x'`; a config file: this message
            raise ValueError(
                f"expected a number of milliseconds, {keep!r} or {word!r}, got {text!r}"
            ) from None

    convert.__name__ = "float"  # the type argparse names in its message
    return convert


# annotation (as written in SearchConfig) -> how a command-line word becomes a value
_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "str | None": str,
    "int": int,
    "int | None": int,
    "float": float,
    "float | None": float,
    "float | str | None": float,  # with a none_word: `_number_or`
    "tuple[int, ...]": int_list,
    "tuple[str, ...]": str,
    "str | BaseSampler": str,
}


def _converter(f: Field) -> Callable[[str], Any]:
    word = f.metadata.get("none_word")
    if word and f.type == "int | None":
        return _int_or(word)
    if word and f.type == "float | str | None":  # latency_budget_ms: a number, auto or none
        return _number_or(word, f.default)
    return _CONVERTERS[f.type]


def flag_of(f: Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


class _OneProfile(argparse.Action):
    """--profile once: a second one would silently replace the first; the other devices of a fleet are
    constraints, each with its budget (--budget PROFILE=MS)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if hasattr(namespace, self.dest):
            parser.error(
                f"argument {option_string}: given more than once; the search optimises the latency on one "
                "profile, add the other devices with --budget PROFILE=MS"
            )
        setattr(namespace, self.dest, values)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per SearchConfig field. A flag not given is absent from the parsed namespace (so a config
    file's value stands); `config_from_arguments` fills in the rest."""
    for f in fields(SearchConfig):
        meta = f.metadata
        default = f.default if f.default is not MISSING else f.default_factory()
        help_text = meta["help"].replace("%(default)s", str(default))
        common = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text)
        if f.type == "bool":
            parser.add_argument(flag_of(f), action=argparse.BooleanOptionalAction, **common)
        elif f.type not in _CONVERTERS:
            raise TypeError(f"SearchConfig.{f.name}: no command-line form for the type {f.type}")
        elif f.type == "tuple[str, ...]":
            parser.add_argument(flag_of(f), action="append", metavar=meta["metavar"], **common)
        else:
            parser.add_argument(
                flag_of(f),
                action=_OneProfile if f.name == "profile" else "store",
                type=_converter(f),
                choices=meta["choices"],
                metavar=meta["metavar"],
                **common,
            )
    parser.add_argument(
        "--config",
        dest="config_file",
        default=None,
        metavar="FILE",
        help="a YAML or JSON file of these settings by field name (e.g. latency_budget_ms: 0.3); "
        "flags given here override it",
    )
    parser.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="resume the search in RUN_DIR with the settings of its config.json; flags given here may change "
        "those that are not part of what the run is (e.g. --trials, --workers)",
    )


def config_from_arguments(args: argparse.Namespace) -> SearchConfig:
    """The SearchConfig of parsed arguments: the defaults, then the config file, then the flags given."""
    given = {f.name: getattr(args, f.name) for f in fields(SearchConfig) if hasattr(args, f.name)}
    path = getattr(args, "config_file", None)
    resume = getattr(args, "resume", None)
    if resume is not None:
        if path:
            raise NasError(f"--resume {resume}: the settings come from its config.json; leave --config out")
        if given.get("out") is not None:
            raise NasError(f"--resume {resume}: names the run directory already; leave --out out")
        path = Path(resume) / "config.json"
        from_file = read_run_settings(resume)
    else:
        from_file = read_config_file(path) if path else {}
    try:
        return SearchConfig(**{**from_file, **given})
    except NasError as exc:
        key = str(exc).split(":", 1)[0]
        if key in from_file and key not in given:  # the file's value: say where it came from
            raise NasError(f"{path}: {exc}") from None
        raise


def read_run_settings(run_dir: str | Path) -> dict[str, Any]:
    """The settings a run directory's search was started with (its config.json), for `--resume`: the path
    settings as resolved then (so a resume from another folder finds the same files), `out` the run
    directory. A change of an identity setting on top of them is refused later, as for any re-run."""
    run_dir = Path(run_dir)
    saved_path = run_dir / "config.json"
    if not saved_path.is_file():
        what = "does not exist" if not run_dir.exists() else "holds no config.json (not a nas run directory)"
        raise NasError(f"--resume {run_dir}: {what}")
    try:
        document = json.loads(saved_path.read_text())
        saved, paths = document["search"], document.get("paths") or {}
        if not isinstance(saved, dict) or not isinstance(paths, dict):
            raise TypeError
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise NasError(f"{saved_path}: unreadable run configuration; cannot resume from it") from None
    settings: dict[str, Any] = dict(BEFORE_IT_EXISTED)  # a setting added after the run started: its old value
    for f in fields(SearchConfig):
        if f.name in saved and f.name not in _PER_INVOCATION:
            settings[f.name] = _value(saved_path, f, paths.get(f.name, saved[f.name]))
    sampler = settings.get("sampler")
    if isinstance(sampler, str) and sampler not in SAMPLERS.names():
        raise NasError(
            f"--resume {run_dir}: the run used the sampler {sampler!r}, which is not one of "
            f"{', '.join(SAMPLERS.names())}; resume it from Python with the same sampler instance"
        )
    settings["out"] = str(run_dir)
    return settings


_PER_INVOCATION = ("allow_machine_change",)  # a permission for one invocation, not a setting of the run


def load_config_file(path: str | Path, **overrides: Any) -> SearchConfig:
    """The SearchConfig of a YAML or JSON config file (as `nas search --config`), `overrides` replacing its
    settings."""
    return SearchConfig(**{**read_config_file(path), **overrides})


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A config file's settings, checked by name and type; anything wrong is one NasError line naming the
    file and the key. Values are as a SearchConfig takes them, or as a flag spells them (`train_subset:
    all`, `rungs: 1,2`)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NasError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NasError(f"{path}: cannot read the config file ({exc})") from None
    document = _parse(path, text)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise NasError(
            f"{path}: a config file is a mapping of setting names to values, not a {_kind(document)}"
        )
    by_name = {f.name: f for f in fields(SearchConfig)}
    settings = {}
    for key, value in document.items():
        name = str(key).replace("-", "_")
        if name not in by_name:
            close = difflib.get_close_matches(name, list(by_name), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(by_name)})"
            raise NasError(f"{path}: {key}: unknown setting{hint}")
        settings[name] = _value(path, by_name[name], value)
    return settings


def _parse(path: Path, text: str) -> Any:
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise NasError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    import yaml

    from nas._yaml import parse_yaml

    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise NasError(f"{path}{where}: not valid YAML ({problem})") from None


def _value(path: Path, f: Field, value: Any) -> Any:
    """A file's value for field `f`: a flag's spelling converted as the flag would; a value of the wrong
    kind refused, naming the file and the key (SearchConfig checks the ranges)."""
    kind = f.type
    if value is None:
        if "None" in kind:
            return None
        raise NasError(f"{path}: {f.name}: a value is required")
    if f.name == "budgets" and isinstance(value, dict):  # {profile: ms}: SearchConfig checks the values
        return value
    if kind == "tuple[str, ...]":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise NasError(f"{path}: {f.name}: expected a list of names, got {value!r}")
        return tuple(items)
    if kind == "tuple[int, ...]" and isinstance(value, list):
        return tuple(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise NasError(f"{path}: {f.name}: expected true or false, got {value!r}")
        return value
    if isinstance(value, str) and not kind.startswith("str"):
        try:
            return _converter(f)(value)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise NasError(f"{path}: {f.name}: {exc}") from None
    if kind.startswith("str") and not isinstance(value, str):
        raise NasError(f"{path}: {f.name}: expected a string, got {value!r}")
    if kind.startswith(("int", "float")) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise NasError(f"{path}: {f.name}: expected a number, got {value!r}")
    return value


def _kind(value: Any) -> str:
    return {list: "list", str: "string"}.get(type(value), type(value).__name__)
