"""`nas search` flags derived from SearchConfig's fields, and config files with flags overriding them."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

import pytest

from nas.cli import main
from nas.errors import NasError
from nas.search import SearchConfig, add_config_arguments, config_from_arguments, load_config_file


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return config_from_arguments(parser.parse_args([str(a) for a in argv]))


def test_every_setting_has_a_flag_with_help():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    by_dest = {action.dest: action for action in parser._actions}
    for f in fields(SearchConfig):
        assert f.name in by_dest, f"SearchConfig.{f.name} has no flag"
        assert by_dest[f.name].help and "%(default)s" not in by_dest[f.name].help


def test_no_flag_gives_the_defaults_and_flags_keep_their_spelling():
    assert parse() == SearchConfig()
    config = parse(
        "--train-subset",
        "all",
        "--rungs",
        "1,2",
        "--plugin",
        "a",
        "--plugin",
        "b.py",
        "--allow-extrapolation",
    )
    assert config.train_subset is None and config.rungs == (1, 2) and config.plugins == ("a", "b.py")
    assert config.allow_extrapolation is True


def test_config_file_settings_and_flags_override_them(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text("trials: 7\nepochs: 3\nrungs: [1, 2]\nsampler: tpe\ntrain_subset: all\nplugins: [mine]\n")
    config = parse("--config", path, "--epochs", "5")
    assert (config.trials, config.epochs, config.rungs, config.sampler) == (7, 5, (1, 2), "tpe")
    assert config.train_subset is None and config.plugins == ("mine",)
    as_json = tmp_path / "search.json"
    as_json.write_text(json.dumps({"latency-budget-ms": 0.5, "allow_extrapolation": True}))
    config = parse("--config", as_json, "--no-allow-extrapolation")
    assert config.latency_budget_ms == 0.5 and config.allow_extrapolation is False


@pytest.mark.parametrize(
    "text,message",
    [
        ("trails: 3\n", "trails: unknown setting (did you mean 'trials'?)"),
        ("trials: 0\n", "trials: must be an integer >= 1"),
        ("trials: many\n", "trials: invalid literal"),
        ("space: 3\n", "space: expected a string"),
        ("sampler: grid\n", "unknown sampler 'grid'"),
        ("allow_extrapolation: maybe\n", "allow_extrapolation: expected true or false"),
        ("- trials\n", "a config file is a mapping"),
        ("trials: [1\n", "not valid YAML"),
        ("budgets: {jetson-tx2: 0}\n", "budgets: jetson-tx2: must be a positive finite number"),
        ("budgets: [jetson-tx2]\n", "budgets: expected PROFILE=MS"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_the_file_and_the_key(tmp_path, capsys, text, message):
    path = tmp_path / "search.yaml"
    path.write_text(text)
    with pytest.raises(NasError, match="search.yaml"):
        parse("--config", path)
    assert main(["search", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nas: error: {path}") and message in err and err.count("\n") == 1


def test_a_flag_that_fixes_a_file_value_wins_and_a_bad_flag_is_not_blamed_on_the_file(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text("trials: 0\n")
    assert parse("--config", path, "--trials", "2").trials == 2
    path.write_text("epochs: 2\n")
    with pytest.raises(NasError) as caught:
        parse("--config", path, "--trials", "0")
    assert str(caught.value).startswith("trials:")


def test_a_missing_config_file_is_one_line(tmp_path, capsys):
    assert main(["search", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: config file not found" in capsys.readouterr().err


def test_the_api_reads_the_same_config_files(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text("trials: 7\nsampler: tpe\n")
    assert load_config_file(path, trials=9) == SearchConfig(trials=9, sampler="tpe")


def test_budgets_from_flags_a_config_file_and_a_run_to_resume(tmp_path, capsys):
    flags = parse("--budget", "raspberry-pi-4=40", "--budget", "jetson-tx2=8")
    assert flags.budget_by_profile == {"jetson-tx2": 8.0, "raspberry-pi-4": 40.0}
    mapping, listed = tmp_path / "mapping.yaml", tmp_path / "listed.yaml"
    mapping.write_text("budgets: {raspberry-pi-4: 40, jetson-tx2: 8}\n")
    listed.write_text("budgets: [jetson-tx2=8, raspberry-pi-4=40]\n")
    assert parse("--config", mapping) == parse("--config", listed) == flags
    assert parse("--config", mapping, "--budget", "jetson-tx2=5").budgets == ("jetson-tx2=5.0",)  # flags win

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"search": flags.to_dict(), "paths": {}}))
    assert parse("--resume", run_dir).budgets == flags.budgets

    with pytest.raises(SystemExit) as exited:  # argparse's own usage error
        main(["search", "--profile", "x86-cpu", "--profile", "jetson-tx2"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--profile: given more than once" in err and "--budget PROFILE=MS" in err
