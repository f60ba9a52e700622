"""`nas select` and `nas drift`: choosing among candidate models, and watching one over time (argument
parsing and messages only)."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas._cli import (
    add_json_arguments,
    check_outputs,
    corruption_families,
    int_list,
    messages,
    print_json,
)


def add_selection_commands(sub) -> None:
    s = sub.add_parser(
        "select",
        help="compare candidate models (nas exports or any ONNX classifier) on the same images and slices",
        description="Run every candidate on the same images and slices and write a candidates x slices matrix: "
        "accuracy with 95% intervals, ECE, per-class recall, each candidate's worst slice, and per slice "
        "whether the most accurate candidate beats each other one (exact McNemar on the same images); "
        "latency per candidate on --profile. Candidates without nas metadata take their preprocessing from "
        "MODEL.preprocessing.json beside them or from the preprocessing flags.",
    )
    s.add_argument("models", nargs="+", help="two or more ONNX classifiers")
    s.add_argument(
        "--data",
        default=None,
        help="'builtin', an image folder root/<class>/*.jpg or an .npz (default: 'builtin' unless --manifest "
        "or --slices is given)",
    )
    s.add_argument(
        "--split", choices=("val", "all"), default="val", help="which images of --data (default: val)"
    )
    s.add_argument(
        "--seed", type=int, default=0, help="seed of the split, corruptions, --max-images (default: 0)"
    )
    s.add_argument("--max-images", type=int, default=None, help="a seeded random subset of --data")
    s.add_argument("--slices", default=None, help="user slices: DIR/<condition>/<class>/*.jpg")
    s.add_argument("--manifest", default=None, help="a CSV path,label,<slice columns> (paths relative to it)")
    s.add_argument(
        "--slice-columns",
        type=_names,
        default=None,
        help="manifest columns to slice by (default: every column with at most 20 values)",
    )
    s.add_argument(
        "--combine",
        action="append",
        default=[],
        metavar="COL1,COL2",
        help="also slice by the combinations of these manifest columns' values (repeatable)",
    )
    s.add_argument("--families", default="none", help="corruption slices of --data: f1,f2, 'all' or 'none'")
    s.add_argument("--severities", type=int_list, default=(3,), help="corruption severities (default: 3)")
    s.add_argument("--profile", default="x86-cpu", help="hardware profile for latency (default: %(default)s)")
    s.add_argument("--no-latency", action="store_true", help="skip latency")
    add_json_arguments(s, "the comparison", "not written")
    s.add_argument(
        "--html", default=None, metavar="FILE", help="write the comparison as a self-contained page"
    )
    add_preprocessing_flags(s)
    s.set_defaults(run=_select)

    d = sub.add_parser(
        "drift",
        help="accuracy over time and a label-free drift alarm for one model over a manifest",
        description="Order the manifest's images by --time-column, cut them into windows of --window images, "
        "report accuracy per window (95% interval) with a trend test, and raise a label-free alarm on windows "
        "whose confidence, predicted classes or image statistics moved, calibrated on the first windows "
        "(in-distribution) for a stated false-alarm rate.",
    )
    d.add_argument("model", help="an ONNX classifier")
    d.add_argument("--manifest", required=True, help="a CSV path,label,<columns> with the time column")
    d.add_argument("--time-column", required=True, help="the column of times (numbers or ISO 8601)")
    d.add_argument("--window", type=int, required=True, help="images per window")
    d.add_argument(
        "--reference-windows",
        type=int,
        default=None,
        help="leading windows taken as in-distribution (default: 30%% of the windows, at least 3)",
    )
    d.add_argument("--alpha", type=float, default=0.05, help="stated false-alarm rate (default: %(default)s)")
    d.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples (default: %(default)s)")
    d.add_argument(
        "--seed", type=int, default=0, help="seed of the reference split and bootstrap (default: 0)"
    )
    add_json_arguments(d, "the drift report", "not written")
    add_preprocessing_flags(d)
    d.set_defaults(run=_drift)


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 0.5,0.5,0.5, got {text!r}"
        ) from None


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().replace("x", ",").split(",")
    try:
        values = [int(p) for p in parts if p.strip()]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected a size such as 224 or 224x224, got {text!r}")
    return values[0], values[1]


def add_preprocessing_flags(parser) -> None:
    g = parser.add_argument_group(
        "preprocessing of models without nas metadata or a MODEL.preprocessing.json (fills missing fields only)"
    )
    g.add_argument("--input-size", type=_size, default=None, help="input height x width, e.g. 224 or 224x160")
    g.add_argument(
        "--mean", type=_floats, default=None, help="per-channel mean of pixel/255, e.g. 0.485,0.456,0.406"
    )
    g.add_argument(
        "--std", type=_floats, default=None, help="per-channel std of pixel/255, e.g. 0.229,0.224,0.225"
    )
    g.add_argument(
        "--classes", default=None, metavar="FILE", help="class names, one per line, in output order"
    )
    g.add_argument("--layout", choices=("NCHW", "NHWC"), default=None, help="input layout (default: NCHW)")


def preprocessing_flags(args):
    from nas.validate import PreprocessingFlags

    return PreprocessingFlags(
        input_size=args.input_size,
        mean=args.mean,
        std=args.std,
        classes=str(Path(args.classes).absolute()) if args.classes else None,
        layout=args.layout,
    )


def _show(report, to_stdout: bool) -> None:
    """The table on stdout, or on stderr when stdout carries the JSON."""
    if to_stdout:
        from rich.console import Console

        report.print(Console(stderr=True, width=160))
    else:
        report.print()


def _select(args) -> int:
    from nas.validate import FAMILIES, compare_candidates

    to_stdout, json_file = check_outputs(args, "json", "html")
    data = args.data if args.data is not None or args.manifest or args.slices else "builtin"
    report = compare_candidates(
        args.models,
        data,
        manifest=args.manifest,
        slice_columns=args.slice_columns,
        combine=[_names(text) for text in args.combine],
        user_slices=args.slices,
        families=corruption_families(args.families, FAMILIES),
        severities=args.severities,
        split=args.split,
        seed=args.seed,
        max_images=args.max_images,
        profile=None if args.no_latency else args.profile,
        preprocessing=preprocessing_flags(args),
    )
    _show(report, to_stdout)
    say = messages(to_stdout)
    if json_file:
        say(f"comparison: {report.write_json(json_file)}")
    if args.html:
        say(f"page: {report.write_html(args.html)}")
    if to_stdout:
        print_json(report.to_dict())
    return 0


def _drift(args) -> int:
    from nas.validate import drift_report

    to_stdout, json_file = check_outputs(args, "json")
    report = drift_report(
        args.model,
        args.manifest,
        time_column=args.time_column,
        window=args.window,
        reference_windows=args.reference_windows,
        alpha=args.alpha,
        bootstrap=args.bootstrap,
        seed=args.seed,
        preprocessing=preprocessing_flags(args),
    )
    _show(report, to_stdout)
    if json_file:
        messages(to_stdout)(f"drift report: {report.write_json(json_file)}")
    if to_stdout:
        print_json(report.to_dict())
    return 0
