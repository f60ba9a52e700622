"""Benchmark: the label-free drift alarm on a stream where a corruption gradually grows (built-in CIFAR-10).

1. A small convolutional network (not from the search space: an off-the-shelf-style classifier, NHWC
   input, preprocessing in a sidecar JSON) is trained for a few epochs on 3,000 of the built-in subset's
   training images and exported to ONNX.
2. The other 3,000 images (2,000 unseen training images + the 1,000 validation images) are shuffled
   (seeded): 2,250 in-distribution images in three folds, and a stream pool of 750.
3. False-alarm rate, cross-validated: for each fold, the alarm is calibrated on the other two (reference
   and bootstrap; stated rate 5%) and its rate measured on windows drawn from that fold; the mean over
   folds is the result (one fold's rate also reflects how that fold happens to differ from the others).
4. Detection: for each corruption family, windows from the stream pool with 30% of the images
   corrupted at severity 3; and a stream of windows whose corrupted fraction grows from 0 to 100%
   (severity 3), with accuracy per window, its Cochran-Armitage trend test and the alarm per window.

    python benchmarks/drift_alarm.py [--window 100] [--windows 200] [--bootstrap 500] [--epochs 4]
    # -> results/benchmarks/drift_alarm.json
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

from benchmarks._harness import Benchmark, run_main, write_result  # noqa: E402

BENCHMARK = Benchmark(cost="cheap", seconds=48)  # drift_alarm.json "benchmark_seconds"
FAMILIES = ("gaussian_noise", "defocus_blur", "contrast", "dark", "jpeg", "occlusion")
SEVERITY = 3
FRACTION = 0.3
TRAIN_IMAGES = 3000
IN_DISTRIBUTION = 2250  # the alarm's reference and held-out folds; the other 750 unseen images: the stream
FOLDS = 3


def train_smallnet(x: np.ndarray, y: np.ndarray, mean, std, epochs: int, seed: int):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)

    class SmallNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            layers, width = [], 3
            for out in (16, 32, 64):
                layers += [
                    torch.nn.Conv2d(width, out, 3, padding=1),
                    torch.nn.BatchNorm2d(out),
                    torch.nn.ReLU(),
                    torch.nn.MaxPool2d(2),
                ]
                width = out
            self.features = torch.nn.Sequential(*layers)
            self.head = torch.nn.Linear(64, 10)

        def forward(self, pixels):  # N x H x W x 3, normalised
            return self.head(self.features(pixels.permute(0, 3, 1, 2)).mean(dim=(2, 3)))

    net = SmallNet()
    inputs = (torch.tensor(x, dtype=torch.float32) / 255 - torch.tensor(mean)) / torch.tensor(std)
    targets = torch.tensor(y, dtype=torch.long)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(64):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(inputs[batch]), targets[batch]).backward()
            optimizer.step()
    return net.eval()


def export_smallnet(net, folder: Path, mean, std, classes) -> Path:
    import torch

    path = folder / "smallnet.onnx"
    torch.onnx.export(
        net,
        torch.zeros(1, 32, 32, 3),
        str(path),
        input_names=["pixels"],
        output_names=["logits"],
        dynamic_axes={"pixels": {0: "n"}, "logits": {0: "n"}},
        dynamo=False,
    )
    sidecar = {
        "input_size": [32, 32],
        "mean": list(mean),
        "std": list(std),
        "classes": list(classes),
        "layout": "NHWC",
    }
    (folder / "smallnet.preprocessing.json").write_text(json.dumps(sidecar))
    return path


def _mixed(clean, corrupted, index: np.ndarray, fraction: float, rng):
    """Observations of a window: `fraction` of its images taken from the corrupted versions."""
    from nas.validate import Observations

    take = np.zeros(len(index), bool)
    take[rng.choice(len(index), int(round(fraction * len(index))), replace=False)] = True
    return Observations(
        np.where(take, corrupted.confidence[index], clean.confidence[index]),
        np.where(take, corrupted.predicted[index], clean.predicted[index]),
        np.where(take[:, None], corrupted.features[index], clean.features[index]),
    ), take


def _draw(rng, pool: np.ndarray, window: int) -> np.ndarray:
    return rng.choice(len(pool), window, replace=False)


def main(argv=None) -> int:
    import nas
    from nas.validate import DriftMonitor, accuracy_trend, corrupt, load_candidate, observe

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--window", type=int, default=100, help="images per window (default: %(default)s)")
    p.add_argument(
        "--windows", type=int, default=200, help="windows per measured rate (default: %(default)s)"
    )
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=4, help="training epochs of the small network (default: 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="result JSON (default: results/benchmarks/drift_alarm.json)")
    args = p.parse_args(argv)
    started = time.perf_counter()
    data = nas.load_dataset("builtin", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(data.y_train))
    train, unseen = order[:TRAIN_IMAGES], order[TRAIN_IMAGES:]
    x = np.concatenate([data.x_train[unseen], data.x_val])
    y = np.concatenate([data.y_train[unseen], data.y_val])
    shuffled = rng.permutation(len(y))
    in_distribution, pool = shuffled[:IN_DISTRIBUTION], shuffled[IN_DISTRIBUTION:]
    t0 = time.perf_counter()
    net = train_smallnet(
        data.x_train[train], data.y_train[train], data.mean, data.std, args.epochs, args.seed
    )
    train_seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        model, source = load_candidate(export_smallnet(net, Path(tmp), data.mean, data.std, data.classes))
        clean = observe(model, x)
        corrupted = {
            family: observe(model, corrupt(x[pool], family, SEVERITY, args.seed)) for family in FAMILIES
        }
    correct = clean.predicted == y
    folds = np.array_split(in_distribution, FOLDS)
    false_alarms, detection, thresholds = [], {family: [] for family in FAMILIES}, []
    t0 = time.perf_counter()
    for k in range(FOLDS):  # reference: the other folds; held out: fold k
        reference = np.concatenate([f for j, f in enumerate(folds) if j != k])
        monitor = DriftMonitor.calibrate(
            clean.take(reference),
            len(data.classes),
            args.window,
            bootstrap=args.bootstrap,
            seed=args.seed + k,
        )
        thresholds.append(monitor.thresholds())
        false_alarms.append(monitor.false_alarm_rate(clean.take(folds[k]), args.window, args.windows, seed=k))
        for family in FAMILIES:
            hits = [
                monitor.check(
                    _mixed(clean.take(pool), corrupted[family], _draw(rng, pool, args.window), FRACTION, rng)[
                        0
                    ]
                )["alarm"]
                for _ in range(args.windows)
            ]
            detection[family].append(float(np.mean(hits)))
    calibrate_seconds = (time.perf_counter() - t0) / FOLDS
    # the gradual stream: the first family, its corrupted share growing window by window (last fold's monitor)
    family = FAMILIES[0]
    bad_correct = corrupted[family].predicted == y[pool]
    stream = []
    for k, fraction in enumerate(np.linspace(0, 1, 11)):
        window = _draw(rng, pool, args.window)
        obs, take = _mixed(clean.take(pool), corrupted[family], window, fraction, rng)
        hit = np.where(take, bad_correct[window], correct[pool][window])
        stream.append(
            {
                "window": k,
                "corrupted_fraction": float(fraction),
                "n": int(len(window)),
                "correct": int(hit.sum()),
                "accuracy": float(hit.mean()),
                **monitor.check(obs),
            }
        )
    false_alarm = float(np.mean(false_alarms))
    detected = {f: float(np.mean(r)) for f, r in detection.items()}
    trend = accuracy_trend([w["correct"] for w in stream], [w["n"] for w in stream])
    first_alarm = next((w["corrupted_fraction"] for w in stream if w["alarm"]), None)
    body = {
        "model": {
            "network": "SmallNet (3 conv stages, NHWC, sidecar preprocessing)",
            "preprocessing": source,
            "train_images": TRAIN_IMAGES,
            "epochs": args.epochs,
            "train_seconds": round(train_seconds, 1),
            "accuracy_unseen": float(correct.mean()),
        },
        "settings": {
            "window": args.window,
            "windows": args.windows,
            "bootstrap": args.bootstrap,
            "stated_false_alarm_rate": monitor.alpha,
            "in_distribution_images": IN_DISTRIBUTION,
            "folds": FOLDS,
            "stream_pool": int(len(pool)),
            "severity": SEVERITY,
            "corrupted_fraction": FRACTION,
            "seed": args.seed,
        },
        "calibration": {
            "statistic_thresholds_per_fold": thresholds,
            "seconds_per_fold": round(calibrate_seconds, 2),
        },
        "false_alarm_rate": false_alarm,
        "false_alarm_rate_per_fold": false_alarms,
        "detection_rate": detected,
        "detection_rate_per_fold": detection,
        "targets": {
            "false_alarm_rate_at_most": 0.05,
            "detection_rate_at_least": 0.9,
            "false_alarm_met": false_alarm <= 0.05,
            "detection_met": {f: r >= 0.9 for f, r in detected.items()},
        },
        "stream": {
            "family": family,
            "severity": SEVERITY,
            "trend": trend,
            "first_alarm_fraction": first_alarm,
            "windows": stream,
        },
    }
    print(
        f"false-alarm rate {100 * false_alarm:.1f}% on held-out windows of {args.window} "
        f"(per fold: {', '.join(f'{100 * r:.1f}%' for r in false_alarms)})"
    )
    for f, r in detected.items():
        print(f"{f}@{SEVERITY} on {100 * FRACTION:.0f}% of a window: detected in {100 * r:.1f}% of windows")
    print(
        f"stream ({family}): first alarm at {first_alarm} corrupted; accuracy trend {trend['direction']} "
        f"(p = {trend['p_value']:.3g})"
    )
    write_result("drift_alarm", body, started=started, out=args.out)
    return 0


if __name__ == "__main__":
    run_main(main)
