"""`nas validate` and `nas quantize`: production checks of exported models (argument parsing and messages only)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nas._cli import add_json_arguments, json_output, print_json, warn_deprecated_json


def add_validation_commands(sub) -> None:
    v = sub.add_parser(
        "validate",
        help="evaluate an exported model on clean, corrupted and user-defined slices",
        description="Run MODEL.onnx with ONNX Runtime, fed only per its preprocessing metadata, on the validation "
        "data, on corruption slices (family@severity) and on user slices; print a table and write "
        "JSON and a plot. In an export folder, also writes slices.json/slices.png and refreshes model_card.md.",
    )
    v.add_argument("model", help="an exported model.onnx (or model.int8.onnx)")
    v.add_argument(
        "--data",
        default="builtin",
        help="'builtin', an image folder root/<class>/*.jpg or an .npz (default: %(default)s)",
    )
    v.add_argument(
        "--split",
        choices=("val", "all"),
        default="val",
        help="'val': the validation split a search with the same --seed made; 'all': every image, for a "
        "held-out folder (default: %(default)s)",
    )
    v.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the validation split, the corruptions and --max-images (default: %(default)s)",
    )
    v.add_argument(
        "--slices", default=None, help="user slices: DIR/<condition>/<class>/*.jpg, one slice per condition"
    )
    v.add_argument(
        "--families",
        default="all",
        help="comma-separated corruption families, 'all' or 'none' (default: %(default)s)",
    )
    v.add_argument(
        "--severities",
        type=int_list,
        default=(1, 3, 5),
        help="comma-separated severities 1..5 (default: 1,3,5)",
    )
    v.add_argument(
        "--max-images", type=int, default=None, help="evaluate a seeded random subset of this many images"
    )
    add_json_arguments(v, "the report", "slices.json next to an exported model")
    v.add_argument(
        "--plot",
        default=None,
        help="write the accuracy-per-slice plot PNG (default: slices.png next to an exported model)",
    )
    v.set_defaults(run=_validate)

    q = sub.add_parser(
        "quantize",
        help="INT8 static quantization of an exported model, compared with FP32",
        description="Quantize MODEL.onnx to INT8 (ONNX Runtime quantize_static, QDQ, per-channel weights), calibrated "
        "on --data preprocessed per the model's metadata; then compare accuracy (clean and per slice) and "
        "x86-cpu latency with the FP32 model. In an export folder, writes int8.json and refreshes model_card.md.",
    )
    q.add_argument("model", help="an exported model.onnx")
    q.add_argument(
        "--data",
        default="builtin",
        help="calibration and evaluation data: 'builtin', an image folder or an .npz (default: %(default)s)",
    )
    q.add_argument(
        "--split",
        choices=("val", "all"),
        default="val",
        help="which images of --data to use (default: %(default)s)",
    )
    q.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the split, the calibration sample and the corruptions (default: %(default)s)",
    )
    q.add_argument("--samples", type=int, default=256, help="calibration images (default: %(default)s)")
    q.add_argument("--out", default=None, help="the INT8 model (default: model.int8.onnx next to MODEL)")
    q.add_argument(
        "--families",
        default="all",
        help="corruption families for the comparison, 'all' or 'none' (default: %(default)s)",
    )
    q.add_argument(
        "--severities", type=int_list, default=(3,), help="severities for the comparison (default: 3)"
    )
    add_json_arguments(
        q, "the comparison", "int8.json next to an exported model, unless --out puts the INT8 model elsewhere"
    )
    q.set_defaults(run=_quantize)
    add_selection_commands(sub)


def int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 1,3,5, got {text!r}"
        ) from None


def _families(text: str) -> tuple[str, ...]:
    from nas.validate import FAMILIES

    if text == "all":
        return tuple(FAMILIES)
    if text == "none":
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _export_folder(model) -> Path | None:
    """The export folder holding `model` (it has spec.json), where slices.json / int8.json / model_card.md go."""
    folder = Path(model).parent
    exported = (
        Path(model).name == "model.onnx"
        and (folder / "spec.json").is_file()
        and (folder / "metrics.json").is_file()
    )
    return folder if exported else None


def _refresh_card(folder: Path | None, written: Path | None, default_name: str, say=print) -> None:
    if folder and written and Path(written).resolve() == (folder / default_name).resolve():
        from nas.validate import write_model_card

        say(f"model card: {write_model_card(folder)}")


def _messages(to_stdout: bool):
    """Where the human-readable lines go: stderr when stdout carries the JSON."""
    return (lambda line: print(line, file=sys.stderr)) if to_stdout else print


def _check_outputs(args, *flags: str) -> tuple[bool, str | None]:
    """Output files given on the command line can be written, checked before any model runs; returns
    whether JSON goes to stdout, and the JSON file asked for (--json-out)."""
    from nas._io import check_output_path

    to_stdout, json_file, json_flag = json_output(args)
    for flag in flags:
        path, name = (json_file, json_flag) if flag == "json" else (getattr(args, flag), f"--{flag}")
        if path:
            check_output_path(path, name, folder=False)
    warn_deprecated_json(args)
    return to_stdout, json_file


def _validate(args) -> int:
    from nas.validate import evaluate_slices

    to_stdout, json_file = _check_outputs(args, "json", "plot")
    report = evaluate_slices(
        args.model,
        args.data,
        families=_families(args.families),
        severities=args.severities,
        seed=args.seed,
        max_images=args.max_images,
        user_slices=args.slices,
        split=args.split,
    )
    say = _messages(to_stdout)
    if to_stdout:
        from rich.console import Console

        report.print(Console(stderr=True))
    else:
        report.print()
    folder = _export_folder(args.model)
    json_path = json_file or (folder / "slices.json" if folder else None)
    plot_path = args.plot or (folder / "slices.png" if folder else None)
    if json_path:
        say(f"slice report: {report.write_json(json_path)}")
    if plot_path:
        say(f"plot: {report.write_plot(plot_path)}")
    _refresh_card(folder, json_path, "slices.json", say)
    if to_stdout:
        print_json(report.to_dict())
    return 0


def _quantize(args) -> int:
    from nas._io import write_json_atomic
    from nas.validate import compare_precisions, quantize_int8

    to_stdout, json_file = _check_outputs(args, "out", "json")
    say = _messages(to_stdout)
    int8 = quantize_int8(
        args.model, args.data, args.out, samples=args.samples, seed=args.seed, split=args.split
    )
    say(f"INT8 model: {int8}")
    result = compare_precisions(
        args.model,
        int8,
        args.data,
        families=_families(args.families),
        severities=args.severities,
        seed=args.seed,
        split=args.split,
    )
    clean, x86 = result["clean"], result["latency"]["x86-cpu"]
    say(
        f"accuracy on {result['n']} images: FP32 {100 * clean['fp32']:.1f}%, INT8 {100 * clean['int8']:.1f}% "
        f"(drop {100 * clean['drop']:+.1f} pts; largest slice drop {100 * result['max_slice_drop']:+.1f} pts)"
    )
    say(
        f"x86-cpu latency: FP32 {x86['fp32']['median_ms']:.4f} ms, INT8 {x86['int8']['median_ms']:.4f} ms "
        f"(x{x86['speedup']:.2f}); remote profiles: INT8 latency not predictable (their models were fitted "
        "on FP32 graphs)"
    )
    folder = _export_folder(args.model)
    if folder and args.out and Path(args.out).resolve().parent != folder.resolve():
        folder = None  # the INT8 model went elsewhere, as asked: nothing is written into the export folder
    json_path = json_file or (folder / "int8.json" if folder else None)
    if json_path:
        say(f"comparison: {write_json_atomic(json_path, result)}")
    _refresh_card(folder, json_path, "int8.json", say)
    if to_stdout:
        print_json(result)
    return 0


# --- nas select and nas drift: choosing among candidates, and watching one over time -------------------


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
    _add_preprocessing_flags(s)
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
    _add_preprocessing_flags(d)
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


def _add_preprocessing_flags(parser) -> None:
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


def _preprocessing_flags(args):
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
    from nas.validate import compare_candidates

    to_stdout, json_file = _check_outputs(args, "json", "html")
    data = args.data if args.data is not None or args.manifest or args.slices else "builtin"
    report = compare_candidates(
        args.models,
        data,
        manifest=args.manifest,
        slice_columns=args.slice_columns,
        combine=[_names(text) for text in args.combine],
        user_slices=args.slices,
        families=_families(args.families),
        severities=args.severities,
        split=args.split,
        seed=args.seed,
        max_images=args.max_images,
        profile=None if args.no_latency else args.profile,
        preprocessing=_preprocessing_flags(args),
    )
    _show(report, to_stdout)
    say = _messages(to_stdout)
    if json_file:
        say(f"comparison: {report.write_json(json_file)}")
    if args.html:
        say(f"page: {report.write_html(args.html)}")
    if to_stdout:
        print_json(report.to_dict())
    return 0


def _drift(args) -> int:
    from nas.validate import drift_report

    to_stdout, json_file = _check_outputs(args, "json")
    report = drift_report(
        args.model,
        args.manifest,
        time_column=args.time_column,
        window=args.window,
        reference_windows=args.reference_windows,
        alpha=args.alpha,
        bootstrap=args.bootstrap,
        seed=args.seed,
        preprocessing=_preprocessing_flags(args),
    )
    _show(report, to_stdout)
    if json_file:
        _messages(to_stdout)(f"drift report: {report.write_json(json_file)}")
    if to_stdout:
        print_json(report.to_dict())
    return 0
