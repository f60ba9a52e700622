"""Benchmark: production validation of a run's exported Pareto models on real CIFAR-10 images.

For every exported model of RUN_DIR (run `nas export RUN_DIR` first):

1. slice report (`nas.validate.evaluate_slices`) on the last 500 images of each class of the CIFAR-10
   training JPEGs (`--data`, 5,000 images; the built-in subset the search trained on holds images
   0000-0599 only, so these were never seen): clean + 11 corruption families x severities 1, 3, 5;
2. INT8 static quantization (`quantize_int8`, QDQ, per-channel weights), calibrated on 256 of images
   1000-1099 of each class (disjoint from both the training subset and the evaluation images);
3. FP32 vs INT8: accuracy drop clean, on FP32's worst slice and the largest over all slices, and the
   x86-cpu latency of both (measured with the x86-cpu protocol);
4. the cost of the robust-search objective `corrupted_accuracy` (torch, one thread, 500 validation
   images of the search's dataset x 4 slices) on the trained network;
5. slices.json, int8.json, model.int8.onnx and model_card.md are written next to each model.

    python benchmarks/production_validation.py RUN_DIR [--data ../shared/data/cifar10/train]
    # -> results/benchmarks/production_validation.json and .png
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import (  # noqa: E402
    RUNS,
    SHARED_DATA,
    Benchmark,
    repo_path,
    run_main,
    write_result,
)

# RUN_DIR (default): `nas search --trials 16 --epochs 4 --population 4 --out
# results/benchmark-runs/production_validation`, then `nas export` of it; by hand, any exported run.
BENCHMARK = Benchmark(
    cost="full",
    seconds=281,  # production_validation.json "seconds"
    data=("results/benchmark-runs/production_validation/export", "../shared/data/cifar10/train"),
)
DEFAULT_RUN = RUNS / "production_validation"
DEFAULT_DATA = SHARED_DATA / "cifar10" / "train"
EVAL_PER_CLASS = 500
CALIBRATION_RANGE = (1000, 1100)


def _images(data: Path, pick) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from nas.data import decode_image

    classes = sorted(p.name for p in data.iterdir() if p.is_dir() and not p.name.startswith("."))
    xs, ys = [], []
    for label, name in enumerate(classes):
        files = sorted((data / name).glob("*.jpg"))
        for f in pick(files):
            xs.append(decode_image(f, str(f)))
            ys.append(label)
    return np.stack(xs), np.array(ys), classes


def _npz(path: Path, x, y, classes) -> Path:
    np.savez(path, x=x, y=y, classes=np.array(classes))
    return path


def _robust_cost(run_dir: Path, record: dict, num_classes: int) -> dict:
    import torch

    import nas
    from nas.builder import build_model
    from nas.evaluate import Preprocessing
    from nas.export import load_checkpoint
    from nas.space import Architecture
    from nas.validate import corrupted_accuracy

    torch.set_num_threads(1)
    search = json.loads((run_dir / "config.json").read_text())["search"]
    dataset = nas.load_dataset(search["dataset"], val_fraction=search["val_fraction"], seed=search["seed"])
    arch = Architecture.from_dict(record["architecture"])
    model = build_model(arch, num_classes)
    model.load_state_dict(load_checkpoint(run_dir, record["checkpoint"]))
    norm = Preprocessing(dataset.mean, dataset.std, arch.resolution)
    first = corrupted_accuracy(model, dataset, norm)
    second = corrupted_accuracy(model, dataset, norm)
    return {
        "dataset": dataset.name,
        "n": first["n"],
        "slices": first["slices"],
        "mean_corrupted_accuracy": first["mean_corrupted_accuracy"],
        "worst_slice": first["worst_slice"],
        "first_call_seconds": round(first["seconds"], 3),
        "corruption_seconds": round(first["corruption_seconds"], 3),
        "cached_call_seconds": round(second["seconds"], 3),
    }


def _plot(results: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    from nas.validate import save_figure

    fig = Figure(figsize=(11, 4.2))
    acc, lat = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    names = [r["model"] for r in results]
    xs = np.arange(len(results))
    for offset, key, label, colour in (
        (-0.2, "clean", "clean", "tab:green"),
        (0.0, "mean", "mean corrupted", "tab:blue"),
        (0.2, "worst", "worst slice", "tab:red"),
    ):
        values, lows, highs = [], [], []
        for r in results:
            s = r["slices"]
            if key == "clean":
                values.append(s["clean_accuracy"])
                lows.append(s["clean_ci95"][0])
                highs.append(s["clean_ci95"][1])
            elif key == "worst":
                values.append(s["worst_slice_accuracy"])
                lows.append(s["worst_ci95"][0])
                highs.append(s["worst_ci95"][1])
            else:
                values.append(s["mean_corrupted_accuracy"])
                lows.append(values[-1])
                highs.append(values[-1])
        values, lows, highs = map(np.array, (values, lows, highs))
        acc.errorbar(
            xs + offset,
            values,
            yerr=[values - lows, highs - values],
            fmt="o",
            color=colour,
            capsize=3,
            label=label,
        )
        int8_key = {"clean": "int8_clean", "worst": "int8_worst"}.get(key)
        if int8_key:
            acc.scatter(
                xs + offset,
                [r["int8"][int8_key] for r in results],
                marker="x",
                color=colour,
                label=f"{label} (INT8)",
            )
    acc.set_xticks(xs)
    acc.set_xticklabels(names, rotation=20, fontsize=7)
    acc.set_ylabel("top-1 accuracy (95% Wilson CI)")
    acc.set_title("FP32 (o) and INT8 (x) accuracy, 5,000 CIFAR-10 images", fontsize=9)
    acc.legend(fontsize=6)
    acc.grid(alpha=0.3)
    fp32 = [r["int8"]["x86_fp32_ms"] for r in results]
    int8 = [r["int8"]["x86_int8_ms"] for r in results]
    lat.bar(xs - 0.2, fp32, width=0.4, label="FP32")
    lat.bar(xs + 0.2, int8, width=0.4, label="INT8 (QDQ, U8S8)")
    lat.set_xticks(xs)
    lat.set_xticklabels(names, rotation=20, fontsize=7)
    lat.set_ylabel("latency, ms (x86-cpu protocol: ORT, 1 thread, batch 1)")
    lat.set_title("x86-cpu latency, measured", fontsize=9)
    lat.legend(fontsize=7)
    lat.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def main() -> int:
    import onnxruntime

    from nas.validate import compare_precisions, evaluate_slices, quantize_int8, write_model_card

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "run_dir",
        type=Path,
        nargs="?",
        default=DEFAULT_RUN,
        help="a run directory after 'nas export' (default: results/benchmark-runs/production_validation)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="CIFAR-10 train JPEGs, ImageFolder layout (default: %(default)s)",
    )
    parser.add_argument("--severities", default="1,3,5")
    parser.add_argument(
        "--out", type=Path, default=None, help="the result file (default: results/benchmarks/)"
    )
    args = parser.parse_args()
    if not args.data.is_dir():
        print(
            f"production_validation: data folder not found: {repo_path(args.data)} "
            "(pass --data DIR: CIFAR-10 train JPEGs, <class>/NNNN.jpg)",
            file=sys.stderr,
        )
        return 2
    exports = sorted(p for p in (args.run_dir / "export").glob("*") if (p / "model.onnx").is_file())
    if not exports:
        print(
            f"production_validation: no exported model in {repo_path(args.run_dir)}/export "
            f"(run 'nas export {repo_path(args.run_dir)}')",
            file=sys.stderr,
        )
        return 2
    severities = tuple(int(s) for s in args.severities.split(","))
    pareto = {r["arch_hash"]: r for r in json.loads((args.run_dir / "pareto.json").read_text())["pareto"]}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nas-prodval-") as tmp:
        x, y, classes = _images(args.data, lambda files: files[-EVAL_PER_CLASS:])
        eval_npz = _npz(Path(tmp) / "eval.npz", x, y, classes)
        cx, cy, _ = _images(args.data, lambda files: files[CALIBRATION_RANGE[0] : CALIBRATION_RANGE[1]])
        calib_npz = _npz(Path(tmp) / "calibration.npz", cx, cy, classes)
        print(f"evaluation images: {len(y)}, calibration pool: {len(cy)}", flush=True)
        results = []
        for folder in exports:
            t0 = time.perf_counter()
            onnx_path = folder / "model.onnx"
            report = evaluate_slices(onnx_path, eval_npz, severities=severities, split="all")
            report.write_json(folder / "slices.json")
            report.write_plot(folder / "slices.png")
            int8_path = quantize_int8(
                onnx_path, calib_npz, folder / "model.int8.onnx", samples=256, split="all"
            )
            comparison = compare_precisions(
                onnx_path, int8_path, eval_npz, severities=severities, split="all", fp32_report=report
            )
            (folder / "int8.json").write_text(json.dumps(comparison, indent=2) + "\n")
            write_model_card(folder)
            summary = report.to_dict()
            worst = report.worst
            metrics = json.loads((folder / "metrics.json").read_text())
            x86 = comparison["latency"]["x86-cpu"]
            entry = {
                "model": folder.name,
                "proxy_accuracy": metrics["proxy_accuracy"],
                "params": metrics["params"],
                "macs": metrics["macs"],
                "slices": {
                    "n": report.clean["n"],
                    "clean_accuracy": summary["clean_accuracy"],
                    "clean_ci95": report.clean["ci95"],
                    "clean_ece": report.clean["ece"],
                    "mean_corrupted_accuracy": summary["mean_corrupted_accuracy"],
                    "worst_slice": worst["name"],
                    "worst_slice_accuracy": worst["accuracy"],
                    "worst_ci95": worst["ci95"],
                    "thin_slices": summary["thin_slices"],
                    "per_slice_accuracy": {s["name"]: s["accuracy"] for s in report.slices},
                    "per_slice_ece": {s["name"]: round(s["ece"], 4) for s in report.slices},
                },
                "int8": {
                    "int8_clean": comparison["clean"]["int8"],
                    "clean_drop": comparison["clean"]["drop"],
                    "int8_worst": report.worst["accuracy"] - comparison["worst_slice"]["drop"],
                    "worst_slice_drop": comparison["worst_slice"]["drop"],
                    "max_slice_drop": comparison["max_slice_drop"],
                    "x86_fp32_ms": x86["fp32"]["median_ms"],
                    "x86_fp32_spread": x86["fp32"]["spread"],
                    "x86_int8_ms": x86["int8"]["median_ms"],
                    "x86_int8_spread": x86["int8"]["spread"],
                    "x86_speedup": x86["speedup"],
                    "predicted_profiles": {k: v for k, v in comparison["latency"].items() if k != "x86-cpu"},
                    # the calibration images were a temporary file: only its name means something here
                    "quantization": {**comparison["quantization"], "calibration_data": calib_npz.name},
                },
                "robust_objective": _robust_cost(
                    args.run_dir, pareto[folder.name.split("_", 1)[1]], len(classes)
                ),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            results.append(entry)
            print(
                f"{folder.name}: clean {entry['slices']['clean_accuracy']:.3f}, "
                f"worst {worst['name']} {worst['accuracy']:.3f}, "
                f"INT8 drop {entry['int8']['clean_drop']:+.3f}, x86 {entry['int8']['x86_fp32_ms']:.4f} -> "
                f"{entry['int8']['x86_int8_ms']:.4f} ms, "
                f"robust objective {entry['robust_objective']['first_call_seconds']} s "
                f"(cached {entry['robust_objective']['cached_call_seconds']} s)",
                flush=True,
            )
    out = {
        "onnxruntime": onnxruntime.__version__,
        "run_dir": repo_path(args.run_dir),
        "data": {
            "folder": repo_path(args.data),
            "evaluation": f"last {EVAL_PER_CLASS} images of each class ({len(y)} images)",
            "calibration": f"256 drawn (seed 0) from images {CALIBRATION_RANGE[0]}-{CALIBRATION_RANGE[1] - 1} "
            "of each class",
        },
        "severities": list(severities),
        "models": results,
    }
    written = write_result("production_validation", out, started=start, out=args.out)
    _plot(results, written.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    run_main(main)
