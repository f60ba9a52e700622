"""`nas train` (deployment training of exported models) and `nas baselines` (hand-designed references)."""

from __future__ import annotations

import argparse

from nas._cli import add_format_argument
from nas._io import check_output_path
from nas.errors import NasError


def add_training_commands(sub) -> None:
    t = sub.add_parser(
        "train",
        help="deployment training: train exported models on every training image (resumable) and re-export them",
    )
    t.add_argument(
        "export_dir",
        nargs="+",
        help="exported model folders (RUN_DIR/export/NN_HASH) or their model.onnx; a RUN_DIR with --pareto",
    )
    t.add_argument("--pareto", action="store_true", help="train every model of RUN_DIR/export (the front)")
    t.add_argument("--baselines", action="store_true", help="train every model of RUN_DIR/baselines")
    t.add_argument(
        "--workers", type=int, default=1, help="models trained in parallel, one CPU each (default: 1)"
    )
    t.add_argument("--quiet", action="store_true", help="no progress lines")
    t.add_argument(
        "--dataset",
        default="builtin",
        help="the search's dataset: 'builtin', an image folder or an .npz (default: %(default)s)",
    )
    t.add_argument("--epochs", type=int, default=30, help="training epochs (default: %(default)s)")
    t.add_argument(
        "--train-subset",
        type=_optional_int,
        default=None,
        help="training images per epoch, or 'all' (default: all)",
    )
    t.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the search's seed (validation split of folder/npz data), initial weights, training "
        "(default: %(default)s)",
    )
    t.add_argument(
        "--teacher",
        default=None,
        help="knowledge distillation from another exported model folder or its model.onnx "
        "(same preprocessing and classes)",
    )
    for flag, default, what in (
        ("--kd-alpha", 0.5, "weight of the distillation term, in [0, 1]"),
        ("--kd-temperature", 4.0, "distillation temperature T > 0"),
    ):
        t.add_argument(flag, type=float, default=default, help=f"{what} (default: %(default)s)")
    t.add_argument(
        "--out", default=None, help="output folder (default: EXPORT_DIR-deployed, next to EXPORT_DIR)"
    )
    t.add_argument(
        "--init",
        default=None,
        help="transfer: start from the weights of a nas train or nas export folder or a checkpoint file "
        "(matched by module path and shape); the dataset may have other classes",
    )
    t.add_argument(
        "--freeze-stages",
        type=int,
        default=0,
        help="with --init: freeze the stem and the first K stages (default: %(default)s)",
    )
    t.add_argument("--head-only", action="store_true", help="with --init: train only the head")
    add_format_argument(t, "each trained model.onnx")
    t.set_defaults(run=_train)

    b = sub.add_parser(
        "baselines",
        help="train hand-designed reference networks as a run trained its candidates "
        "(RUN_DIR/baselines.json, drawn by 'nas report')",
    )
    b.add_argument("run_dir", help="a run directory written by 'nas search'")
    b.add_argument("--widths", default="0.5,0.75,1", help="width multipliers (default: %(default)s)")
    b.add_argument(
        "--export",
        action="store_true",
        help="also write each as a model folder RUN_DIR/baselines/NAME for nas train",
    )
    add_format_argument(b, "each exported model.onnx (with --export)")
    b.set_defaults(run=_baselines)


def _optional_int(text: str) -> int | None:
    if text.lower() in ("all", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'all', got {text!r}") from None


def _train(args) -> int:
    from nas.export import train_command
    from nas.search import RayExecutor  # started only for --workers > 1 and several models

    if args.out:
        check_output_path(args.out, "--out")
    settings = ("dataset", "epochs", "train_subset", "seed", "teacher", "kd_alpha", "kd_temperature", "out")
    settings += ("init", "freeze_stages", "head_only", "export_format")
    train_command(
        args.export_dir,
        pareto=args.pareto,
        baselines=args.baselines,
        workers=args.workers,
        quiet=args.quiet,
        executor_factory=RayExecutor,
        **{name: getattr(args, name) for name in settings},
    )
    return 0


def _baselines(args) -> int:
    from nas.baselines import evaluate_baselines

    try:
        widths = tuple(float(w) for w in args.widths.split(","))
    except ValueError:
        raise NasError(
            f"--widths: expected comma-separated numbers such as 0.5,1, got {args.widths!r}"
        ) from None
    for b in evaluate_baselines(args.run_dir, widths, export=args.export, export_format=args.export_format):
        print(
            f"{b['name']:<24} accuracy {b['accuracy']:.3f}  latency {b['latency_ms']:.3f} ms ({b['latency_source']})  "
            f"params {b['params']:,}{'  ' + b['export'] if 'export' in b else ''}"
        )
    print(f"written: {args.run_dir}/baselines.json (shown by: nas report {args.run_dir})")
    return 0
