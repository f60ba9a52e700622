"""`nas prune EXPORT_DIR --latency-ms X`: cut a trained network's channels to a latency target on a
hardware profile, fine-tune and re-export it (`nas.prune`)."""

from __future__ import annotations

from nas._cli import add_json_arguments, check_outputs, messages, print_json


def add_prune_command(sub) -> None:
    p = sub.add_parser(
        "prune",
        help="remove whole channels of an exported model until it meets a latency target, fine-tune, re-export",
        description="Cut whole channels (filters, with every layer that shares them) from EXPORT_DIR's trained "
        "network until its latency on --profile is at most --latency-ms, each step the cut that costs the "
        "least calibration loss per millisecond the profile's latency model says it saves; then fine-tune "
        "--epochs epochs and export it (ONNX checked against PyTorch) into --out. The latency is predicted "
        "(with its interval) on a predicted profile and measured with ONNX Runtime on x86-cpu. The same "
        "command again resumes; EXPORT_DIR is only read.",
    )
    p.add_argument("export_dir", help="an exported model folder (nas export or nas train) or its model.onnx")
    p.add_argument("--latency-ms", type=float, required=True, help="the latency target in milliseconds")
    p.add_argument("--profile", default="x86-cpu", help="hardware profile (default: %(default)s)")
    p.add_argument(
        "--latency",
        default="auto",
        choices=("auto", "predicted", "measured"),
        help="auto: measured on a measured profile (x86-cpu), else predicted (default: %(default)s)",
    )
    p.add_argument("--out", default=None, help="output folder (default: EXPORT_DIR-pruned-PROFILE-Xms)")
    p.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs (default: %(default)s)")
    p.add_argument("--train-subset", type=int, default=None, help="images per epoch (default: all)")
    p.add_argument(
        "--dataset", default="builtin", help="'builtin', an image folder or an .npz (default: %(default)s)"
    )
    p.add_argument(
        "--calibration-images",
        type=int,
        default=512,
        help="training images on which each cut's loss is measured (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split, calibration images and training")
    p.add_argument(
        "--distill",
        action="store_true",
        help="fine-tune with knowledge distillation from the network before the cut (EXPORT_DIR's model.onnx); "
        "its forward pass adds compute to every training step",
    )
    for flag, what in (  # defaults: nas.prune.DEFAULT_KD_* (building the parser imports no torch)
        ("--kd-alpha", "with --distill: weight of the distillation term, in [0, 1] (default: 0.5)"),
        ("--kd-temperature", "with --distill: distillation temperature T > 0 (default: 4.0)"),
    ):
        p.add_argument(flag, type=float, default=None, help=what)
    add_json_arguments(p, "the pruning record", "not written: OUT/prune.json is")
    p.set_defaults(run=_prune_command)


def _prune_command(args) -> int:
    from nas._io import read_json
    from nas.errors import NasError
    from nas.prune import DEFAULT_KD_ALPHA, DEFAULT_KD_TEMPERATURE, PRUNE_FILE, prune_export

    given = [
        flag
        for flag, value in (("--kd-alpha", args.kd_alpha), ("--kd-temperature", args.kd_temperature))
        if value is not None
    ]
    if given and not args.distill:
        raise NasError(f"{' and '.join(given)}: only with --distill (settings of its distillation loss)")
    to_stdout, json_file = check_outputs(args, "json")
    say = messages(to_stdout)
    out = prune_export(
        args.export_dir,
        args.latency_ms,
        profile=args.profile,
        latency=args.latency,
        out=args.out,
        epochs=args.epochs,
        train_subset=args.train_subset,
        dataset=args.dataset,
        seed=args.seed,
        calibration_images=args.calibration_images,
        distill=args.distill,
        kd_alpha=DEFAULT_KD_ALPHA if args.kd_alpha is None else args.kd_alpha,
        kd_temperature=DEFAULT_KD_TEMPERATURE if args.kd_temperature is None else args.kd_temperature,
        progress=say,
    )
    record = read_json(out / PRUNE_FILE, "prune record")
    before, after = record["latency_before"], record["latency_after"]
    say(
        f"pruned model: {out} ({before['latency_ms']:.4g} -> {after['latency_ms']:.4g} ms {after['how']}, "
        f"{len(record['steps'])} cuts; accuracy {record['accuracy_before']:.3f} -> {record['accuracy_cut']:.3f} "
        f"cut -> {record.get('accuracy_fine_tuned', float('nan')):.3f} fine-tuned)"
    )
    if json_file:
        from nas._io import write_json_atomic

        write_json_atomic(json_file, record)
    if to_stdout:
        print_json(record)
    return 0
