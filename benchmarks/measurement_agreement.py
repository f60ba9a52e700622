"""Benchmark: how well the `x86-cpu` protocol's measurements of the same networks agree with themselves,
by the statistic a measurement reports.

A measurement (`nas.latency.measure_latency`) times 5 rounds of about 25 ms in one ONNX Runtime session and
reports the median of the round medians. On a machine whose speed changes in phases (a shared virtual
machine), two measurements of the same network can disagree by more than any latency model can be right.
This measures 40 random `mobilenet` networks (seed 3) in 4 passes, one after another, and scores one
measurement against another taken later, for:

- `median`: the protocol's statistic, pass 1 against pass 3 and pass 2 against pass 4;
- `fastest round`: the smallest round median of the same session, pass 1 against pass 3;
- the smaller of two sessions (passes 1 and 2 against passes 3 and 4), for both statistics;
- `paired with a reference`: two more passes in which a reference network (the median of the 40 by pass 1)
  is measured right before and right after each network, and each network's median is divided by the
  geometric mean of those two: a slow phase of the machine that spans the three measurements (under a
  second) cancels, as it does between models measured in the same interleaved round
  (benchmarks/headline.py). Reported as the ratio times the reference's median over both passes.

Run it with nothing else on the CPU (latency measurements); about 90 s.

    .venv/bin/python benchmarks/measurement_agreement.py   # writes results/benchmarks/measurement_agreement.json
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
from benchmarks._paired import paired_latencies, paired_pass, reference_network  # noqa: E402
from nas.latency import error_metrics, load_profile, measure_latency, write_bundle  # noqa: E402

BENCHMARK = Benchmark(cost="cheap", seconds=104)  # measurement_agreement.json benchmark_seconds
NETWORKS = 40
PASSES = 4


def agreement(first, second) -> dict:
    """`second` scored as a prediction of `first`: MAPE, share within +-10%, Kendall tau."""
    return error_metrics(np.asarray(second), np.asarray(first))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=NETWORKS)
    parser.add_argument("--out", default=None, help="the result file (default: results/benchmarks/)")
    args = parser.parse_args()
    start = time.perf_counter()
    settings = load_profile("x86-cpu").measurement
    with tempfile.TemporaryDirectory(prefix="nas-bench-agreement-") as folder:
        bundle = write_bundle(
            "mobilenet", Path(folder) / "bundle", networks=args.networks, seed=3, blocks=False
        )
        entries = json.loads((bundle / "bundle.json").read_text())["models"]
        paths = [bundle / e["path"] for e in entries if e["kind"] == "network"]
        passes = [[measure_latency(path, settings) for path in paths] for _ in range(PASSES)]
        reference = reference_network(paths, [m.median_ms for m in passes[0]])
        paired = [paired_pass(paths, reference, settings) for _ in range(2)]
    median = np.array([[m.median_ms for m in row] for row in passes])
    fastest = np.array([[min(m.round_medians_ms) for m in row] for row in passes])
    rows = {
        "median, pass 1 vs 3": agreement(median[0], median[2]),
        "median, pass 2 vs 4": agreement(median[1], median[3]),
        "fastest round, pass 1 vs 3": agreement(fastest[0], fastest[2]),
        "fastest round, pass 2 vs 4": agreement(fastest[1], fastest[3]),
        "median, smaller of 2 sessions": agreement(median[:2].min(0), median[2:].min(0)),
        "fastest round, smaller of 2 sessions": agreement(fastest[:2].min(0), fastest[2:].min(0)),
        "paired with a reference, pass 5 vs 6": agreement(*paired_latencies(paired)),
    }
    for name, row in rows.items():
        print(
            f"{name:<38} MAPE {row['mape']:5.1f}%  within 10% {100 * row['within_10pct']:3.0f}%  "
            f"tau {row['kendall_tau']:.3f}"
        )
    result = {
        "networks": len(paths),
        "passes": PASSES + 2,
        "protocol": settings.to_dict(),
        "definition": "each row scores the later measurement of the same 40 networks against the earlier one "
        "(MAPE, share within +-10%, Kendall tau); 'median': the protocol's median of round medians; 'fastest "
        "round': the smallest round median of the same session; 'smaller of 2 sessions': per network the "
        "smaller value of passes 1 and 2 against that of passes 3 and 4; 'paired with a reference': passes 5 and 6, "
        "each network's median over the geometric mean of the reference network's measured right before and "
        "after it, times the reference's median over both passes",
        "agreement": rows,
    }
    write_result("measurement_agreement", result, started=start, out=args.out)
    return 0


if __name__ == "__main__":
    run_main(main)
