"""Benchmark: one mobilenet-space network trained with and without early exits, its exits calibrated.

Proxy scale, on the shared 2-core machine (say so beside every number): the built-in CIFAR-10 subset
(5,000 training, 1,000 validation images), one fixed `mobilenet`-space network (ARCH below), trained twice
with the same recipe and seed: without exits, and with exit heads after stages s2 and s3 trained jointly
(`nas.exits`). The exits are calibrated on the validation split for at most `--max-drop` points below the
final exit. Then, with ONNX Runtime (the x86-cpu profile's protocol: 1 thread, graph optimization ALL,
batch 1), interleaved rounds measure the network without exits and each exit segment; the expected
latency is sum_k share_k x (segments 0..k). The ratio expected / without-exits is taken in each round
and its median reported, so load on the machine affects both sides of it alike.

Also reported: the drop against the network trained without exits (not only against its own final exit),
the drop when thresholds calibrated on one half of the validation split are applied to the other half
(calibration is in-sample otherwise), and the cascade really run by `nas.runtime` image by image.

Target (issue 22): at <= 0.5 point accuracy drop, expected x86 latency >= 25% lower than without exits.

    python benchmarks/early_exits.py            # -> results/benchmarks/early_exits.json
    python benchmarks/early_exits.py --rounds 21   # again on a quiet machine: reuses the trained weights
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import RUNS, Benchmark, run_main, write_result  # noqa: E402

# seconds: the recorded run (two trainings of 15 epochs x 5,000 images, 741 and 770 s, then the latency
# rounds and the slices) at a load average of 7-12 on the shared 2-core machine. A re-run reuses the
# trained weights kept in results/benchmark-runs/early_exits/ and only measures again (a few minutes).
BENCHMARK = Benchmark(cost="full", seconds=1622)

BLOCK = {"primitive": "mbconv", "kernel": 3, "se": False, "activation": "relu"}
ARCH = {  # a mid-size network of the mobilenet space (its parameter names: FixedTrial)
    "s1.depth": 1, "s1.width": 16, "s1.primitive": "dwsep", "s1.kernel": 3, "s1.se": False, "s1.activation": "relu",
    "s2.depth": 2, "s2.width": 32, **{f"s2.{k}": v for k, v in BLOCK.items()}, "s2.expansion": 3.0,
    "s3.depth": 2, "s3.width": 64, **{f"s3.{k}": v for k, v in BLOCK.items()}, "s3.expansion": 6.0,
    "s4.depth": 2, "s4.width": 96, **{f"s4.{k}": v for k, v in BLOCK.items()}, "s4.expansion": 6.0,
    "head.width": 512,
}  # fmt: skip
EXITS = ("s2", "s3")
SLICE_FAMILIES = ("gaussian_noise", "defocus_blur", "contrast", "jpeg")  # nas validate's exit rates per slice


def _trained(path: Path, arch, dataset, norm, recipe):
    """(model, training seconds): trained once, then read back (the same command re-runs the measurements)."""
    import torch

    from nas.builder import build_model
    from nas.evaluate import fit

    if path.is_file():
        saved = torch.load(path, weights_only=False)
        model = build_model(arch, dataset.num_classes)
        model.load_state_dict(saved["state"])
        return model.eval(), saved["seconds"]
    model, seconds, _ = fit(arch, dataset.num_classes, dataset, norm, recipe, seed=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": model.state_dict(), "seconds": seconds}, path)
    return model, seconds


def _architectures():
    import optuna

    from nas.space import load_space

    plain = load_space("mobilenet").sample(optuna.trial.FixedTrial(ARCH))
    return plain, dataclasses.replace(plain, exits=EXITS)


def _half_calibration(probabilities, labels, max_drop: float) -> list[dict]:
    """Thresholds calibrated on one half of the validation split (seeded), applied to the other half."""
    import numpy as np

    from nas.exits import calibrate_thresholds
    from nas.runtime import route

    order = np.random.default_rng(0).permutation(len(labels))
    halves = [order[: len(order) // 2], order[len(order) // 2 :]]
    out = []
    for fit_on, test_on in (halves, halves[::-1]):
        cal = calibrate_thresholds([p[fit_on] for p in probabilities], labels[fit_on], max_drop)
        prediction, exit_taken = route([p[test_on] for p in probabilities], list(cal.thresholds))
        final = float(np.mean(probabilities[-1][test_on].argmax(1) == labels[test_on]))
        cascade = float(np.mean(prediction == labels[test_on]))
        out.append(
            {
                "n": len(test_on),
                "thresholds": list(cal.thresholds),
                "shares": [float(np.mean(exit_taken == k)) for k in range(len(probabilities))],
                "final_accuracy": final,
                "cascade_accuracy": cascade,
                "drop_points": 100 * (final - cascade),
            }
        )
    return out


def _interleaved(graphs: dict[str, bytes], rounds: int, settings) -> dict[str, list[float]]:
    """Each graph measured once per round (the profile's protocol), the order rotating between rounds."""
    from nas.latency import measure_latency

    names = list(graphs)
    per = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            per[name].append(measure_latency(graphs[name], settings).median_ms)
    return per


def _cascade_wall(folder: Path, plain_onnx: bytes, x, rounds: int) -> dict:
    """Wall time per image of the cascade run by nas.runtime (batch 1, Python routing included) against the
    plain network's session, interleaved: what a user of the runtime pays, not the protocol's latency."""
    import onnxruntime as ort

    from nas.runtime import ExitCascade

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    plain = ort.InferenceSession(plain_onnx, sess_options=options, providers=["CPUExecutionProvider"])
    cascade = ExitCascade(folder, threads=1)
    times = {"plain": [], "cascade": []}
    for _ in range(rounds):
        for name in ("plain", "cascade"):
            start = time.perf_counter()
            for i in range(len(x)):
                if name == "plain":
                    plain.run(None, {"input": x[i : i + 1]})
                else:
                    cascade.run(x[i : i + 1])
            times[name].append(1e3 * (time.perf_counter() - start) / len(x))
    ratios = [c / p for c, p in zip(times["cascade"], times["plain"])]
    return {
        "images": len(x),
        "rounds": rounds,
        "plain_ms_per_image": statistics.median(times["plain"]),
        "cascade_ms_per_image": statistics.median(times["cascade"]),
        "ratio_median": statistics.median(ratios),
        "ratio_per_round": ratios,
    }


def main(argv=None) -> int:
    import numpy as np
    import torch

    from nas.data import load_dataset
    from nas.evaluate import Preprocessing, TrainingRecipe, evaluate_accuracy, preprocessing_spec
    from nas.exits import calibrate_thresholds, exit_probabilities, exit_weights, expected_latency
    from nas.export import export_cascade
    from nas.latency import load_profile
    from nas.onnx_io import export_onnx
    from nas.runtime import ExitCascade
    from nas.validate import evaluate_slices

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--max-drop", type=float, default=0.5, help="accuracy points (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=11, help="interleaved latency rounds")
    parser.add_argument("--wall-rounds", type=int, default=3, help="rounds of the runtime wall-time check")
    parser.add_argument(
        "--out", default=None, help="result file (default: results/benchmarks/early_exits.json)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    cpu0 = time.process_time()
    torch.set_num_threads(1)
    dataset = load_dataset("builtin")
    plain_arch, exits_arch = _architectures()
    norm = Preprocessing(dataset.mean, dataset.std, plain_arch.resolution)
    recipe = TrainingRecipe(epochs=args.epochs, train_subset=None)
    trained = {}
    work = RUNS / "early_exits"
    for name, arch in (("without_exits", plain_arch), ("with_exits", exits_arch)):
        trained[name] = _trained(work / f"{name}-e{args.epochs}.pt", arch, dataset, norm, recipe)
        print(f"{name}: trained in {trained[name][1]:.0f} s", flush=True)
    plain_model, exits_model = trained["without_exits"][0], trained["with_exits"][0]
    plain_accuracy = evaluate_accuracy(plain_model, dataset, norm)[0]
    labels = np.asarray(dataset.y_val)
    probabilities = exit_probabilities(exits_model, dataset.x_val, norm)
    calibration = calibrate_thresholds(probabilities, labels, args.max_drop)
    print(f"calibration: {calibration.to_dict()}", flush=True)

    folder = work / "with_exits"
    pre = preprocessing_spec(dataset.mean, dataset.std, exits_arch.resolution, dataset.classes)
    metrics = {"accuracy": calibration.cascade_accuracy, "final_exit_accuracy": calibration.final_accuracy}
    export_cascade(folder, exits_model, exits_arch, dataset.num_classes, pre, calibration.to_dict(), metrics)
    x_val = norm(torch.from_numpy(np.ascontiguousarray(dataset.x_val))).numpy()
    x_val = np.ascontiguousarray(x_val, dtype=np.float32)
    ran = ExitCascade(folder).run(x_val)
    runtime_check = {
        "cascade_accuracy": float(np.mean(ran.prediction == labels)),
        "shares": [float(np.mean(ran.exit_taken == k)) for k in range(len(EXITS) + 1)],
    }

    settings = load_profile("x86-cpu").measurement
    plain_onnx = export_onnx(plain_model, plain_arch.resolution, fast=True)
    graphs = {"without_exits": plain_onnx}
    for k in range(len(EXITS) + 1):
        graphs[f"segment_{k}"] = (folder / f"exit_segment_{k}.onnx").read_bytes()
    load_before = os.getloadavg()  # the cores' load when measuring starts: the numbers below depend on it
    per = _interleaved(graphs, args.rounds, settings)
    segments = [f"segment_{k}" for k in range(len(EXITS) + 1)]
    ratios = [
        expected_latency(calibration.shares, [per[s][r] for s in segments]).expected_ms
        / per["without_exits"][r]
        for r in range(args.rounds)
    ]
    medians = {name: statistics.median(values) for name, values in per.items()}
    expected = expected_latency(calibration.shares, [medians[s] for s in segments])
    wall = _cascade_wall(folder, plain_onnx, x_val, args.wall_rounds)

    slices = evaluate_slices(folder / "model.onnx", dataset, families=SLICE_FAMILIES, severities=(1, 3, 5))
    per_slice = {
        s["name"]: {"final_exit_accuracy": s["accuracy"], **s["exits"]} for s in slices.to_dict()["slices"]
    }
    drop_vs_plain = 100 * (plain_accuracy - calibration.cascade_accuracy)
    reduction = 1 - statistics.median(ratios)
    body = {
        "scale": "proxy: built-in CIFAR-10 subset (5,000 train / 1,000 validation images), shared 2-core machine",
        "load_average_before_measuring": [round(x, 2) for x in load_before],  # 1, 5, 15 min; 2 cores
        "architecture": exits_arch.summary(),
        "exits_after": list(EXITS),
        "loss_weights": exit_weights(len(EXITS) + 1),
        "recipe": recipe.to_dict(),
        "seed": 0,
        "train_seconds": {name: round(seconds, 1) for name, (_, seconds) in trained.items()},
        "accuracy_without_exits": plain_accuracy,
        "calibration": calibration.to_dict(),
        "drop_vs_own_final_exit_points": calibration.drop_points,
        "drop_vs_network_without_exits_points": drop_vs_plain,
        "half_split_check": _half_calibration(probabilities, labels, args.max_drop),
        "runtime_check": runtime_check,
        "latency": {
            "protocol": "x86-cpu profile: ONNX Runtime CPU, 1 thread, graph optimization all, batch 1",
            "rounds": args.rounds,
            "median_ms": medians,
            "per_round_ms": per,
            "expected": expected.to_dict(),
            "ratio_expected_over_without_exits_per_round": ratios,
            "ratio_median": statistics.median(ratios),
            "ratio_range": [min(ratios), max(ratios)],
            "reduction": reduction,
        },
        "cascade_wall_time": wall,
        "exit_rates_per_slice": per_slice,
        "target": {
            "max_drop_points": 0.5,
            "min_reduction": 0.25,
            # the calibration's bound is counted in images; 1e-9 absorbs the float of 100 * (a - b)
            "met_vs_own_final_exit": calibration.drop_points <= 0.5 + 1e-9 and reduction >= 0.25,
            "met_vs_network_without_exits": drop_vs_plain <= 0.5 + 1e-9 and reduction >= 0.25,
        },
        "cpu_seconds": round(time.process_time() - cpu0, 1),
        "rerun_quietly": "python benchmarks/early_exits.py --rounds 21",
    }
    path = write_result("early_exits", body, started=started, out=args.out)
    print(
        f"accuracy without exits {plain_accuracy:.3f}, cascade {calibration.cascade_accuracy:.3f} "
        f"(final exit {calibration.final_accuracy:.3f}), shares {calibration.shares}, "
        f"expected/without {statistics.median(ratios):.3f} -> {path}"
    )
    return 0


if __name__ == "__main__":
    run_main(main)
