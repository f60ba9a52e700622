"""Benchmark: latency for node kinds a device never measured (the prior), and prediction intervals.

1. Hidden kinds. For each shipped block-table profile (Jetson TX2, Raspberry Pi 4, Pixel 3) and each
   family of node kinds its table measured (e.g. every depthwise 5x5 convolution), the blocks using the
   family are held out; the model, coverage, interval and prior (from the `x86-cpu` reference) are
   fitted on the other blocks, and the held-out blocks are predicted: MAPE with the prior, MAPE with the
   family priced at zero (what a model without a prior does), the share inside the 90% interval, and
   which of the prior's rules priced the family (sibling, combination or scale: `nas.latency._prior`).
2. Interval coverage. Outer 5-fold split of each table: the interval is fitted on the training folds
   only (by their own inner cross-validation) and checked on the outer held-out blocks.
3. Two networks of the kind a user tried on the Raspberry Pi 4: the largest network of fused-MBConv k7
   blocks with SE and Hardswish in the `mobilenet` space, and a tiny depthwise-separable network. Their Pi 4
   prediction and interval, their latency measured here with the `x86-cpu` protocol, and the
   throughput the prediction implies against the throughput of the Pi's own measured blocks.
4. Prediction cost of one architecture on a profile with a prior (composed cached part features).

    .venv/bin/python benchmarks/latency_prior.py     # writes results/benchmarks/latency_prior.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import PROFILES, Benchmark, run_main, write_result  # noqa: E402
from nas.builder import build_model  # noqa: E402
from nas.evaluate import count_costs  # noqa: E402
from nas.latency import (  # noqa: E402  # noqa: E402
    BUILTIN_PROFILES,
    MIN_HIDDEN,
    MIN_KEPT,
    ArchitectureFeaturizer,  # noqa: E402
    Coverage,
    Interval,
    Predictor,
    Prior,
    block_table_samples,
    error_metrics,
    fit_latency_model,
    fit_sections,  # noqa: E402
    kind_family,
    load_profile,
    measure_latency,
    read_block_table,
    read_unique_blocks_table,
)
from nas.onnx_io import export_onnx  # noqa: E402
from nas.space import Architecture, load_space  # noqa: E402

BENCHMARK = Benchmark(cost="cheap", seconds=36)  # latency_prior.json "benchmark_seconds"
REFERENCE = "x86-cpu"


def _samples(name: str) -> list:
    spec = BUILTIN_PROFILES[name]
    path = PROFILES / "data" / spec["table"]
    rows = read_unique_blocks_table(path, spec["device"]) if spec["device"] else read_block_table(path)
    return block_table_samples(rows)


def _predictor(name: str, samples: list) -> Predictor:
    model = fit_latency_model(samples)
    _, sections, _ = fit_sections(samples, model, 5, 0, "benchmark", prior_reference=REFERENCE)
    prior = Prior.from_dict(sections["prior"]) if "prior" in sections else None
    return Predictor(
        name, model, Coverage.from_dict(sections["coverage"]), Interval.from_dict(sections["interval"]), prior
    )


def hidden_kinds(name: str, samples: list) -> list[dict]:
    families = sorted({kind_family(kind) for features, _ in samples for kind in features.kinds})
    results = []
    for family in families:
        uses = [any(kind_family(k) == family for k in features.kinds) for features, _ in samples]
        hidden = [s for s, used in zip(samples, uses) if used]
        kept = [s for s, used in zip(samples, uses) if not used]
        row = {"family": family, "hidden_blocks": len(hidden), "kept_blocks": len(kept)}
        if len(kept) < MIN_KEPT or len(hidden) < MIN_HIDDEN:
            results.append({**row, "skipped": f"needs >= {MIN_KEPT} kept and >= {MIN_HIDDEN} hidden blocks"})
            continue
        predictor = _predictor(name, kept)
        measured = np.array([latency for _, latency in hidden])
        predictions = [predictor.predict(features) for features, _ in hidden]
        with_prior = np.array([p.latency_ms for p in predictions])
        at_zero = np.array([predictor.model.predict(features) for features, _ in hidden])
        inside = np.mean([p.low_ms <= m <= p.high_ms for p, m in zip(predictions, measured)])
        results.append(
            {
                **row,
                "priced_by": _rule(predictor.prior, family),
                "mape_with_prior": error_metrics(with_prior, measured)["mape"],
                "mape_priced_at_zero": error_metrics(np.maximum(at_zero, 1e-9), measured)["mape"],
                "kendall_tau_with_prior": error_metrics(with_prior, measured)["kendall_tau"],
                "extrapolated_share_mean": float(np.mean([p.extrapolated_share for p in predictions])),
                "inside_interval": float(inside),
                "interval_high_over_low_median": float(
                    np.median([p.high_ms / p.low_ms for p in predictions])
                ),
            }
        )
    return results


def _rule(prior: Prior | None, family: str) -> str:
    """Which of the prior's rules (`nas.latency._prior`) priced the hidden family."""
    if prior is None:
        return "none"
    if any(kind_family(k) == family for kinds, _, _ in prior.siblings for k in kinds):
        return "sibling"
    if any(kind_family(k) == family for kinds, _ in prior.combinations for k in kinds):
        return "combination"
    return "scale"


def interval_coverage(name: str, samples: list, folds: int = 5, seed: int = 1) -> dict:
    order = np.random.default_rng(seed).permutation(len(samples))
    inside, widths = [], []
    for held in np.array_split(order, folds):
        held_set = set(held.tolist())
        train = [samples[i] for i in range(len(samples)) if i not in held_set]
        model = fit_latency_model(train)
        _, sections, _ = fit_sections(train, model, 5, 0, "benchmark")
        interval = Interval.from_dict(sections["interval"])
        for i in held:
            ratio = samples[i][1] / max(model.predict(samples[i][0]), 1e-9)
            inside.append(interval.low <= ratio <= interval.high)
        widths.append(interval.high / interval.low)
    return {
        "nominal": 0.9,
        "covered": float(np.mean(inside)),
        "n": len(inside),
        "high_over_low_mean": float(np.mean(widths)),
    }


def _network(
    primitive: str,
    kernel: int,
    expansion: float | None,
    se: bool,
    activation: str,
    resolution: int,
    widths: tuple[int, ...],
    depths: tuple[int, ...],
    head: int | None,
) -> Architecture:
    space = load_space("mobilenet")
    stages = []
    for stage, width, depth in zip(space.stages, widths, depths):
        block = {
            "primitive": primitive,
            "kernel": kernel,
            "expansion": expansion,
            "groups": None,
            "se": se,
            "activation": activation,
        }
        stages.append({"name": stage.name, "stride": stage.stride, "width": width, "blocks": [block] * depth})
    return Architecture.from_dict(
        {
            "space": "mobilenet",
            "resolution": resolution,
            "stem_channels": 16,
            "stem_kernel": 3,
            "stem_stride": 2,
            "stem_activation": activation,
            "stages": stages,
            "head_width": head,
            "head_activation": activation,
            "dropout": 0.0,
        }
    )


def user_networks() -> list[dict]:
    pi = load_profile("raspberry-pi-4")
    x86 = load_profile("x86-cpu")
    pi_rows = read_block_table(PROFILES / "data" / BUILTIN_PROFILES["raspberry-pi-4"]["table"])
    throughputs = []  # the Pi's own measured blocks, in G multiply-accumulates per second
    for features, latency in block_table_samples(pi_rows):
        macs = features.total("macs")
        if macs >= 1e6:
            throughputs.append(macs / (latency / 1000) / 1e9)
    networks = {
        "fused-MBConv k7 e6, SE, Hardswish, largest of the mobilenet space": _network(
            "fused_mbconv", 7, 6.0, True, "hardswish", 32, (24, 40, 80, 128), (2, 3, 3, 3), 512
        ),
        "tiny depthwise-separable k3, ReLU, 32x32": _network(
            "dwsep", 3, None, False, "relu", 32, (16, 24, 40, 64), (1, 1, 1, 1), None
        ),
    }
    rows = []
    for label, arch in networks.items():
        model = build_model(arch, num_classes=10, seed=0)
        macs = count_costs(model, arch.resolution).macs
        onnx_bytes = export_onnx(model, arch.resolution)
        prediction = pi.predict(onnx_bytes)
        measured_x86 = measure_latency(onnx_bytes, x86.measurement).median_ms
        implied = macs / (prediction.latency_ms / 1000) / 1e9
        rows.append(
            {
                "network": label,
                "architecture": arch.summary(),
                "macs": macs,
                "pi4": prediction.to_dict(),
                "pi4_implied_gmacs_per_s": implied,
                "x86_measured_ms_here": measured_x86,
                "pi4_over_x86": prediction.latency_ms / measured_x86,
            }
        )
    return [
        {
            "pi4_measured_blocks_gmacs_per_s": {
                "min": float(np.min(throughputs)),
                "median": float(np.median(throughputs)),
                "max": float(np.max(throughputs)),
                "blocks": len(throughputs),
            }
        },
        *rows,
    ]


def prediction_cost(n: int = 200) -> dict:
    import optuna

    space, profile = load_space("mobilenet"), load_profile("raspberry-pi-4")
    featurizer = ArchitectureFeaturizer()
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    archs = [space.sample(study.ask()) for _ in range(n)]
    features = [featurizer.features(a) for a in archs]  # warm the part cache, as a search does
    start, cpu_start = time.perf_counter(), time.process_time()
    for arch in archs:
        profile.predict(featurizer.features(arch))
    per_arch = (time.perf_counter() - start) / n * 1000
    cpu_per_arch = (time.process_time() - cpu_start) / n * 1000
    return {
        "architectures": n,
        "ms_per_prediction": per_arch,
        # the CPU time this process spent: what a loaded host's waiting for a core does not inflate
        "cpu_ms_per_prediction": cpu_per_arch,
        "parts_cached": len(featurizer),
        "features_sum_check": len(features),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="the result file (default: results/benchmarks/)")
    args = parser.parse_args()
    start = time.perf_counter()
    devices = {}
    for name in BUILTIN_PROFILES:
        samples = _samples(name)
        devices[name] = {
            "hidden_kinds": hidden_kinds(name, samples),
            "interval": interval_coverage(name, samples),
        }
    tested = [row for device in devices.values() for row in device["hidden_kinds"] if "skipped" not in row]
    result = {
        "reference": REFERENCE,
        "hidden_kinds_within_25pct": f"{sum(row['mape_with_prior'] <= 25 for row in tested)} of {len(tested)}",
        "devices": devices,
        "user_networks": user_networks(),
        "prediction_cost": prediction_cost(),
    }
    write_result("latency_prior", result, started=start, out=args.out)
    for name, device in devices.items():
        print(
            f"{name}: interval covered {100 * device['interval']['covered']:.0f}% of held-out blocks (nominal 90%)"
        )
        for row in device["hidden_kinds"]:
            if "skipped" in row:
                print(
                    f"  hide {row['family']:<22} skipped ({row['hidden_blocks']} hidden, {row['kept_blocks']} kept)"
                )
            else:
                print(
                    f"  hide {row['family']:<22} MAPE {row['mape_with_prior']:6.1f}% with prior "
                    f"({row['priced_by']}), {row['mape_priced_at_zero']:6.1f}% at zero; "
                    f"{100 * row['inside_interval']:.0f}% inside interval "
                    f"(median x{row['interval_high_over_low_median']:.1f} wide; {row['hidden_blocks']} blocks)"
                )
    for row in result["user_networks"][1:]:
        p = row["pi4"]
        print(
            f"{row['network']}: {row['macs'] / 1e6:.2f} M MACs; Pi 4 {p['latency_ms']:.2f} ms "
            f"[{p['low_ms']:.2f}, {p['high_ms']:.2f}] ({100 * p['extrapolated_share']:.0f}% extrapolated), "
            f"x86 here {row['x86_measured_ms_here']:.3f} ms, implied {row['pi4_implied_gmacs_per_s']:.2f} GMAC/s"
        )
    print(f"hidden kinds within 25% MAPE: {result['hidden_kinds_within_25pct']}")
    print(f"Pi 4 measured blocks: {result['user_networks'][0]['pi4_measured_blocks_gmacs_per_s']}")
    cost = result["prediction_cost"]
    print(
        f"prediction cost: {cost['ms_per_prediction']:.3f} ms per architecture "
        f"({cost['cpu_ms_per_prediction']:.3f} ms of CPU time)"
    )
    return 0


if __name__ == "__main__":
    run_main(main)
