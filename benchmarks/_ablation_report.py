"""The ablation benchmark's evaluation of its arms (benchmarks/ablation.py trains them): held-out accuracy,
x86 latency measured in interleaved rounds, the devices' predictions, and the table."""

from __future__ import annotations

import os
import re
import statistics
from pathlib import Path

from benchmarks._harness import read_json
from benchmarks._headline_report import DEVICES
from benchmarks.headline import held_out_accuracy, interleaved_orders

EXITS = ("s2", "s3")  # the stages the early-exit arm puts its exit heads after
BUILT_ON = {"pruned": "reference", "distilled + pruned + INT8": "distilled"}  # trained first, then cut
INT8_NOT_PREDICTED = "not predicted: the profiles' models were fitted on FP32 graphs (as nas quantize says)"


def exits_of(folder: Path) -> dict | None:
    """The `exits` entry a deployed cascade's spec.json holds (None: no cascade written there yet)."""
    return (
        read_json(folder / "spec.json", "model spec").get("exits")
        if (folder / "spec.json").is_file()
        else None
    )


def graphs_of(path: Path) -> list[bytes]:
    """The ONNX graphs an arm runs: its segments for a cascade folder, else its one model."""
    from nas.exits import SEGMENT_NAME

    if path.is_dir() and exits_of(path):
        return [(path / SEGMENT_NAME.format(k)).read_bytes() for k in range(len(EXITS) + 1)]
    return [(path / "model.onnx" if path.is_dir() else path).read_bytes()]


def held_out(path: Path, x, y) -> dict:
    """Held-out accuracy (95% Wilson interval); a cascade run by nas.runtime, with its exits' shares."""
    import numpy as np

    from nas.runtime import ExitCascade
    from nas.validate import preprocess, wilson_interval

    if not (path.is_dir() and exits_of(path)):
        return held_out_accuracy(path / "model.onnx" if path.is_dir() else path, x, y)
    pre = read_json(path / "spec.json", "model spec")["preprocessing"]
    ran = ExitCascade(path).run(preprocess(x, pre))
    correct, n = int((ran.prediction == y).sum()), len(y)
    low, high = wilson_interval(correct, n)
    return {
        "accuracy": round(correct / n, 4),
        "accuracy_ci95": [round(low, 4), round(high, 4)],
        "test_images": n,
        "exit_shares": [float(np.mean(ran.exit_taken == k)) for k in range(len(EXITS) + 1)],
        "final_exit_alone": held_out_accuracy(path / "model.onnx", x, y),
    }


# ---------------------------------------------------------------- latency


def measure_interleaved(graphs: dict[str, bytes], rounds: int, settings) -> dict[str, list[float]]:
    """Each graph measured once per round (`settings`: the profile's protocol), the order rotating."""
    from nas.latency import measure_latency

    names = list(graphs)
    per = {name: [] for name in names}
    for order in interleaved_orders(len(names), rounds):
        for i in order:
            per[names[i]].append(measure_latency(graphs[names[i]], settings).median_ms)
    return per


def arm_rounds(per_graph: list[list[float]], shares: list[float] | None) -> list[float]:
    """An arm's latency in each round: its one graph's, or a cascade's expected latency under `shares`."""
    from nas.exits import expected_latency

    if shares is None:
        return list(per_graph[0])
    return [expected_latency(shares, [g[r] for g in per_graph]).expected_ms for r in range(len(per_graph[0]))]


def predicted(graphs: list[bytes], shares: list[float] | None, device: str) -> dict:
    """The device profile's prediction (a cascade: the expected latency, intervals summed alike), or why not."""
    from nas.errors import NasError
    from nas.exits import expected_latency
    from nas.latency import load_profile

    try:
        per = [load_profile(device).predict(g) for g in graphs]
    except NasError as exc:  # ONNX node names look like paths: the results keep none
        return {"latency_ms": None, "why": re.sub(r"'/[^']*'", "'<node>'", str(exc))}
    extrapolated = max(p.extrapolated_share for p in per)
    if shares is None:
        p = per[0]
        return {
            "latency_ms": p.latency_ms,
            "low_ms": p.low_ms,
            "high_ms": p.high_ms,
            "level": p.level,
            "extrapolated_share": extrapolated,
        }
    e = expected_latency(
        shares, [p.latency_ms for p in per], [p.low_ms for p in per], [p.high_ms for p in per]
    )
    return {
        "latency_ms": e.expected_ms,
        "low_ms": e.low_ms,
        "high_ms": e.high_ms,
        "level": per[0].level,
        "extrapolated_share": extrapolated,
    }


# ---------------------------------------------------------------- the table


def _ms(p: dict) -> str:
    if p.get("latency_ms") is None:
        return "-"
    if p.get("low_ms") is None:
        return f"{p['latency_ms']:.3g}"
    return f"{p['latency_ms']:.3g} ({p['low_ms']:.3g}-{p['high_ms']:.3g})"


def table(networks: dict) -> str:
    """The markdown table of a result's `networks` (README and docs/benchmarks.md)."""
    lines = [
        "| network | arm | test accuracy % (95% CI) | points vs reference | x86 ms, median (fastest) | x86 / reference "
        "| Pi 4 ms, predicted (90%) | TX2 ms, predicted (90%) | training CPU-s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for network, arms in networks.items():
        for name, a in arms.items():
            low, high = a["accuracy_ci95"]
            x86 = a["x86-cpu"]
            lines.append(
                f"| {network} | {name} | {100 * a['accuracy']:.1f} ({100 * low:.1f}-{100 * high:.1f}) "
                f"| {a['points_vs_reference']:+.1f} | {x86['median_ms']:.3f} ({x86['min_ms']:.3f}) "
                f"| {x86['ratio_median']:.2f} "
                f"| {_ms(a['raspberry-pi-4'])} | {_ms(a['jetson-tx2'])} | {a['train_cpu_seconds']:.0f} |"
            )
    return "\n".join(lines)


def _train_cpu_seconds(path: Path) -> float:
    """One-thread seconds of an arm's own training (INT8: of the model it quantizes; pruned: cut + fine-tuning)."""
    folder = path if path.is_dir() else path.parent
    seconds = float(read_json(folder / "metrics.json", "model metrics").get("train_seconds") or 0.0)
    if (folder / "prune.json").is_file():
        seconds += float(read_json(folder / "prune.json", "prune record").get("cut_seconds") or 0.0)
    return seconds


def evaluate(arms: dict, x, y, rounds: int) -> tuple[dict, list[float]]:
    """Every arm's held-out accuracy, then x86 latency (all arms interleaved) and the devices' predictions."""
    from nas.latency import load_profile

    rows: dict[str, dict] = {}
    graphs: dict[str, list[bytes]] = {}
    for network, (_, network_arms) in arms.items():
        for arm, (techniques, path) in network_arms.items():
            graphs[f"{network}/{arm}"] = graphs_of(path)
            own = round(_train_cpu_seconds(path), 1)
            rows.setdefault(network, {})[arm] = {
                "techniques": list(techniques),
                "model": path,
                **held_out(path, x, y),
                "own_train_cpu_seconds": own,
            }
    load_before = os.getloadavg()  # the cores' load when measuring starts: the numbers below depend on it
    flat = {f"{key}/{k}": g for key, gs in graphs.items() for k, g in enumerate(gs)}
    per = measure_interleaved(flat, rounds, load_profile("x86-cpu").measurement)
    for network, network_rows in rows.items():
        series = {}
        for arm, row in network_rows.items():
            key, shares = f"{network}/{arm}", row.get("exit_shares")
            series[arm] = arm_rounds([per[f"{key}/{k}"] for k in range(len(graphs[key]))], shares)
            for device in DEVICES:
                int8 = "int8" in row["techniques"]
                row[device] = (
                    {"latency_ms": None, "why": INT8_NOT_PREDICTED}
                    if int8
                    else predicted(graphs[key], shares, device)
                )
            base = network_rows.get(BUILT_ON.get(arm, ""), {}).get("own_train_cpu_seconds", 0.0)
            row["train_cpu_seconds"] = (
                row["own_train_cpu_seconds"] + base
            )  # a pruned arm's source trained first
        for arm, row in network_rows.items():
            ratios = [a / b for a, b in zip(series[arm], series["reference"])]
            row["x86-cpu"] = {
                "median_ms": statistics.median(series[arm]),
                "rounds_ms": series[arm],
                "ratio_median": statistics.median(ratios),
                "ratio_range": [min(ratios), max(ratios)],
                # on a shared machine a round is quiet or slowed by other work: the fastest round of each arm
                # estimates its latency on a quiet machine (as the headline benchmark reports it)
                "min_ms": min(series[arm]),
                "ratio_of_min": min(series[arm]) / min(series["reference"]),
            }
            row["points_vs_reference"] = round(
                100 * (row["accuracy"] - network_rows["reference"]["accuracy"]), 2
            )
    return rows, [round(v, 2) for v in load_before]
