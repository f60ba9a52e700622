"""HTML reports of search runs: one run (`write_report`) or several side by side (`write_comparison`).

    import nas.report
    nas.report.write_report("results/search-mobilenet-x86-cpu-seed0")            # -> RUN_DIR/report/index.html
    nas.report.write_comparison([run_a, run_b], "results/compare")                # -> results/compare/compare.html

Pages are self-contained (PNG figures embedded as data URIs, inline CSS and a tiny inline script) and
the PNG files are written next to them. Hand-designed baselines: see `BASELINES_FORMAT`.
"""

from nas.report._compare import write_comparison
from nas.report._figures import PARETO_COLOUR, allocation_figure, allocation_values
from nas.report._load import BASELINES_FORMAT, load_run
from nas.report._report import write_report

__all__ = [
    "write_report",
    "write_comparison",
    "BASELINES_FORMAT",
    "load_run",
    "PARETO_COLOUR",
    "allocation_figure",
    "allocation_values",
]
