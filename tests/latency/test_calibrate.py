"""Add a device end to end: bundle -> measure (no torch) -> fit -> validate -> predict -> search; and bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from conftest import tiny_search
from onnx import TensorProto, helper

from nas.cli import main
from nas.errors import NasError
from nas.latency._calibrate import fit_profile, read_measurements

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="module")
def measured_bundle(tmp_path_factory, tiny_space_file):
    bundle = tmp_path_factory.mktemp("bundle") / "b"
    assert (
        main(["profile", "bundle", "--space", str(tiny_space_file), "--out", str(bundle), "--networks", "8"])
        == 0
    )
    # The device side, with torch made unimportable: measuring needs onnxruntime, onnx and numpy only.
    # A short timing protocol (the test is about what the device side writes, not its precision).
    probe = (
        "import functools, sys; sys.modules['torch'] = None\n"
        "import nas.latency as latency\n"
        "latency.MeasurementSettings = functools.partial(\n"
        "    latency.MeasurementSettings, warmup_runs=2, rounds=3, round_ms=5.0, max_attempts=2\n"
        ")\n"
        "from nas.cli import main\n"
        f"sys.exit(main(['profile', 'measure', {str(bundle)!r}, '--quiet']))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return bundle


def test_bundle_holds_networks_and_blocks_and_measure_writes_every_row(measured_bundle):
    manifest = json.loads((measured_bundle / "bundle.json").read_text())
    kinds = {m["kind"] for m in manifest["models"]}
    assert kinds == {"network", "stem", "block", "head"}
    assert sum(m["kind"] == "network" for m in manifest["models"]) == 8
    rows = read_measurements(measured_bundle / "measurements.csv")
    assert len(rows) == len(manifest["models"]) and all(latency > 0 for _, latency in rows)
    meta = json.loads((measured_bundle / "measurements.meta.json").read_text())
    assert meta["onnxruntime"] and meta["settings"]["intra_op_threads"] == 1


def test_fit_validate_predict_and_search_with_the_fitted_profile(
    measured_bundle, tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, capsys
):
    profile_path = tmp_path / "mine.yaml"
    assert (
        main(
            [
                "profile",
                "fit",
                "--measurements",
                str(measured_bundle / "measurements.csv"),
                "--name",
                "mine",
                "--out",
                str(profile_path),
            ]
        )
        == 0
    )
    assert "cross-validated MAPE" in capsys.readouterr().out
    assert main(["profile", "validate", "--profile", str(profile_path), "--json"]) == 0
    stored = json.loads(capsys.readouterr().out)
    assert 0 <= stored["mape"] < 100 and -1 <= stored["kendall_tau"] <= 1
    networks = sorted((measured_bundle / "networks").glob("*.onnx"))[:3]
    assert main(["profile", "predict", "--profile", str(profile_path), "--json", *map(str, networks)]) == 0
    predictions = json.loads(capsys.readouterr().out)
    assert [p["model"] for p in predictions] == list(map(str, networks)) and all(
        p["latency_ms"] > 0 for p in predictions
    )
    assert (
        main(
            [
                "profile",
                "validate",
                "--profile",
                str(profile_path),
                "--measurements",
                str(measured_bundle / "measurements.csv"),
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["n"] > 16

    run_dir = tiny_search(  # the session's Ray: the command line's own search is tested elsewhere
        tmp_path / "run",
        tiny_space_file,
        tiny_dataset_file,
        ray_executor,
        profile=str(profile_path),
        trials=3,
    )
    with open(run_dir / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["latency_source"] for r in rows} == {"predicted"} and all(
        r["latency_spread"] == "" for r in rows
    )


def write_csv(path, rows, header=("model", "latency_ms")):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def unsupported_graph(path):
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph(
        [helper.make_node("Erf", ["input"], ["out"], name="strange_erf")], "g", [x], [y]
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.mark.parametrize(
    "rows,header,message",
    [
        ([["a.onnx", "1.0"]], ("model", "time"), ":1: missing column(s) latency_ms"),
        ([["a.onnx", "fast"]], None, ":2: latency_ms: not a number: 'fast'"),
        ([["a.onnx", "-1"]], None, ":2: latency_ms: must be a positive finite number"),
        ([["a.onnx", "nan"]], None, ":2: latency_ms: must be a positive finite number"),
        ([["a.onnx", "1.0"], ["missing.onnx", "2.0"]], None, ":3: model: ONNX file not found"),
    ],
)
def test_bad_measurements_name_the_row_and_write_no_profile(tmp_path, rows, header, message, measured_bundle):
    some_graph = sorted((measured_bundle / "networks").glob("*.onnx"))[0]
    (tmp_path / "a.onnx").write_bytes(some_graph.read_bytes())
    csv_path = write_csv(tmp_path / "m.csv", rows, header or ("model", "latency_ms"))
    with pytest.raises(NasError, match=r".*" + __import__("re").escape(message)):
        fit_profile(csv_path, "bad")
    assert (
        main(
            [
                "profile",
                "fit",
                "--measurements",
                str(csv_path),
                "--name",
                "bad",
                "--out",
                str(tmp_path / "bad.yaml"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "bad.yaml").exists()


def test_an_operator_the_model_cannot_featurize_names_row_and_node(tmp_path):
    unsupported_graph(tmp_path / "odd.onnx")
    csv_path = write_csv(tmp_path / "m.csv", [["odd.onnx", "1.0"]] * 12)
    with pytest.raises(NasError, match=r"m\.csv:2: .*strange_erf.*Erf"):
        fit_profile(csv_path, "bad")


def test_missing_files_and_profiles_are_one_line_errors(tmp_path, capsys):
    assert main(["profile", "fit", "--measurements", str(tmp_path / "none.csv"), "--name", "x"]) == 2
    assert main(["profile", "measure", str(tmp_path)]) == 2
    assert main(["profile", "predict", "--profile", "x86-cpu", str(tmp_path / "none.onnx")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("nas: error: ") for e in errors)
    assert "measurements file not found" in errors[0] and "not a calibration bundle" in errors[1]


def test_fit_never_replaces_a_profile_without_force(measured_bundle, tmp_path, capsys):
    target = tmp_path / "mine.yaml"
    target.write_text("name: mine\n")
    csv_path = str(measured_bundle / "measurements.csv")
    assert main(["profile", "fit", "--measurements", csv_path, "--name", "mine", "--out", str(target)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err and target.read_text() == "name: mine\n"
    assert main(["profile", "fit", "--measurements", csv_path, "--name", "../evil"]) == 2
    assert (
        main(
            ["profile", "fit", "--measurements", csv_path, "--name", "mine", "--out", str(target), "--force"]
        )
        == 0
    )
    assert "model:" in target.read_text()


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    (tmp_path / "junk.onnx").write_text("x\n")
    with pytest.raises(NasError, match="not an ONNX model"):
        from nas.latency import graph_features

        graph_features(tmp_path / "junk.onnx")


def test_an_interrupted_measurement_resumes_and_a_finished_one_starts_over(measured_bundle, tmp_path):
    import shutil

    from nas.latency._bundle import measure_bundle
    from nas.latency._measure import MeasurementSettings

    bundle = tmp_path / "b"
    shutil.copytree(measured_bundle, bundle)
    meta = json.loads((bundle / "measurements.meta.json").read_text())
    settings = MeasurementSettings(**meta["settings"])
    rows = (bundle / "measurements.csv").read_text().splitlines()
    kept = rows[:-3]  # all but the last 3 rows measured, as if the device stopped there
    (bundle / "measurements.csv").write_text("\n".join(kept) + "\n")
    meta["finished"] = False
    (bundle / "measurements.meta.json").write_text(json.dumps(meta))
    calls = []
    measure_bundle(bundle, settings, lambda done, total: calls.append(done))
    after = (bundle / "measurements.csv").read_text().splitlines()
    assert after[: len(kept)] == kept and len(after) == len(rows)  # the rows were kept, the 3 measured
    assert calls[0] == len(kept) - 1 and calls[-1] == len(rows) - 1  # it said where it resumed
    assert json.loads((bundle / "measurements.meta.json").read_text())["finished"] is True


def test_few_measurements_give_a_few_shot_profile_with_a_leave_one_out_error(tmp_path, capsys):
    """Ten FBNet-space networks 'measured' on a device that runs 1.3x a latency-corpus device: the few-shot fit
    places it among the corpus devices; a graph with a kind no corpus device measured is refused."""
    import optuna

    from nas.builder import build_model
    from nas.latency import load_profile
    from nas.onnx_io import export_onnx
    from nas.space import load_space

    space, device = load_space("fbnet"), load_profile("xeon-gold-6226")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    rows = []
    for i in range(10):
        arch = space.sample(study.ask())
        path = tmp_path / f"net{i}.onnx"
        export_onnx(build_model(arch, 100), arch.resolution, fast=True, path=path)
        rows.append((path.name, 1.3 * device.latency_model.predict(path)))
    csv_path = write_csv(tmp_path / "measurements.csv", rows)
    out = tmp_path / "few.yaml"
    assert main(["profile", "fit", "--measurements", str(csv_path), "--name", "few", "--out", str(out)]) == 0
    assert "few-shot, leave-one-out MAPE" in capsys.readouterr().out
    fitted = load_profile(out)
    assert fitted.validation["few_shot"]["coefficients"] and fitted.validation["mape"] < 5
    assert fitted.interval is not None and fitted.coverage.covers("conv_depthwise_k5_l")
    network = tmp_path / "net0.onnx"
    assert abs(fitted.predict(network).latency_ms / rows[0][1] - 1) < 0.05

    other = load_space("mobilenet").sample(optuna.create_study().ask())
    export_onnx(build_model(other, 10), other.resolution, fast=True, path=tmp_path / "odd.onnx")
    csv_path = write_csv(tmp_path / "odd.csv", rows + [("odd.onnx", 1.0)])
    assert (
        main(
            [
                "profile",
                "fit",
                "--measurements",
                str(csv_path),
                "--name",
                "odd",
                "--out",
                str(tmp_path / "odd.yaml"),
            ]
        )
        == 2
    )
    assert "no latency-corpus device measured" in capsys.readouterr().err


def test_a_direct_fit_and_a_few_shot_fit_compete_on_the_same_folds():
    """With enough measurements both fits are cross-validated on the same folds and the lower held-out
    error wins: a device that runs 1.3x a latency-corpus device is best placed among the corpus devices;
    one whose cost is a kind no corpus device weighs alone is learnt only by the direct fit."""
    import optuna

    from nas.latency import ArchitectureFeaturizer, LatencyModel, held_out_predictions, load_profile
    from nas.latency._calibrate import compare_with_few_shot
    from nas.space import load_space

    space, device = load_space("fbnet"), load_profile("xeon-gold-6226")
    featurizer = ArchitectureFeaturizer(num_classes=100)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5))
    graphs = [featurizer.features(space.sample(study.ask())) for _ in range(40)]
    noise = np.exp(np.random.default_rng(0).normal(0, 0.05, len(graphs)))  # a real device's 5% scatter
    like_corpus = [(f, 1.3 * device.latency_model.predict(f) * e) for f, e in zip(graphs, noise)]
    alien_model = LatencyModel(overhead_ms=0.2, weights={"conv_depthwise_k5_l.count": 0.3})
    alien = [(f, alien_model.predict(f) * e) for f, e in zip(graphs, noise)]
    for samples, winner in ((like_corpus, "few-shot"), (alien, "direct")):
        held_out = held_out_predictions(samples, 5, 0)
        choice = compare_with_few_shot(samples, held_out, 5, 0, "test.csv")
        assert choice["chosen"] == winner, choice
        assert choice["few_shot_mape" if winner == "few-shot" else "direct_mape"] < 10
