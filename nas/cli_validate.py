"""`nas validate` and `nas quantize`: production checks of exported models (argument parsing and messages only)."""

from __future__ import annotations

from pathlib import Path

from nas._cli import (
    add_json_arguments,
    check_outputs,
    corruption_families,
    int_list,
    messages,
    print_json,
)


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


def _validate(args) -> int:
    from nas.validate import FAMILIES, evaluate_slices

    to_stdout, json_file = check_outputs(args, "json", "plot")
    report = evaluate_slices(
        args.model,
        args.data,
        families=corruption_families(args.families, FAMILIES),
        severities=args.severities,
        seed=args.seed,
        max_images=args.max_images,
        user_slices=args.slices,
        split=args.split,
    )
    say = messages(to_stdout)
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
    from nas.validate import FAMILIES, compare_precisions, quantize_int8

    to_stdout, json_file = check_outputs(args, "out", "json")
    say = messages(to_stdout)
    int8 = quantize_int8(
        args.model, args.data, args.out, samples=args.samples, seed=args.seed, split=args.split
    )
    say(f"INT8 model: {int8}")
    result = compare_precisions(
        args.model,
        int8,
        args.data,
        families=corruption_families(args.families, FAMILIES),
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
