"""nas adapt: the failing slices, the fine-tuning set aimed at them (disjoint from the evaluation images),
the decision between fine-tuning and switching, and one real run from a trained export folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas.cli import main
from nas.data import ImageDataset
from nas.errors import NasError
from nas.validate import adaptation_set, check_disjoint, decide, failing_slices, training_conditions
from tests.conftest import make_easy_images
from tests.validate.candidate_models import tiny_export
from tests.validate.test_select_bad_input import snapshot


def _slice(name, accuracy, kind="corruption", family=None, severity=3):
    return {"name": name, "kind": kind, "family": family, "severity": severity, "accuracy": accuracy,
            "thin": False}  # fmt: skip


def test_failing_slices_are_worst_first_and_train_on_the_worst_families():
    report = {
        "clean_accuracy": 0.9,
        "slices": [
            _slice("clean", 0.9, kind="clean"),
            _slice("dark@3", 0.88, family="dark"),  # within the gap: not failing
            _slice("jpeg@3", 0.6, family="jpeg"),
            _slice("jpeg@5", 0.4, family="jpeg", severity=5),
            _slice("contrast@3", 0.7, family="contrast"),
            _slice("fog@3", 0.8, family="fog"),
            _slice("user:night", 0.5, kind="user"),
        ],
    }
    failing = failing_slices(report, min_gap=0.03)
    assert [s["name"] for s in failing] == ["jpeg@5", "user:night", "jpeg@3", "contrast@3", "fog@3"]
    assert failing[0]["gap"] == pytest.approx(0.5)
    assert training_conditions(failing, 2) == [("contrast", 3), ("jpeg", 3), ("jpeg", 5)]
    assert training_conditions(failing, 1) == [("jpeg", 3), ("jpeg", 5)]


class _Model:
    """Predicts class 0 for bright images: wrong on the dark half of class 1, and on every dark image."""

    classes = ("red", "green")

    def logits(self, images):
        bright = np.asarray(images, np.float32).mean(axis=(1, 2, 3)) > 60
        return np.stack([bright, ~bright], axis=1).astype(np.float32)


def test_adaptation_set_adds_corrupted_copies_and_hard_examples_in_model_class_order():
    x, y = make_easy_images(10, seed=2)
    train = ImageDataset("t", ("green", "red"), x, 1 - y, x[:4], 1 - y[:4], (0.5,) * 3, (0.25,) * 3)
    chosen = adaptation_set(train, _Model(), [("dark", 5)], mean=(0.1, 0.2, 0.3), std=(1, 1, 1))
    s, ds = chosen.summary, chosen.dataset
    assert ds.classes == ("red", "green") and ds.mean == (0.1, 0.2, 0.3)
    assert s["train_images"] == 20 and s["copies_per_image"] == 2
    assert len(ds.y_train) == 40 + s["hard_examples"] == s["fine_tuning_images"]
    assert s["hard_examples_by_part"]["dark@5"] == 10  # dark images of class 0 ("red") are predicted green
    np.testing.assert_array_equal(ds.y_train[:20], y)  # labels in the model's order again
    np.testing.assert_array_equal(ds.y_val, y[:4])


def test_evaluation_images_that_are_training_images_are_refused():
    x, _ = make_easy_images(5, seed=4)
    check_disjoint(x[:5], x[5:], "train", "eval")
    with pytest.raises(NasError, match="eval: 2 evaluation images are also training images of train"):
        check_disjoint(x[:5], x[3:7], "train", "eval")


def _selection(adapted_clean: float) -> dict:
    def row(name, accuracies, best):
        return {"name": name, "n": 500, "thin": False, "best": best, "comparisons": [],
                "results": {k: {"accuracy": v} for k, v in accuracies.items()}}  # fmt: skip

    return {
        "candidates": [
            {"name": "m", "latency": {"median_ms": 1.0}},
            {"name": "m-adapted", "latency": {"median_ms": 1.0}},
            {"name": "big", "latency": {"median_ms": 3.0}},
        ],
        "slices": [
            row("clean", {"m": 0.9, "m-adapted": adapted_clean, "big": 0.92}, "big"),
            row("jpeg@3", {"m": 0.5, "m-adapted": 0.8, "big": 0.6}, "m-adapted"),
            row("dark@3", {"m": 0.7, "m-adapted": 0.8, "big": 0.9}, "big"),
        ],
    }


def test_the_decision_compares_fine_tuning_with_switching_at_their_costs():
    failing = [{"name": "jpeg@3"}, {"name": "dark@3"}]
    d = decide(_selection(0.895), "m", "m-adapted", failing, max_clean_loss=0.01)
    jpeg, dark = d["slices"]
    assert jpeg["fine_tune_closed"] == pytest.approx(0.75) and jpeg["switch_closed"] == pytest.approx(0.25)
    assert dark["fine_tune_closed"] == pytest.approx(0.5) and dark["switch_closed"] == pytest.approx(1.0)
    assert d["summary"]["fine_tune_mean_closed"] == pytest.approx(0.625)
    assert d["summary"]["switch_mean_closed"] == pytest.approx(0.625)
    assert d["summary"]["switch_latency_ms"] == 3.0
    assert d["recommendation"] == "fine-tune: deploy m-adapted"  # a tie goes to the same architecture
    costly = decide(_selection(0.85), "m", "m-adapted", failing, max_clean_loss=0.01)
    assert costly["recommendation"] == "replace: switch to big"  # fine-tuning lost 5 points clean
    assert any("5.0% clean accuracy lost" in e for e in costly["evidence"])


def test_adapt_fine_tunes_a_trained_export_into_a_new_folder(tmp_path, capsys):
    from nas.export import deploy_train

    x, y = make_easy_images(300, seed=6)
    np.savez(tmp_path / "d.npz", x=x, y=y, classes=np.array(["red", "green"]))
    source = deploy_train(tiny_export(tmp_path / "export", tmp_path / "d.npz"), dataset=tmp_path / "d.npz",
                          epochs=5, out=tmp_path / "model")  # fmt: skip
    before = snapshot(source)
    argv = ["adapt", str(source), "--data", str(tmp_path / "d.npz"), "--families", "color_cast,contrast",
            "--severities", "5", "--epochs", "1", "--min-gap", "0", "--no-latency", "--html",
            str(tmp_path / "a.html")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    adapted = tmp_path / "model-adapted"
    assert f"adapted model: {adapted}" in out and "recommendation: " in out
    assert snapshot(source) == before  # the input folder is never touched
    report = json.loads((adapted / "adaptation.json").read_text())
    failing = {s["name"] for s in report["failing_slices"]}
    assert failing and {r["slice"] for r in report["decision"]["slices"]} == failing
    assert set(report["training"]["summary"]["conditions"]) <= failing
    assert report["training"]["summary"]["train_images"] == 540  # the training split only
    assert "## Adaptation" in (adapted / "model_card.md").read_text()
    assert "Fine-tune or replace" in (tmp_path / "a.html").read_text()
