"""Benchmark: transfer (`nas train --init`) against training from scratch, for equal compute.

    python benchmarks/transfer.py [--pretrain-epochs 10] [--epochs 40] [--seeds 0 1]

Recipe (one torch thread, the shipped CIFAR-10 subset, 32x32): a small MobileNetV2-style network (stem 16,
stages of 2 MBConv blocks at widths 24 / 40 (SE) / 64, head 128; about 0.1 M parameters) is pretrained
with `deploy_train` on every training image of classes 0-4 (2,500 images, --pretrain-epochs). On classes
5-9, 10% of their training images (50 per class) then train the same architecture for --epochs each: from
scratch, from the pretrained weights (every layer fine-tuned), with the stem and the first two stages
frozen, and with only the head trained. Every target arm runs the same recipe (`nas train`'s: batch 128,
so 1 step of 128 images per epoch on 250 images), so each sees the same epochs x images; the pretraining
is reported apart, once. Accuracy is on the shipped held-out images of classes 5-9 (100 per class),
averaged over --seeds. CPU seconds are the process CPU time of each `deploy_train` call (training,
evaluation and the ONNX export). Writes results/benchmarks/transfer.json; runs in
results/benchmark-runs/transfer/ (a rerun with the same settings reuses the trainings recorded there).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import RUNS, Benchmark, read_json, run_main, write_json, write_result  # noqa: E402

BENCHMARK = Benchmark(
    cost="full", seconds=896, data=("nas/datasets/cifar10_subset.zip",)
)  # transfer.json "benchmark_seconds"

SOURCE_CLASSES, TARGET_CLASSES = range(0, 5), range(5, 10)
TARGET_FRACTION = 0.1
ARMS = {  # name -> deploy_train's transfer settings (None: from scratch)
    "scratch": None,
    "fine-tune all": {"freeze_stages": 0, "head_only": False},
    "freeze stem + 2 stages": {"freeze_stages": 2, "head_only": False},
    "head only": {"freeze_stages": 0, "head_only": True},
}


def architecture():
    from nas.space import Architecture, BlockSpec, StageSpec

    def mbconv(expansion=3, se=False):
        return BlockSpec("mbconv", kernel=3, expansion=expansion, se=se, activation="relu")

    stages = (
        StageSpec("a", 2, 24, (mbconv(), mbconv())),
        StageSpec("b", 2, 40, (mbconv(se=True), mbconv(se=True))),
        StageSpec("c", 2, 64, (mbconv(4), mbconv(4))),
    )
    return Architecture("transfer", 32, 16, 3, 1, "relu", stages, 128, "relu", 0.0)


def task(data, classes, fraction: float, seed: int):
    """The images of `classes` (labels renumbered from 0): a `fraction` of each class's training images,
    all of its held-out ones; normalised with the whole shipped set's statistics (one input contract)."""
    import numpy as np

    from nas.data import ImageDataset

    rng = np.random.default_rng(seed)
    keep_train = np.concatenate(
        [
            rng.permutation(np.flatnonzero(data.y_train == c))[: round(fraction * (data.y_train == c).sum())]
            for c in classes
        ]
    )
    keep_val = np.flatnonzero(np.isin(data.y_val, list(classes)))
    relabel = {c: i for i, c in enumerate(classes)}
    return ImageDataset(
        f"builtin classes {classes[0]}-{classes[-1]} ({fraction:.0%} of training images)",
        tuple(data.classes[c] for c in classes),
        data.x_train[keep_train],
        np.array([relabel[c] for c in data.y_train[keep_train]]),
        data.x_val[keep_val],
        np.array([relabel[c] for c in data.y_val[keep_val]]),
        data.mean,
        data.std,
    )


def model_folder(folder: Path, arch, dataset) -> Path:
    """The smallest folder `nas train` reads: spec.json (architecture, classes, preprocessing) and metrics."""
    from nas.evaluate import preprocessing_spec

    folder.mkdir(parents=True, exist_ok=True)
    pre = preprocessing_spec(dataset.mean, dataset.std, arch.resolution, dataset.classes)
    spec = {"architecture": arch.to_dict(), "num_classes": dataset.num_classes, "preprocessing": pre}
    write_json(folder / "spec.json", spec)
    write_json(folder / "metrics.json", {})
    return folder


def train(export: Path, out: Path, **settings) -> dict:
    """One `deploy_train` from the start, or its recorded result when `out` holds this very training (a
    rerun after a kill continues with the trainings left); its metrics and CPU seconds."""
    from nas.export import deploy_train

    record = out / "benchmark_record.json"
    key = {k: str(v) if isinstance(v, Path) else v for k, v in settings.items() if k != "dataset"}
    key["dataset"] = settings["dataset"].describe()
    if record.is_file() and read_json(record, "record")["settings"] == key:
        return read_json(record, "record")["metrics"]
    shutil.rmtree(out, ignore_errors=True)
    cpu = time.process_time()
    deploy_train(export, out=out, **settings)
    metrics = read_json(out / "metrics.json", "metrics")
    metrics["cpu_seconds"] = time.process_time() - cpu
    write_json(record, {"settings": key, "metrics": metrics})
    return metrics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=40, help="training epochs of every target arm")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    started = time.perf_counter()
    import torch

    from nas.builder import build_model
    from nas.data import load_dataset

    torch.set_num_threads(1)
    runs = RUNS / "transfer"
    data = load_dataset("builtin")
    arch = architecture()
    source_task, target_task = (
        task(data, SOURCE_CLASSES, 1.0, 0),
        task(data, TARGET_CLASSES, TARGET_FRACTION, 0),
    )
    source_export = model_folder(runs / "source-architecture", arch, source_task)
    target_export = model_folder(runs / "target-architecture", arch, target_task)
    pretrained = runs / "pretrained"
    pre = train(source_export, pretrained, dataset=source_task, epochs=args.pretrain_epochs, seed=0)
    print(
        f"pretrained on classes 0-4: accuracy {100 * pre['accuracy']:.1f}%, {pre['cpu_seconds']:.0f} CPU s",
        flush=True,
    )
    arms = {}
    for name, transfer in ARMS.items():
        seeds = []
        for seed in args.seeds:
            out = runs / f"{name.replace(' ', '-').replace('+', 'and')}-seed{seed}"
            settings = dict(dataset=target_task, epochs=args.epochs, seed=seed)
            if transfer is None:
                m = train(target_export, out, **settings)
            else:
                m = train(source_export, out, init=pretrained, **settings, **transfer)
            seeds.append(m)
            print(
                f"{name}, seed {seed}: accuracy {100 * m['accuracy']:.1f}%, {m['cpu_seconds']:.0f} CPU s",
                flush=True,
            )
        accuracies = [m["accuracy"] for m in seeds]
        t = seeds[0].get("transfer") or {}
        arms[name] = {
            "accuracy_mean": statistics.fmean(accuracies),
            "accuracy_per_seed": accuracies,
            "cpu_seconds_mean": statistics.fmean(m["cpu_seconds"] for m in seeds),
            "train_seconds_mean": statistics.fmean(m["train_seconds"] for m in seeds),
            "trainable_params": t.get("trainable_params"),
            "tensors_matched": t.get("tensors_matched"),
            "tensors_skipped": t.get("tensors_skipped"),
        }
    recipe = seeds[0]["training"]
    images_per_epoch = min(recipe["batch_size"], len(target_task.y_train))
    write_result(
        "transfer",
        {
            "architecture": arch.to_dict(),
            "params": sum(p.numel() for p in build_model(arch, len(TARGET_CLASSES)).parameters()),
            "source_task": source_task.describe() | {"pretrain_epochs": args.pretrain_epochs},
            "target_task": target_task.describe(),
            "target_recipe": recipe,
            "target_images_seen_per_arm": args.epochs * images_per_epoch,
            "seeds": args.seeds,
            "pretraining": {
                "accuracy_on_classes_0_4": pre["accuracy"],
                "cpu_seconds": pre["cpu_seconds"],
                "train_seconds": pre["train_seconds"],
                "images_seen": args.pretrain_epochs * (len(source_task.y_train) // 128) * 128,
            },
            "arms": arms,
            "accuracy_gain_fine_tune_all_over_scratch": arms["fine-tune all"]["accuracy_mean"]
            - arms["scratch"]["accuracy_mean"],
        },
        started=started,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
