"""Benchmark: how far choosing *which* candidates to train can take the search-efficiency target.

    python benchmarks/efficiency_headroom.py [--draws 400]   # after benchmarks/search_efficiency.py

The target: reach random search's final hypervolume (24 trials) with at most half its compute, i.e. with
12 trainings. This replays that race offline, many times, on what the search-efficiency runs measured:
for each seed, the pool is every distinct architecture any of its runs trained below the reference
latency (within a seed, an architecture's proxy accuracy is the same in every run: same split, same
training seed). Each draw compares 24 random picks from the pool with 12 trainings chosen by a policy,
batch by batch as the search does (batches of 4; each batch sees 4 x PROPOSALS random proposals; the first
batch, with no results yet, trains the first proposal of each latency band):
- random: 12 random picks (no selection);
- ehvi-costs: EHVI pre-screening with the accuracy model on log costs only (`--prescreen-score ehvi` until
  NASWOT joined it);
- ehvi-naswot: the shipped EHVI pre-screening (`--prescreen-score ehvi`: the model on log costs and NASWOT,
  the score recorded by the runs that computed it, else computed here as the search does);
- ehvi-choices: EHVI with a model on log costs and every per-stage choice (one-hot);
- oracle: knows every candidate's proxy accuracy and trains the largest true hypervolume gains; the
  ceiling of any accuracy predictor, because the proposals themselves are random;
- oracle+seed-noise: the oracle, seeing each accuracy through the proxy's seed-to-seed noise (sqrt 2 x the
  within-architecture SD of benchmarks/proxy_noise.py): a predictor as good as a second training run.
Reported per seed: the share of draws where the policy's 12 trainings reach the 24 random picks'
hypervolume, and how well each accuracy model ranks the rest of the pool (Kendall tau) when fitted on 4, 8
or 12 random candidates. The pool favours good architectures (most runs were guided searches) and preparation costs
nothing here, so these are optimistic for every policy. Writes results/benchmarks/efficiency_headroom.json.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import RESULTS, Benchmark, read_json, repo_path, run_main, write_result  # noqa: E402
from benchmarks.search_efficiency import REFERENCE_LATENCY_MS, RUNS  # noqa: E402
from nas.records import Attr  # noqa: E402

BENCHMARK = Benchmark(
    cost="full",
    seconds=1800,  # estimate: its result records no time
    needs=("search_efficiency", "proxy_noise"),
    data=("results/benchmark-runs/search_efficiency",),
)

FULL, HALF, BATCH = 24, 12, 4


@dataclass(frozen=True)
class Trained:
    accuracy: float
    latency_ms: float
    params: int
    macs: int
    naswot: float
    choices: tuple  # (name, value) of the sampler's per-stage choices (the Optuna trial's params)


def pool(seed: int) -> list[Trained]:
    """Every distinct architecture the seed's runs trained, below the reference latency, with its NASWOT score
    as the search computes it (the run's seed, a batch of the seed's training split); a singular kernel
    (-inf) counts as the pool's lowest score, as in the search."""
    from nas.search import finite_last_score, load_run_study, trained_trials

    found, scorer = {}, None
    for run_dir in sorted(path.parent for path in RUNS.glob(f"*-seed{seed}/study.db")):
        for t in trained_trials(load_run_study(run_dir)):
            accuracy, latency = t.values
            if latency < REFERENCE_LATENCY_MS and t.user_attrs[Attr.ARCH_HASH] not in found:
                naswot = t.user_attrs.get(Attr.NASWOT)
                if naswot is None:
                    scorer = scorer or naswot_scorer(run_dir)
                    naswot = scorer(t.user_attrs[Attr.ARCHITECTURE])
                found[t.user_attrs[Attr.ARCH_HASH]] = Trained(
                    accuracy,
                    t.user_attrs[Attr.LATENCY_MS],
                    t.user_attrs[Attr.PARAMS],
                    t.user_attrs[Attr.MACS],
                    naswot,
                    tuple(sorted(t.params.items())),
                )
    scores, _ = finite_last_score([(t.naswot,) for t in found.values()], [])
    return [replace(t, naswot=score) for t, (score,) in zip(found.values(), scores)]


def naswot_scorer(run_dir: Path):
    """architecture -> NASWOT, computed as the search of `run_dir` computes it."""
    import json

    from nas.data import load_dataset
    from nas.evaluate import zero_cost_scores

    search = json.loads((run_dir / "config.json").read_text())["search"]
    dataset = load_dataset(search["dataset"], val_fraction=search["val_fraction"], seed=search["seed"])
    return lambda arch: zero_cost_scores(
        json.loads(arch) if isinstance(arch, str) else arch, dataset, seed=search["seed"], scores=("naswot",)
    )["naswot"]


def hypervolume_of(trained: list[Trained]) -> float:
    from nas.search import hypervolume

    return hypervolume([(t.accuracy, t.latency_ms) for t in trained], REFERENCE_LATENCY_MS)


def choice_encoder(candidates: list[Trained]):
    """features(latency, params, macs, naswot, choices): log costs, numeric choices as numbers (0 where a
    stage's primitive has no such choice), the others one-hot; NASWOT is not used."""
    from nas.search import cost_features

    values: dict[str, set] = {}
    for c in candidates:
        for key, value in c.choices:
            values.setdefault(key, set()).add(value)
    numeric = {
        k for k, vs in values.items() if all(isinstance(v, (int, float)) for v in vs)
    }  # a bool is 0 or 1
    levels = {
        k: sorted(vs)[1:] for k, vs in values.items() if k not in numeric
    }  # the first level is the baseline

    def features(latency_ms: float, params: int, macs: int, naswot: float, choices: tuple) -> list[float]:
        given = dict(choices)
        out = cost_features(latency_ms, params, macs)
        for key in sorted(values):
            if key in numeric:
                out.append(float(given.get(key, 0.0)))
            else:
                out.extend(float(given.get(key) == level) for level in levels[key])
        return out

    return features


def costs_only(latency_ms: float, params: int, macs: int, naswot: float, choices: tuple) -> list[float]:
    """The earlier model's features: log costs."""
    from nas.search import cost_features

    return cost_features(latency_ms, params, macs)


def shipped(latency_ms: float, params: int, macs: int, naswot: float, choices: tuple) -> list[float]:
    """The search's features: log costs and NASWOT."""
    from nas.search import screening_features

    return screening_features(latency_ms, params, macs, naswot)


def ehvi(features):
    from nas.search import select_by_ehvi

    def choose(proposals: list[Trained], trained: list[Trained], keep: int) -> list[int]:
        return [
            i
            for i, _ in select_by_ehvi(
                [_describe(p) for p in proposals],
                [(t.accuracy, *_describe(t)) for t in trained],
                keep,
                REFERENCE_LATENCY_MS,
                features=features,
            )
        ]

    return choose


def oracle(noise_sd: float = 0.0, rng: random.Random | None = None):
    """Greedy true hypervolume gains; with noise_sd, each proposal's accuracy is seen through that much
    Gaussian noise."""

    def choose(proposals: list[Trained], trained: list[Trained], keep: int) -> list[int]:
        seen = [
            replace(p, accuracy=p.accuracy + (rng.gauss(0.0, noise_sd) if noise_sd else 0.0))
            for p in proposals
        ]
        chosen: list[int] = []
        for _ in range(keep):
            rest = [i for i in range(len(seen)) if i not in chosen]
            chosen.append(max(rest, key=lambda i: hypervolume_of(trained + [seen[j] for j in chosen + [i]])))
        return chosen

    return choose


def model_skill(candidates: list[Trained], features, fitted_on: int, draws: int, rng: random.Random) -> float:
    """Mean Kendall tau between the accuracy model's predictions and the proxy accuracies of the rest of the
    pool, when fitted on `fitted_on` random candidates (the search has 4-11 before each of its batches)."""
    from nas.latency import kendall_tau
    from nas.search import AccuracySurrogate

    taus = []
    for _ in range(draws):
        shuffled = rng.sample(candidates, len(candidates))
        fit, rest = shuffled[:fitted_on], shuffled[fitted_on:]
        model = AccuracySurrogate([(t.accuracy, *_describe(t)) for t in fit], features=features)
        taus.append(kendall_tau([model.predict(*_describe(t))[0] for t in rest], [t.accuracy for t in rest]))
    return round(statistics.mean(taus), 3)


def _describe(t: Trained) -> tuple:
    """A candidate as the accuracy models take it."""
    return t.latency_ms, t.params, t.macs, t.naswot, t.choices


def replay(candidates: list[Trained], choose, proposals: int, rng: random.Random) -> list[Trained]:
    """HALF trainings, batch by batch, each batch chosen from BATCH x `proposals` fresh random proposals."""
    left = candidates[:]
    rng.shuffle(left)
    trained: list[Trained] = []
    while len(trained) < HALF:
        offered, left = left[: BATCH * proposals], left[BATCH * proposals :]
        if not trained:  # no results yet: the first proposal of each latency band
            by_latency = sorted(range(len(offered)), key=lambda i: offered[i].latency_ms)
            bands = [
                by_latency[b * len(offered) // BATCH : (b + 1) * len(offered) // BATCH] for b in range(BATCH)
            ]
            picks = [min(band) for band in bands]
        else:
            picks = choose(offered, trained, BATCH)
        trained += [offered[i] for i in picks]
        left += [c for i, c in enumerate(offered) if i not in picks]  # not trained: may be proposed again
    return trained


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--proposals", default="8,16", help="proposals per trained candidate (pre-screening's K)"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    from nas.latency import kendall_tau

    seeds = [int(s) for s in args.seeds.split(",")]
    pools = {s: pool(s) for s in seeds}
    if any(len(p) < 2 * FULL for p in pools.values()):
        print(
            f"error: {repo_path(RUNS)}: too few recorded trainings (run benchmarks/search_efficiency.py first)",
            file=sys.stderr,
        )
        return 2
    ks = [int(k) for k in args.proposals.split(",")]
    # A second training run differs from the recorded one by two draws of the seed noise.
    noise_sd = (
        math.sqrt(2)
        * read_json(RESULTS / "proxy_noise.json", "proxy noise results")["within_architecture_sd"]
    )
    results = {}
    for seed, candidates in pools.items():
        rng = random.Random(seed)
        models = {"costs": costs_only, "naswot": shipped, "choices": choice_encoder(candidates)}
        policies = {
            "random": None,
            **{f"ehvi-{m} x{k}": (ehvi(f), k) for m, f in models.items() for k in ks},
            **{f"oracle x{k}": (oracle(), k) for k in ks},
            **{f"oracle+seed-noise x{k}": (oracle(noise_sd, rng), k) for k in ks},
        }
        reached = {name: 0 for name in policies}
        half_hv = {name: [] for name in policies}
        full_hv = []
        for _ in range(args.draws):
            full_hv.append(hypervolume_of(rng.sample(candidates, FULL)))
            for name, policy in policies.items():
                got = (
                    rng.sample(candidates, HALF)
                    if policy is None
                    else replay(candidates, policy[0], policy[1], rng)
                )
                half_hv[name].append(hypervolume_of(got))
                reached[name] += half_hv[name][-1] >= full_hv[-1]
        skill = {
            m: {f"fitted_on_{n}": model_skill(candidates, f, n, 100, rng) for n in (4, 8, 12)}
            for m, f in models.items()
        }
        skill["retraining noise (what oracle+seed-noise sees)"] = round(
            statistics.mean(
                kendall_tau(
                    [t.accuracy + rng.gauss(0.0, noise_sd) for t in candidates],
                    [t.accuracy for t in candidates],
                )
                for _ in range(100)
            ),
            3,
        )
        results[str(seed)] = {
            "pool": len(candidates),
            "random_24_mean_hypervolume": round(statistics.mean(full_hv), 4),
            "accuracy_model_kendall_tau": skill,
            "policies": {
                name: {
                    "reached_share": round(reached[name] / args.draws, 3),
                    "mean_hypervolume_12": round(statistics.mean(half_hv[name]), 4),
                }
                for name in policies
            },
        }
        print(
            seed,
            skill,
            {n: v["reached_share"] for n, v in results[str(seed)]["policies"].items()},
            flush=True,
        )
    all_seeds = {
        name: round(math.prod(results[str(s)]["policies"][name]["reached_share"] for s in seeds), 3)
        for name in results[str(seeds[0])]["policies"]
    }
    report = {
        "draws": args.draws,
        "race": f"{HALF} trainings chosen by the policy against {FULL} random picks, same pool",
        "reference_latency_ms": REFERENCE_LATENCY_MS,
        "seed_noise_sd": round(noise_sd, 4),
        "per_seed": results,
        "reached_on_all_seeds_probability": all_seeds,
    }
    write_result("efficiency_headroom", report, started=start)
    print("all seeds:", all_seeds)
    return 0


if __name__ == "__main__":
    run_main(main)
