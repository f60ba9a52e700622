"""What other tools read from a run: safetensors checkpoints (and old torch pickles), ONNX models with their
producer, opset, model_version and doc_string, model cards with Hugging Face front matter, the study's
objective names for optuna-dashboard, and Optuna callbacks (a plain one, and MLflow's) for every trial."""

from __future__ import annotations

import json
import logging
import shutil
import sys

import onnx
import pytest
import torch
import yaml
from _serial_executor import SerialExecutor
from optuna.trial import TrialState

import nas
from nas._io import load_checkpoint
from nas.errors import NasError
from nas.export import export_run
from nas.onnx_io import EXPORT_OPSET, MODEL_FORMAT_VERSION, export_onnx
from nas.search import METRIC_NAMES, SearchConfig, load_run_study, open_study, search
from nas.space import Architecture
from nas.validate import write_model_card

pytestmark = pytest.mark.dynamo_export  # the exporter deployment models are written with

SETTINGS = dict(
    trials=3,
    population=2,
    epochs=1,
    train_subset=32,
    sampler="random",
    prescreen=2,
    prescreen_score="params",
    latency="predicted",
)


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, study, trial):
        self.calls.append((study.study_name, trial.number, trial.state, trial.user_attrs.get("status")))


@pytest.fixture(scope="module")
def searched(tmp_path_factory, tiny_space_file, tiny_dataset_file, x86_model_profile):
    """A finished tiny search (screened-out candidates included) and what a plain callback saw of it."""
    run_dir = tmp_path_factory.mktemp("integrations") / "run"
    recorder = Recorder()
    search(
        space=str(tiny_space_file),
        dataset=str(tiny_dataset_file),
        profile=str(x86_model_profile),
        out=str(run_dir),
        executor=SerialExecutor(),
        callbacks=[recorder],
        **SETTINGS,
    )
    return run_dir, recorder


@pytest.fixture(scope="module")
def exported(searched, tmp_path_factory):
    run_dir, _ = searched
    out = tmp_path_factory.mktemp("exported") / "export"
    return export_run(run_dir, out=out)


# --- checkpoints -----------------------------------------------------------------------------------------
def test_trial_checkpoints_are_safetensors_that_load_without_pickle(searched):
    from safetensors.torch import load_file

    run_dir, _ = searched
    pareto = json.loads((run_dir / "pareto.json").read_text())["pareto"]
    assert pareto and all(record["checkpoint"].endswith(".safetensors") for record in pareto)
    assert not list((run_dir / "checkpoints").glob("*.pt"))
    for record in pareto:
        path = run_dir / record["checkpoint"]
        header_length = int.from_bytes(path.read_bytes()[:8], "little")  # safetensors: length, then JSON
        assert path.read_bytes()[8 : 8 + header_length].startswith(b"{")
        state = load_checkpoint(run_dir, record["checkpoint"])
        assert state.keys() == load_file(path).keys()
        model = nas.build_model(Architecture.from_dict(record["architecture"]), 2)
        model.load_state_dict(state)  # every weight there, with its shape


def test_an_older_run_with_torch_pickle_checkpoints_still_exports(searched, tmp_path):
    run_dir, _ = searched
    old = tmp_path / "old-run"
    shutil.copytree(run_dir, old, ignore=shutil.ignore_patterns(".lock", "export"))
    pareto_path = old / "pareto.json"
    pareto = json.loads(pareto_path.read_text())
    for record in pareto["pareto"]:  # as an earlier version wrote them: torch.save of the state dict
        safe = old / record["checkpoint"]
        record["checkpoint"] = record["checkpoint"].replace(".safetensors", ".pt")
        torch.save(load_checkpoint(old, str(safe.relative_to(old))), old / record["checkpoint"])
        safe.unlink()
    pareto_path.write_text(json.dumps(pareto))
    exported = export_run(old, out=tmp_path / "export")
    assert len(exported) == len(pareto["pareto"])
    assert all(m.max_abs_diff <= 1e-3 for m in exported)


def test_a_damaged_safetensors_checkpoint_is_one_line(searched, tmp_path):
    run_dir, _ = searched
    record = json.loads((run_dir / "pareto.json").read_text())["pareto"][0]
    broken = tmp_path / "checkpoints" / "broken.safetensors"
    broken.parent.mkdir()
    broken.write_bytes((run_dir / record["checkpoint"]).read_bytes()[:100])
    with pytest.raises(NasError, match="damaged checkpoint"):
        load_checkpoint(tmp_path, "checkpoints/broken.safetensors")


def test_a_pickle_with_code_in_it_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("ran code from a checkpoint",))

    torch.save({"weight": torch.zeros(1), "payload": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(NasError, match="damaged checkpoint"):
        load_checkpoint(tmp_path, "evil.pt")


# --- ONNX --------------------------------------------------------------------------------------------------
def test_exported_models_carry_producer_opset_model_version_and_doc_string(exported):
    for model in exported:
        proto = onnx.load(str(model.onnx))
        assert proto.producer_name == "nas" and proto.producer_version == nas.__version__
        assert proto.model_version == MODEL_FORMAT_VERSION
        assert {o.domain: o.version for o in proto.opset_import}[""] == EXPORT_OPSET
        spec = json.loads(model.spec.read_text())
        arch = Architecture.from_dict(spec["architecture"])
        assert arch.hash in proto.doc_string and arch.summary() in proto.doc_string


def test_the_pinned_opset_is_one_onnx_and_onnx_runtime_support():
    import onnxruntime as ort

    assert EXPORT_OPSET <= onnx.defs.onnx_opset_version()
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    data = export_onnx(model, 8)
    assert {o.domain: o.version for o in onnx.load_from_string(data).opset_import}[""] == EXPORT_OPSET
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": torch.zeros(1, 3, 8, 8).numpy()})[0].shape == (1, 4, 6, 6)


# --- model cards -------------------------------------------------------------------------------------------
def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    block, rest = text[4:].split("\n---\n", 1)
    assert rest.lstrip().startswith("# Model card: ")
    return yaml.safe_load(block)


def test_model_card_front_matter_is_hugging_face_metadata_with_the_measured_numbers(exported):
    for model in exported:
        text = write_model_card(model.directory, measure=False).read_text()
        meta = _front_matter(text)
        metrics = json.loads(model.metrics.read_text())
        assert meta["library_name"] == "onnx" and meta["license"] and meta["datasets"] == ["tiny.npz"]
        assert "onnx" in meta["tags"] and "accuracy" in meta["metrics"]
        (entry,) = meta["model-index"]
        assert entry["name"] == model.directory.name
        (result,) = entry["results"]
        assert result["task"]["type"] == "image-classification"
        values = {m["type"]: m["value"] for m in result["metrics"]}
        assert values["accuracy"] == metrics["proxy_accuracy"]
        assert values["latency_ms"] == metrics["latency_ms"]


# --- optuna-dashboard ----------------------------------------------------------------------------------------
def test_the_study_names_its_objectives_and_marks_screened_out_candidates(searched):
    run_dir, _ = searched
    study = load_run_study(run_dir)
    assert study.metric_names == METRIC_NAMES
    screened = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("status") == "screened_out"]
    assert screened, "prescreen 2 screens out half of the candidates"
    for trial in screened:
        assert trial.state == TrialState.PRUNED
        assert trial.user_attrs["infeasible_reason"].startswith("screened out: ")


def test_a_study_made_without_objective_names_gets_them_when_the_run_resumes(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="nas", storage=storage, directions=["maximize", "minimize"])
    assert optuna.load_study(study_name="nas", storage=storage).metric_names is None
    assert open_study(tmp_path, "random", 2, 0).metric_names == METRIC_NAMES
    assert optuna.load_study(study_name="nas", storage=storage).metric_names == METRIC_NAMES


# --- callbacks ---------------------------------------------------------------------------------------------
def test_callbacks_see_every_trial_that_counts_and_no_screened_out_one(searched):
    run_dir, recorder = searched
    study = load_run_study(run_dir)
    counted = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("status") != "screened_out"]
    assert [(name, number, status) for name, number, _, status in recorder.calls] == [
        ("nas", t.number, t.user_attrs["status"]) for t in counted
    ]
    assert len(recorder.calls) == SETTINGS["trials"]
    assert all(state.is_finished() for _, _, state, _ in recorder.calls)


def test_a_failing_callback_is_one_warning_and_the_search_goes_on(
    tmp_path, tiny_space_file, tiny_dataset_file, x86_model_profile, caplog
):
    def broken_tracker(study, trial):
        raise ConnectionError("tracking server went away\nwith a long traceback")

    recorder = Recorder()
    with caplog.at_level(logging.WARNING, logger="nas"):
        result = search(
            space=str(tiny_space_file),
            dataset=str(tiny_dataset_file),
            profile=str(x86_model_profile),
            out=str(tmp_path / "run"),
            executor=SerialExecutor(),
            callbacks=[broken_tracker, recorder],
            **{**SETTINGS, "trials": 2},
        )
    assert result.finished == 2 and len(recorder.calls) == 2  # the others still called
    warnings = [r.getMessage() for r in caplog.records if "callback" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "broken_tracker" in warnings[0] and "ConnectionError: tracking server went away" in warnings[0]


def test_track_names_a_known_tracker(tmp_path):
    assert SearchConfig(track=["mlflow", "mlflow:file:///tmp/mlruns"]).track == (
        "mlflow",
        "mlflow:file:///tmp/mlruns",
    )
    with pytest.raises(NasError, match="unknown tracker 'wandb'"):
        SearchConfig(track=("wandb",))
    with pytest.raises(NasError, match="got the string"):
        SearchConfig(track="mlflow")


def test_track_mlflow_without_its_packages_says_what_to_install(tmp_path, monkeypatch):
    from nas.search import tracker_callbacks

    monkeypatch.setitem(sys.modules, "optuna_integration", None)  # an import of it now fails
    with pytest.raises(NasError, match=r"--track mlflow: .*pip install 'hwnas\[track\]'"):
        tracker_callbacks(["mlflow"], tmp_path / "run")


def test_track_mlflow_logs_every_trial_to_a_local_file_store(
    tmp_path, tiny_space_file, tiny_dataset_file, x86_model_profile, monkeypatch
):
    pytest.importorskip("mlflow", reason="--track mlflow needs the [track] extra (mlflow-skinny)")
    pytest.importorskip(
        "optuna_integration", reason="--track mlflow needs the [track] extra (optuna-integration)"
    )
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for a database unless told
    uri = (tmp_path / "mlruns").as_uri()
    run_dir = tmp_path / "run"
    search(
        space=str(tiny_space_file),
        dataset=str(tiny_dataset_file),
        profile=str(x86_model_profile),
        out=str(run_dir),
        executor=SerialExecutor(),
        track=(f"mlflow:{uri}",),
        **{**SETTINGS, "trials": 2},
    )
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(run_dir.name)
    runs = client.search_runs([experiment.experiment_id])
    study = load_run_study(run_dir)
    counted = {
        str(t.number): t for t in study.get_trials(deepcopy=False) if t.user_attrs["status"] != "screened_out"
    }
    assert sorted(r.info.run_name for r in runs) == sorted(counted)
    for mlflow_run in runs:
        trial = counted[mlflow_run.info.run_name]
        assert mlflow_run.data.tags["status"] == trial.user_attrs["status"]
        if trial.state == TrialState.COMPLETE:
            assert mlflow_run.data.metrics == {"accuracy": trial.values[0], "latency_ms": trial.values[1]}
