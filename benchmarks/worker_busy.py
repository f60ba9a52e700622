"""Benchmark: the share of worker time spent training, with the batch barrier (BatchDriver) and without it
(SteadyDriver), target >= 90% without it.

Two searches per driver, latency predicted by a frozen copy of the x86-cpu model (the case where the
barrier can go):

- `2 workers`: a local Ray of 2 CPUs, real proxy trainings (1 epoch of 512 images of the built-in data);
- `8-CPU cluster` (the steady driver only): the same simulated trainings as the next scenario on a Ray node
  of 8 logical CPUs (the issue's other cluster size): twice as many trainings per worker, so the tail that
  a fixed trial count leaves (the last trainings ending one by one) is half as large a share;
- `16-CPU cluster`: a Ray node of 16 logical CPUs on this machine, simulated trainings: each sleeps a time
  drawn from its architecture (15 to 45 s; the same architecture, the same time), so what is measured is
  the scheduling, not 16 trainings sharing 2 cores. Its 16 workers are started before the search. The
  time is drawn from the architecture's hash: nothing the driver knows predicts it;
- `16-CPU cluster, durations from MACs` (the steady driver only): the same node, each sleep as long as a
  real training of that network would be relative to the others, as far as its MACs tell: log seconds
  linear in log MACs with the slope and the residual spread that the 24 trainings of
  `search_throughput.py` (2026-12-01) have (0.46, 0.36), a median of 20 s at the space's median MACs, the
  residual drawn from the hash. It shows what the steady driver's last round, started longest first by
  MACs, does when MACs predict training time as well as they do for real trainings.

Busy share = (sum over training tasks of the seconds inside the trainer, recorded by the worker) /
(workers x seconds from the first training's start to the last one's end). A search's last trainings
end one by one (the budget is spent), so the share of the phase before the last training started is
reported too, and the seconds from the first training's start to the start of the `workers`-th (how long
the driver took to give every worker its first candidate).

    python benchmarks/worker_busy.py            # writes results/benchmarks/worker_busy.json
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import shutil
import sys
import time
import uuid
from pathlib import Path
from statistics import NormalDist

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import RUNS, Benchmark, run_main, write_result  # noqa: E402
from benchmarks.search_efficiency import frozen_profile  # noqa: E402
from nas.evaluate import ProxyTrainer, TrainingRecipe, TrainingResult  # noqa: E402

if __name__ != "__main__":  # imported (the runner): the trainer travels to the Ray workers by value
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])

BENCHMARK = Benchmark(cost="full", seconds=798)  # worker_busy.json benchmark_seconds (quiet, 2026-12-02)
TARGET = 0.9
SETTINGS = {
    "sampler": "nsga2",
    "population": 8,
    "prescreen": 1,
    "latency": "predicted",
    "seed": 0,
    "latency_budget_ms": None,  # every sampled candidate trains
}


# Simulated training seconds from MACs: log-linear, fitted on search_throughput.py's 24 trainings (see above)
MACS_EXPONENT, MACS_RESIDUAL_SIGMA = 0.46, 0.36
MEDIAN_SECONDS, MEDIAN_MACS = 20.0, 6.36e6  # the median MACs of 256 uniform draws of the mobilenet space


def simulated_seconds(arch, num_classes: int, simulate: tuple[float, float] | str) -> float:
    """How long a simulated training sleeps: (low, high): uniform in it by the architecture's hash; "macs": from
    the network's MACs, with a residual drawn from the hash (the same architecture, the same time)."""
    if simulate != "macs":
        low, high = simulate
        return low + (high - low) * int(arch.hash[:6], 16) / 0xFFFFFF
    from nas.builder import build_model
    from nas.evaluate import count_costs

    macs = count_costs(build_model(arch, num_classes, seed=0), arch.resolution).macs
    residual = NormalDist().inv_cdf((int(arch.hash[:6], 16) + 0.5) / 0x1000000) * MACS_RESIDUAL_SIGMA
    return MEDIAN_SECONDS * (macs / MEDIAN_MACS) ** MACS_EXPONENT * math.exp(residual)


class TimedTrainer(ProxyTrainer):
    """The proxy trainer (or, `simulate`: a sleep, see `simulated_seconds`), recording each call's start and
    end (wall clock of this machine) in a file of `log_dir`."""

    def __init__(
        self, recipe: TrainingRecipe, log_dir: Path, simulate: tuple[float, float] | str | None = None
    ):
        super().__init__(recipe)
        self.log_dir, self.simulate = str(log_dir), simulate

    def train(self, arch, dataset, seed, *, stop_after=None, resume=None):
        if self.simulate is None:
            start = time.time()
            result = super().train(arch, dataset, seed, stop_after=stop_after, resume=resume)
        else:
            seconds = simulated_seconds(arch, dataset.num_classes, self.simulate)
            start = time.time()
            time.sleep(seconds)
            result = TrainingResult(
                accuracy=int(arch.hash[6:12], 16) / 0xFFFFFF,
                val_loss=1.0,
                train_seconds=time.time() - start,
                eval_seconds=0.0,
                epochs=1,
                state_dict=b"",
                device="cpu",
            )
        Path(self.log_dir, f"{uuid.uuid4().hex}.json").write_text(json.dumps([start, time.time()]))
        return result


def busy_share(log_dir: Path, workers: int) -> dict:
    intervals = sorted(json.loads(p.read_text()) for p in log_dir.glob("*.json"))
    first, last_start, last_end = intervals[0][0], max(s for s, _ in intervals), max(e for _, e in intervals)
    busy = sum(e - s for s, e in intervals)
    before_last_start = sum(max(0.0, min(e, last_start) - s) for s, e in intervals)
    return {
        "trainings": len(intervals),
        "training_phase_seconds": round(last_end - first, 1),
        "busy_share": round(busy / (workers * (last_end - first)), 4),
        "busy_share_before_last_start": round(before_last_start / (workers * (last_start - first)), 4),
        # how fast the driver screens at the start: every worker training from then on
        "seconds_to_fill_the_workers": round(intervals[min(workers, len(intervals)) - 1][0] - first, 1),
        **share_bounds([e - s for s, e in intervals], workers),
    }


def share_bounds(durations: list[float], workers: int, draws: int = 2000) -> dict:
    """The busy share these trainings would give with no time between them, started as each worker frees:
    in an order that does not know their durations (the mean over random orders: what a driver that cannot
    predict a training's length reaches on average, the end of the search included), in such orders with
    the last `workers` longest first (the steady driver's last round with a perfect estimate), and all
    longest first."""

    def share(order: list[float]) -> float:
        free = [0.0] * workers
        for duration in order:
            heapq.heapreplace(free, free[0] + duration)
        return sum(order) / (workers * max(free))

    def last_round_longest_first(order: list[float]) -> list[float]:
        head = len(order) - min(workers, len(order))
        return order[:head] + sorted(order[head:], reverse=True)

    rng = random.Random(0)
    orders = [rng.sample(durations, len(durations)) for _ in range(draws)]
    return {
        "busy_share_bound_durations_unknown": round(sum(map(share, orders)) / draws, 4),
        "busy_share_bound_last_round_longest_first": round(
            sum(share(last_round_longest_first(o)) for o in orders) / draws, 4
        ),
        "busy_share_bound_longest_first": round(share(sorted(durations, reverse=True)), 4),
    }


def run_search(name: str, driver: str, workers: int, trials: int, trainer_args: dict, profile: Path) -> dict:
    """One search with the driver named, built as `nas.search` builds it (whatever the latency mode)."""
    from nas.data import load_dataset
    from nas.latency import load_profile
    from nas.search import BatchDriver, Progress, RayExecutor, SearchConfig, SteadyDriver, open_study
    from nas.space import load_space

    run_dir = RUNS / "worker_busy" / f"{name}-{driver}"
    log_dir = run_dir.with_name(run_dir.name + "-intervals")
    for folder in (run_dir, log_dir):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    chosen = {"batch": BatchDriver, "steady": SteadyDriver}[driver]
    config = SearchConfig(trials=trials, profile=str(profile), out=str(run_dir), **SETTINGS)
    executor = RayExecutor(workers=workers)  # the Ray this process started: its CPUs
    search = chosen.from_config(
        config,
        study=open_study(run_dir, config.sampler, config.population, config.seed),
        space=load_space(config.space),
        profile=load_profile(config.profile),
        dataset=load_dataset(config.dataset, val_fraction=config.val_fraction, seed=config.seed),
        executor=executor,
        trainer=TimedTrainer(log_dir=log_dir, **trainer_args),
    )
    progress = Progress(total=trials)
    start = time.perf_counter()
    search.run(trials, progress)
    return {
        "driver": chosen.__name__,
        "trials": progress.done,
        "complete": progress.feasible,
        "search_wall_seconds": round(time.perf_counter() - start, 1),
        **busy_share(log_dir, executor.workers),
    }


def start_ray(cpus: int) -> None:
    """A Ray node of `cpus` logical CPUs, every worker process started and its imports done (a cluster
    already running), so the first search of a scenario pays no more start-up than the second."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    ray.init(
        address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR"
    )

    @ray.remote(num_cpus=1)
    def started() -> int:
        from nas.search import train_candidate  # noqa: F401 - what a training imports first (torch too)

        time.sleep(2)
        return 0

    ray.get([started.remote() for _ in range(cpus)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12, help="trials of each 2-worker search")
    parser.add_argument("--cluster-trials", type=int, default=64, help="trials of each cluster search")
    parser.add_argument("--out", default=None, help="the result file (default: results/benchmarks/)")
    args = parser.parse_args()
    import ray

    start = time.perf_counter()
    profile = frozen_profile()
    real = {"recipe": TrainingRecipe(epochs=1, train_subset=512, batch_size=64)}
    simulated = {"recipe": TrainingRecipe(epochs=1), "simulate": (15.0, 45.0)}
    from_macs = {"recipe": TrainingRecipe(epochs=1), "simulate": "macs"}
    scenarios = {}
    for name, cpus, trials, trainer_args, drivers in (
        ("2 workers", 2, args.trials, real, ("batch", "steady")),
        ("8-CPU cluster", 8, args.cluster_trials, simulated, ("steady",)),
        ("16-CPU cluster", 16, args.cluster_trials, simulated, ("batch", "steady")),
        ("16-CPU cluster, durations from MACs", 16, args.cluster_trials, from_macs, ("steady",)),
    ):
        start_ray(cpus)
        try:
            scenarios[name] = [
                run_search(
                    f"{cpus}-cpus" + ("-macs" if trainer_args is from_macs else ""),
                    driver,
                    cpus,
                    trials,
                    trainer_args,
                    profile,
                )
                for driver in drivers
            ]
        finally:
            ray.shutdown()
    report = {
        "settings": {**SETTINGS, "profile": "x86-cpu, predicted by a frozen copy of its model"},
        "scenarios": {
            "2 workers": "local Ray of 2 CPUs; real proxy trainings, 1 epoch of 512 images",
            "8-CPU cluster": "Ray node of 8 logical CPUs on this 2-core machine; the 16-CPU cluster's simulated "
            "trainings, twice as many per worker; steady driver only",
            "16-CPU cluster": "Ray node of 16 logical CPUs on this 2-core machine; simulated trainings "
            "(a sleep of 15-45 s drawn from the architecture's hash)",
            "16-CPU cluster, durations from MACs": "the same node; simulated trainings whose log seconds are "
            f"linear in log MACs (slope {MACS_EXPONENT}, residual sd {MACS_RESIDUAL_SIGMA}, as the trainings of "
            f"search_throughput.py), {MEDIAN_SECONDS:g} s at {MEDIAN_MACS / 1e6:g} M MACs; steady driver only",
        },
        "definition": "busy_share: sum of seconds inside the trainer over training tasks / (workers x seconds "
        "from the first training's start to the last one's end); busy_share_before_last_start: the same up "
        "to the start of the last training (before the budget runs out); busy_share_bound_durations_unknown: "
        "the same trainings back to back, started as each worker frees, in random orders (mean of 2000): what a "
        "driver that cannot predict a training's length reaches on average with no time between trainings; "
        "busy_share_bound_last_round_longest_first: the same orders with the last `workers` trainings longest "
        "first; busy_share_bound_longest_first: the same, all longest first",
        "target_busy_share": TARGET,
        "results": scenarios,
    }
    write_result("worker_busy", report, started=start, out=args.out)
    print(json.dumps(scenarios, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main)
