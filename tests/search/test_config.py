import json
import os

import pytest

from nas._io import write_json_atomic
from nas.errors import NasError
from nas.search import SearchConfig
from nas.search._run_dir import check_run_dir


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("trials", 0, "trials: must be an integer >= 1"),
        ("epochs", -1, "epochs"),
        ("population", 1, "population"),
        ("workers", 0, "workers"),
        ("latency_budget_ms", -2.0, "latency_budget_ms"),
        ("sampler", "grid", "unknown sampler 'grid'"),
        ("seed", -1, "seed"),
        ("max_params", 0, "max_params"),
    ],
)
def test_bad_settings_name_the_field(field, value, message):
    with pytest.raises(NasError, match=message):
        SearchConfig(**{field: value})


def test_default_run_dir_is_derived_from_the_settings():
    assert str(SearchConfig(space="fbnet", seed=3).run_dir) == "results/search-fbnet-x86-cpu-seed3"


def test_run_dir_identity(tmp_path):
    config = SearchConfig(out=str(tmp_path / "run"))
    assert check_run_dir(config, tmp_path / "run") is False  # new
    (tmp_path / "run").mkdir()
    write_json_atomic(tmp_path / "run" / "config.json", {"search": config.to_dict()})
    assert check_run_dir(config, tmp_path / "run") is True  # resume
    more_trials = SearchConfig(out=str(tmp_path / "run"), trials=99, workers=1)
    assert check_run_dir(more_trials, tmp_path / "run") is True  # trials and workers may change
    with pytest.raises(NasError, match="holds a search with epochs=4, not 9"):
        check_run_dir(SearchConfig(out=str(tmp_path / "run"), epochs=9), tmp_path / "run")


def test_foreign_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(NasError, match="not a nas run directory"):
        check_run_dir(SearchConfig(out=str(tmp_path)), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_atomic_json_write_leaves_no_temp_file(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_identity_settings_added_later_read_as_what_runs_did_before_them(tmp_path):
    before = dict(out=str(tmp_path / "run"), prescreen=1, prescreen_score="naswot")  # no pre-screening then
    old = SearchConfig(**before).to_dict()
    for newer in ("latency", "robust_weight", "prescreen", "prescreen_score"):
        old.pop(newer)
    (tmp_path / "run").mkdir()
    write_json_atomic(tmp_path / "run" / "config.json", {"search": old})
    assert check_run_dir(SearchConfig(**before), tmp_path / "run") is True
    with pytest.raises(NasError, match="prescreen=1, not 8"):  # today's default pre-screens
        check_run_dir(
            SearchConfig(out=str(tmp_path / "run"), sampler=old["sampler"], population=old["population"]),
            tmp_path / "run",
        )


def test_out_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NasError, match="is a file"):
        check_run_dir(SearchConfig(out=str(tmp_path / "f")), tmp_path / "f")


def test_a_second_driver_on_the_same_run_directory_is_refused(tmp_path):
    import nas
    from nas.search._api import _lock_run_dir

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    held = _lock_run_dir(run_dir)
    try:
        with pytest.raises(NasError, match="another nas search is running"):
            nas.search(out=str(run_dir), trials=1)
    finally:
        held.close()


@pytest.mark.parametrize(
    "rungs,message", [((4,), "below --epochs"), ((0,), "below --epochs"), ((2, 1), "must increase")]
)
def test_bad_rungs_are_refused(rungs, message):
    with pytest.raises(NasError, match=message):
        SearchConfig(epochs=4, rungs=rungs)


@pytest.mark.parametrize("margin", [-0.1, 1.0, True, "0.1"])
def test_bad_stop_margin_is_refused(margin):
    with pytest.raises(NasError, match="stop_margin"):
        SearchConfig(epochs=4, rungs=(2,), stop_margin=margin)


def test_a_run_with_rungs_resumes(tmp_path):
    config = SearchConfig(out=str(tmp_path / "run"), epochs=4, rungs=(1, 2))
    (tmp_path / "run").mkdir()
    write_json_atomic(
        tmp_path / "run" / "config.json", {"search": config.to_dict()}
    )  # tuples stored as lists
    assert check_run_dir(config, tmp_path / "run") is True


def test_resume_recognises_the_same_files_however_their_paths_are_spelled(
    tmp_path, monkeypatch, tiny_space_file, tiny_dataset_file
):
    (tmp_path / "in").mkdir()
    (tmp_path / "work").mkdir()
    space = tmp_path / "in" / "mut.yaml"
    space.write_text(tiny_space_file.read_text())
    started = SearchConfig(space=str(space), dataset=str(tiny_dataset_file), out=str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    write_json_atomic(
        tmp_path / "run" / "config.json", {"search": started.to_dict(), "paths": started.canonical_paths()}
    )
    monkeypatch.chdir(tmp_path / "work")
    dataset = os.path.relpath(tiny_dataset_file)
    for spelling in ("../in/mut.yaml", "../in/../in/./mut.yaml", str(space)):
        assert (
            check_run_dir(SearchConfig(space=spelling, dataset=dataset, out="../run"), tmp_path / "run")
            is True
        )
    (tmp_path / "in" / "other.yaml").write_text(tiny_space_file.read_text())  # same content, another file
    with pytest.raises(NasError, match="holds a search with space="):
        check_run_dir(SearchConfig(space="../in/other.yaml", dataset=dataset, out="../run"), tmp_path / "run")


def test_resume_of_a_run_made_before_paths_were_stored_resolves_its_spelling(
    tmp_path, monkeypatch, tiny_space_file
):
    monkeypatch.chdir(tiny_space_file.parent)
    started = SearchConfig(space=tiny_space_file.name, out=str(tmp_path / "run"))  # relative, as typed then
    (tmp_path / "run").mkdir()
    write_json_atomic(tmp_path / "run" / "config.json", {"search": started.to_dict()})
    assert (
        check_run_dir(SearchConfig(space=str(tiny_space_file), out=str(tmp_path / "run")), tmp_path / "run")
        is True
    )


def test_a_search_stores_its_paths_resolved_and_resumes_under_another_spelling(
    tmp_path, monkeypatch, tiny_space_file, tiny_dataset_file, ray_executor
):
    import nas

    settings = dict(
        dataset=str(tiny_dataset_file),
        population=2,
        epochs=1,
        train_subset=16,
        prescreen=1,
        out=str(tmp_path / "run"),
        executor=ray_executor,
    )
    nas.search(space=str(tiny_space_file), trials=1, **settings)
    paths = json.loads((tmp_path / "run" / "config.json").read_text())["paths"]
    assert paths == {
        "space": str(tiny_space_file.resolve()),
        "profile": "x86-cpu",
        "dataset": str(tiny_dataset_file.resolve()),
    }
    monkeypatch.chdir(tmp_path)
    resumed = nas.search(space=os.path.relpath(tiny_space_file), trials=2, **settings)
    assert resumed.finished == 2
