"""The `nas` command: argument parsing and messages only; every action is a call to the public API."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Sequence

from nas._cli import (
    FAILED,
    INTERRUPTED,
    TERMINATED,
    USAGE,
    add_format_argument,
    add_verbosity_arguments,
    catch_stop_signals,
    closed_stdout,
    disk_full,
    flush_stdout,
    print_json,
    restore_signals,
    start_logging,
    stop_logging,
    warn,
)
from nas._io import check_output_path
from nas._version import DISTRIBUTION, __version__
from nas.cli_adapt import add_adapt_command
from nas.cli_profile import add_profile_commands
from nas.cli_prune import add_prune_command
from nas.cli_select import add_selection_commands
from nas.cli_train import add_training_commands
from nas.cli_validate import add_validation_commands
from nas.errors import NasError, NasRuntimeError, Terminated, stop_signal
from nas.search import SearchConfig, add_config_arguments, config_from_arguments


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `nas` command; returns its exit code (the table in nas._cli and docs/cli.md)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return USAGE
    if args.quiet_all and hasattr(args, "quiet"):  # `nas -q COMMAND`: the command's own --quiet too
        args.quiet = True
    handler = start_logging(args.verbose, args.quiet_all)
    previous = catch_stop_signals()
    try:
        code = args.run(args)
        flush_stdout()
        return code
    except NasRuntimeError as exc:  # the input was fine; the work failed
        print(f"nas: error: {exc}", file=sys.stderr)
        return FAILED
    except NasError as exc:
        print(f"nas: error: {exc}", file=sys.stderr)
        return USAGE
    except BrokenPipeError:
        return closed_stdout()
    except (
        KeyboardInterrupt
    ) as exc:  # Ctrl-C, or SIGTERM (Terminated): what finished is written, Ray is shut down
        # Ray turns any KeyboardInterrupt raised while it waits into a plain one: the handler's record tells
        terminated = isinstance(exc, Terminated) or stop_signal() == signal.SIGTERM
        what, code = ("terminated (SIGTERM)", TERMINATED) if terminated else ("interrupted", INTERRUPTED)
        print(
            f"nas: {what}; run the same command again to resume"
            if args.command in ("search", "train", "export", "prune")
            else f"nas: {what}",
            file=sys.stderr,
        )
        return code
    except Exception as exc:
        full = disk_full(exc)
        if full is None:
            raise
        # files are written atomically (write, then rename): what was written before is intact
        print(
            f"nas: error: no space left on the device ({full}); free some space, then run the same command "
            "again (a search resumes where it stopped)",
            file=sys.stderr,
        )
        return FAILED
    finally:
        restore_signals(previous)
        stop_logging(handler)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas", description="Hardware-aware neural architecture search for lightweight vision models."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__} ({DISTRIBUTION})")
    add_verbosity_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser(
        "search",
        help="run (or resume) a hardware-aware search",
        description="Search a space for the most accurate networks per latency on a hardware profile. "
        "Re-running the same command resumes the run in its --out directory, and so does --resume RUN_DIR with "
        "the settings recorded there.",
    )
    add_config_arguments(s)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(run=_search)

    e = sub.add_parser("export", help="export the Pareto-optimal models of a run (ONNX + spec + metrics)")
    e.add_argument("run_dir", help="a run directory written by 'nas search'")
    e.add_argument("--out", default=None, help="output folder (default: RUN_DIR/export)")
    e.add_argument(
        "--force",
        action="store_true",
        help="export into a folder that holds other exports too (they are left as they are)",
    )
    add_format_argument(e, "each model.onnx")
    e.set_defaults(run=_export)

    add_training_commands(sub)

    r = sub.add_parser(
        "report", help="write a self-contained HTML report of a run (RUN_DIR/report/index.html)"
    )
    r.add_argument("run_dir", help="a run directory written by 'nas search'")
    r.add_argument("--out", default=None, help="output folder (default: RUN_DIR/report)")
    r.add_argument(
        "--network",
        type=int,
        default=None,
        help="trial number whose latency is broken down per stage (default: the most accurate Pareto-optimal network)",
    )
    r.add_argument(
        "--profile",
        dest="profiles",
        action="append",
        default=None,
        help="hardware profile for the per-stage breakdown; repeatable (default: the run's and every built-in one)",
    )
    r.set_defaults(run=_report)

    c = sub.add_parser(
        "compare", help="compare the Pareto fronts and capacity allocation of several runs (compare.html)"
    )
    c.add_argument("run_dirs", nargs="+", help="run directories written by 'nas search'")
    c.add_argument(
        "--out", default="results/compare", help="output folder, or a .html file (default: %(default)s)"
    )
    c.set_defaults(run=_compare)

    sp = sub.add_parser("spaces", help="list the built-in search spaces")
    sp.add_argument("--json", action="store_true", help="the list as JSON on stdout")
    sp.set_defaults(run=_spaces)

    add_validation_commands(sub)
    add_selection_commands(sub)
    add_adapt_command(sub)
    add_prune_command(sub)
    add_profile_commands(sub)

    p = sub.add_parser("profiles", help="list the built-in hardware profiles and their latency error")
    p.add_argument("--json", action="store_true", help="the list as JSON on stdout")
    p.set_defaults(run=_profiles)
    return parser


def _search(args) -> int:
    from nas.search import search

    config = config_from_arguments(args)
    check_output_path(config.run_dir, "--out")
    config = _bound_local_workers(config)
    result = search(config, show_progress=not args.quiet)
    if not result.complete:  # nothing trained: nothing to export, and not a success
        counts = f"{result.failed} failed, {result.infeasible} infeasible of {result.finished}"
        reasons = "; ".join(result.first_failures) or "no reason recorded"
        raise NasRuntimeError(f"no trial succeeded in {result.run_dir} ({counts}); first: {reasons}")
    _print_pareto(result)
    return 0


def _bound_local_workers(config: SearchConfig) -> SearchConfig:
    """A local Ray starts one process per worker: more workers than CPUs only cost memory (each ~180 MB) and
    time-share the CPUs, so they are capped at the CPU count, with a warning. A cluster decides for itself."""
    import os
    from dataclasses import replace

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if (
        config.workers is None
        or config.workers <= cpus
        or config.ray_address
        or os.environ.get("RAY_ADDRESS")
    ):
        return config
    warn(
        f"--workers {config.workers} is more than the {cpus} CPUs here; using {cpus} (one worker process per CPU)"
    )
    return replace(config, workers=cpus)


def _print_pareto(result) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Pareto front ({len(result.pareto)} of {result.complete} trained; "
        f"{result.infeasible} infeasible, {result.failed} failed)"
    )
    fleet = sorted({k for r in result.pareto for k in r if k.startswith("latency_ms@")})  # --budget devices
    for column in ("trial", "accuracy", "latency ms", *(f"ms on {k.partition('@')[2]}" for k in fleet)):
        table.add_column(column, justify="right")
    for column in ("spread", "params", "MACs", "peak KiB", "architecture"):
        table.add_column(column, justify="left" if column == "architecture" else "right")
    for r in result.pareto:
        table.add_row(
            str(r["trial"]),
            f"{r['accuracy']:.3f}",
            f"{r['latency_ms']:.3f}",
            *(f"{r[k]:.3f}" if r.get(k) is not None else "" for k in fleet),
            "predicted" if r["latency_spread"] is None else f"{100 * r['latency_spread']:.1f}%",
            f"{r['params']:,}",
            f"{r['macs']:,}",
            f"{r['peak_memory_kb']:,.0f}" if r.get("peak_memory_kb") is not None else "",
            r["summary"],
        )
    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(table)
    console.print(
        f"run directory: {result.run_dir}  ({result.seconds:.0f} s)   next: nas export {result.run_dir}"
    )


def _export(args) -> int:
    from nas.export import export_run

    if args.out:
        check_output_path(args.out, "--out")
    for model in export_run(args.run_dir, args.out, force=args.force, export_format=args.export_format):
        print(f"{model.onnx}  (ONNX Runtime vs PyTorch max |diff| {model.max_abs_diff:.1e})")
        if model.tflite:
            print(f"{model.tflite}  (LiteRT vs PyTorch max |diff| {model.tflite_max_abs_diff:.1e})")
    return 0


def _report(args) -> int:
    from nas.report import write_report

    if args.out:
        check_output_path(args.out, "--out")
    print(f"report: {write_report(args.run_dir, args.out, network=args.network, profiles=args.profiles)}")
    return 0


def _compare(args) -> int:
    from nas.report import write_comparison

    check_output_path(args.out, "--out", folder=Path(args.out).suffix != ".html")
    print(f"comparison: {write_comparison(args.run_dirs, args.out)}")
    return 0


def _spaces(args) -> int:
    from nas.space import list_spaces

    spaces = [s.describe() for s in list_spaces()]
    if args.json:
        print_json(spaces)
    else:
        for s in spaces:
            print(
                f"{s['name']:<12} {s['stages']} stages, depth <= {s['max_depth']}, "
                f"~{s['size_upper_bound']:.1e} architectures: {s['description']}"
            )
    return 0


def _profiles(args) -> int:
    from nas.latency import list_profiles

    profiles = [p.describe() for p in list_profiles()]
    if args.json:
        print_json(profiles)
    else:
        for p in profiles:
            error = p.get("validation_error", "no fitted model" if p["latency"] == "measured" else "")
            model = "measured + model" if p["latency"] == "measured" and p.get("model") else p["latency"]
            print(f"{p['name']:<16} {model:<17} {error}\n{'':<16} {p['description']}")
            if "coverage" in p:
                prior = p.get("prior")
                priced = (
                    f"; a prior from {prior['reference']} (x{prior['scale']:.3g}) prices "
                    f"{len(prior['kinds'])} of the others"
                    if prior
                    else ""
                )
                print(f"{'':<16} coverage: {p['coverage']['summary']}{priced}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
