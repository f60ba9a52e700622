"""A search refuses latency the device never measured, unless told to extrapolate; bundles cover their space."""

from __future__ import annotations

import csv
import json

import pytest

from nas.cli import main
from nas.errors import NasError
from nas.latency import Coverage, check_space_coverage, graph_features, load_profile, space_kinds
from nas.latency._bundle import write_bundle
from nas.latency._space_coverage import refusal
from nas.space import load_space

PROFILES = ["x86-cpu", "raspberry-pi-4", "jetson-tx2", "pixel-3"]


def test_space_kinds_name_the_choices_that_produce_each_kind():
    kinds = space_kinds(load_space("mobilenet"))
    dense7 = kinds["conv_dense_k7_l"]
    assert dense7 and all(
        dict(p.choices)["primitive"] == "fused_mbconv" and dict(p.choices)["kernel"] == 7 for p in dense7
    )
    assert any(p.part == "stem" for p in kinds["activation_hardswish"])
    assert set(space_kinds(load_space("fbnet"))) < set(kinds) | {"activation_relu"}


@pytest.mark.parametrize("space_name", ["mobilenet", "fbnet"])
@pytest.mark.parametrize("profile_name", PROFILES)
def test_every_shipped_profile_and_space_is_covered_or_refused(space_name, profile_name):
    space, profile = load_space(space_name), load_profile(profile_name)
    missing = [k for k in space_kinds(space) if not profile.predictor.coverage.covers(k)]
    if not missing:
        assert check_space_coverage(space, profile) == []
        return
    with pytest.raises(NasError) as refused:
        check_space_coverage(space, profile)
    message = str(refused.value)
    assert "\n" not in message and message.endswith("or pass --allow-extrapolation")
    assert all(kind.rpartition("_")[0] in message or kind in message for kind in missing)
    assert check_space_coverage(space, profile, allow_extrapolation=True) == missing


def test_the_raspberry_pi_refusal_names_the_choices():
    with pytest.raises(NasError) as refused:
        check_space_coverage(load_space("mobilenet"), load_profile("raspberry-pi-4"))
    message = str(refused.value)
    assert message.startswith(
        "space mobilenet produces node kinds the profile raspberry-pi-4 has never measured: "
    )
    for phrase in (
        "conv_dense_k7_s/m/l (kernel 7, primitive fused_mbconv)",
        "activation_hardswish (activation hardswish, head, stem)",
        "activation_hardsigmoid, mul (se true)",
        "activation_clip (activation relu6)",
    ):
        assert phrase in message, message


def test_without_a_prior_extrapolation_cannot_help():
    profile = load_profile("raspberry-pi-4")
    message = refusal(load_space("mobilenet"), profile.predictor.coverage, profile.name, priced=set())
    assert message.endswith("so --allow-extrapolation cannot help")


def test_search_refuses_on_the_pi_and_writes_nothing(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["search", "--profile", "raspberry-pi-4", "--out", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nas: error: space mobilenet produces node kinds the profile raspberry-pi-4")
    assert len(err.strip().splitlines()) == 1 and not run_dir.exists()


def test_allow_extrapolation_runs_and_records_what_was_extrapolated(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor
):
    """In this process, on the test session's Ray (a search of its own would start one: seconds)."""
    run_dir = tmp_path / "run"
    argv = [
        "search",
        "--space",
        tiny_space_file,
        "--dataset",
        tiny_dataset_file,
        "--profile",
        "raspberry-pi-4",
        "--allow-extrapolation",
        "--trials",
        "4",
        "--population",
        "4",
        "--prescreen",
        "1",
        "--sampler",
        "random",
        "--epochs",
        "1",
        "--train-subset",
        "32",
        "--latency-budget-ms",
        "0.3",
        "--out",
        run_dir,
        "--quiet",
    ]
    assert main(list(map(str, argv))) == 0
    with open(run_dir / "trials.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["latency_ms"]]
    assert rows and all(
        float(r["latency_low_ms"]) <= float(r["latency_ms"]) <= float(r["latency_high_ms"]) for r in rows
    )
    assert any(float(r["latency_extrapolated"]) > 0 for r in rows)
    assert all(
        r["latency_straddles_budget"] == "True"
        for r in rows
        if float(r["latency_low_ms"]) <= 0.3 <= float(r["latency_high_ms"])
    )
    pareto = json.loads((run_dir / "pareto.json").read_text())["pareto"]
    assert all(len(p["latency_interval_ms"]) == 2 and p["latency_extrapolated"] is not None for p in pareto)


def test_a_bundle_covers_every_kind_its_space_produces(tmp_path, tiny_space_file):
    space = load_space(tiny_space_file)
    bundle = write_bundle(str(tiny_space_file), tmp_path / "bundle", networks=1)
    manifest = json.loads((bundle / "bundle.json").read_text())
    coverage = Coverage.of(graph_features(bundle / m["path"]) for m in manifest["models"])
    assert [k for k in space_kinds(space) if not coverage.covers(k)] == []
    assert any("covers" in m for m in manifest["models"])  # one network alone does not produce every kind


def test_predict_marks_extrapolated_kinds_and_gives_an_interval(tmp_path, capsys):
    from nas.builder import build_model
    from nas.onnx_io import export_onnx
    from nas.space import Architecture

    arch = load_space("mobilenet").sample(_FirstChoice("fused_mbconv", 7))
    onnx_path = tmp_path / "net.onnx"
    export_onnx(build_model(arch, 10), arch.resolution, path=onnx_path)
    assert main(["profile", "predict", "--profile", "raspberry-pi-4", str(onnx_path)]) == 0
    shown = capsys.readouterr().out
    assert "% interval)" in shown and "never measured, priced by the profile's prior: " in shown
    assert "conv_dense_k7" in shown
    assert main(["profile", "predict", "--profile", "raspberry-pi-4", "--json", str(onnx_path)]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["low_ms"] < row["latency_ms"] < row["high_ms"] and 0 < row["extrapolated_share"] <= 1
    assert isinstance(arch, Architecture)


class _FirstChoice:
    """A trial stand-in: the given primitive and kernel, SE on, hardswish; the first value elsewhere."""

    def __init__(self, primitive, kernel):
        self.fixed = {"primitive": primitive, "kernel": kernel, "se": True, "activation": "hardswish"}

    def suggest_categorical(self, name, choices):
        return self.fixed.get(name.rpartition(".")[2], choices[0])
