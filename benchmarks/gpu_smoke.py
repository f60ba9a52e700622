"""Benchmark: a short search trained on a CUDA GPU, checked against the same search on the CPU.

Both searches propose the same architectures (random sampler, one seed, no pre-screening, predicted
latency, so nothing that differs between the devices steers the proposals). Checks: the same architectures
in the same trials; proxy accuracies close (CUDA trains in bf16 where supported and with other kernels, so
a trial's accuracy differs as a change of training seed would: about 0.011 standard deviation per
architecture, benchmarks/proxy_noise.py); and a training repeated on the GPU gives the same result.
Needs a CUDA GPU; the benchmark runner skips it with one line elsewhere.

    python benchmarks/gpu_smoke.py            # writes results/benchmarks/gpu_smoke.json
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import nas  # noqa: E402
from benchmarks._harness import RUNS, Benchmark, BenchmarkError, run_main, write_result  # noqa: E402

BENCHMARK = Benchmark(cost="full", seconds=600, accelerator="cuda")  # an estimate: not run yet
SETTINGS = {
    "sampler": "random",
    "prescreen": 1,
    "profile": "raspberry-pi-4",  # predicted latency: the same on both runs
    "latency": "predicted",
    "allow_extrapolation": True,
    "seed": 0,
}
MAX_MEAN_ABS_DIFF = 0.03  # about twice the expected mean |difference| of two seeds (sd 0.011 each)
MAX_ABS_DIFF = 0.07  # about four standard deviations of such a difference


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--gpus-per-trial", type=float, default=0.25)
    parser.add_argument("--out", default=None, help="the result file (default: results/benchmarks/)")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        raise BenchmarkError("gpu_smoke needs a CUDA GPU (torch.cuda.is_available() is False here)")
    start = time.perf_counter()
    runs = {}
    for device in ("cpu", "cuda"):
        run_dir = RUNS / f"gpu_smoke-{device}"
        shutil.rmtree(run_dir, ignore_errors=True)
        began = time.perf_counter()
        nas.search(
            trials=args.trials,
            workers=args.workers,
            device=device,
            gpus_per_trial=args.gpus_per_trial if device == "cuda" else None,
            latency_budget_ms=None,  # every sampled candidate trains, as before the default budget
            out=str(run_dir),
            **SETTINGS,
        )
        runs[device] = {"rows": _trained(run_dir), "wall_seconds": round(time.perf_counter() - began, 1)}

    cpu, cuda = runs["cpu"]["rows"], runs["cuda"]["rows"]
    same_trials = sorted(cpu) == sorted(cuda)
    same_architectures = same_trials and all(cpu[n].arch_hash == cuda[n].arch_hash for n in cpu)
    pairs = [(cpu[n].accuracy, cuda[n].accuracy) for n in sorted(set(cpu) & set(cuda))]
    diffs = [abs(a - b) for a, b in pairs]
    mean_diff = sum(diffs) / len(diffs) if diffs else float("nan")
    repeat = _repeat_on_cuda(RUNS / "gpu_smoke-cuda")
    checks = {
        "same_architectures": same_architectures,
        "mean_abs_accuracy_diff_within_tolerance": bool(diffs) and mean_diff <= MAX_MEAN_ABS_DIFF,
        "max_abs_accuracy_diff_within_tolerance": bool(diffs) and max(diffs) <= MAX_ABS_DIFF,
        "cuda_training_repeats_exactly": repeat["identical"],
    }
    report = {
        "settings": {**SETTINGS, "trials": args.trials, "workers": args.workers},
        "gpu": torch.cuda.get_device_name(0),
        "gpus_per_trial": args.gpus_per_trial,
        "trained": {device: len(run["rows"]) for device, run in runs.items()},
        "search_wall_seconds": {device: run["wall_seconds"] for device, run in runs.items()},
        "train_seconds": {
            device: round(sum(r.train_seconds or 0.0 for r in run["rows"].values()), 1)
            for device, run in runs.items()
        },
        "accuracy_pairs_cpu_cuda": [[round(a, 4), round(b, 4)] for a, b in pairs],
        "mean_abs_accuracy_diff": round(mean_diff, 4),
        "max_abs_accuracy_diff": round(max(diffs), 4) if diffs else None,
        "tolerance": {"mean_abs": MAX_MEAN_ABS_DIFF, "max_abs": MAX_ABS_DIFF},
        "cuda_repeat": repeat,
        "checks": checks,
        "passed": all(checks.values()),
    }
    write_result("gpu_smoke", report, started=start, out=args.out)
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    return 0 if report["passed"] else 1


def _trained(run_dir: Path) -> dict:
    """The run's trained (complete) trials, by number."""
    from nas.records import TrialRecord, TrialStatus
    from nas.search import load_run_study

    records = (TrialRecord.from_trial(t) for t in load_run_study(run_dir).get_trials(deepcopy=False))
    return {r.number: r for r in records if r.status == TrialStatus.COMPLETE}


def _repeat_on_cuda(run_dir: Path) -> dict:
    """The first trained architecture of the CUDA run trained twice more here, on the GPU, with its seed."""
    from nas.data import load_dataset
    from nas.evaluate import ProxyTrainer, TrainingRecipe
    from nas.space import Architecture

    record = next(iter(sorted(_trained(run_dir).items())))[1]
    arch = Architecture.from_dict(record.architecture)
    dataset = load_dataset("builtin", val_fraction=0.1, seed=0)
    trainer = ProxyTrainer(TrainingRecipe(), device="cuda")
    first, second = (trainer.train(arch, dataset, seed=0) for _ in range(2))
    return {
        "trial": record.number,
        "accuracies": [first.accuracy, second.accuracy],
        "identical": first.accuracy == second.accuracy and first.state_dict == second.state_dict,
        "device": first.device,
    }


if __name__ == "__main__":
    run_main(main)
