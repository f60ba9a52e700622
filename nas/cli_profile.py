"""`nas profile ...`: the device-profile commands (bundle, measure, fit, import, predict, validate).

Argument parsing and messages only; `measure` imports nothing but onnxruntime, onnx and numpy, so it
runs on a device without torch.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def add_profile_commands(sub) -> None:
    p = sub.add_parser("profile", help="build device profiles: bundle -> measure -> fit -> validate",
                       description="Add a device: write a calibration bundle here, measure it on the device, fit a "
                                   "latency model from the measurements, and check its error.")
    ps = p.add_subparsers(dest="profile_command", metavar="STEP", required=True)

    b = ps.add_parser("bundle", help="(host) write ONNX graphs covering a search space: blocks and whole networks")
    b.add_argument("--space", default="mobilenet", help="built-in space name or YAML path (default: %(default)s)")
    b.add_argument("--out", required=True, help="bundle folder to create")
    b.add_argument("--networks", type=int, default=150, help="random whole networks (default: %(default)s)")
    b.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    b.add_argument("--no-blocks", action="store_true", help="whole networks only")
    b.set_defaults(run=_bundle)

    m = ps.add_parser("measure", help="(device) measure a bundle with ONNX Runtime; needs onnxruntime, onnx, numpy only")
    m.add_argument("bundle", help="a folder written by 'nas profile bundle'")
    m.add_argument("--provider", default="CPUExecutionProvider",
                   help="ONNX Runtime execution provider, e.g. CUDAExecutionProvider or TensorrtExecutionProvider (default: %(default)s)")
    m.add_argument("--threads", type=int, default=1, help="intra-op threads (default: %(default)s)")
    m.add_argument("--optimization", default="all", help="graph optimization level (default: %(default)s)")
    m.add_argument("--fresh", action="store_true", help="start over instead of resuming an interrupted measurement")
    m.add_argument("--quiet", action="store_true")
    m.set_defaults(run=_measure)

    f = ps.add_parser("fit", help="fit a profile from measurements.csv (any ONNX graphs: blocks or networks)")
    f.add_argument("--measurements", required=True, help="CSV with columns model,latency_ms (model relative to the CSV)")
    _profile_output_arguments(f, name_help="profile name")
    f.add_argument("--latency", choices=("predicted", "measured"), default="predicted",
                   help="'measured' only for the machine that runs the search (default: %(default)s)")
    f.set_defaults(run=_fit)

    i = ps.add_parser("import", help="create a profile from a per-block latency lookup table (schema: README)")
    i.add_argument("--table", required=True, help="block table CSV (e.g. the HW-NAS-Bench tables)")
    _profile_output_arguments(i)
    i.add_argument("--device", default=None, help="latency column of a unique-blocks table (e.g. pixel3)")
    i.set_defaults(run=_import)

    pr = ps.add_parser("predict", help="predicted latency of ONNX models on a profile")
    pr.add_argument("--profile", required=True, help="profile name or YAML path")
    pr.add_argument("models", nargs="+", help="ONNX files")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(run=_predict)

    v = ps.add_parser("validate", help="error of a profile's model: cross-validated, or on held-out measurements")
    v.add_argument("--profile", required=True, help="profile name or YAML path")
    v.add_argument("--measurements", default=None, help="held-out measurements.csv (default: the profile's stored cross-validation)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(run=_validate)


def _profile_output_arguments(parser, name_help: str | None = None) -> None:
    """What `fit` and `import` write: the profile's name, file and description."""
    parser.add_argument("--name", required=True, help=name_help)
    parser.add_argument("--out", default=None, help="profile file (default: hardware_profiles/NAME.yaml)")
    parser.add_argument("--description", default=None)
    parser.add_argument("--force", action="store_true", help="replace an existing profile file")


def _profile_target(name: str, out: str | None, force: bool) -> Path:
    """Where a new profile goes; an existing file (a shipped profile, say) is replaced only with --force."""
    from nas._resources import builtin_dir
    from nas.errors import NasError

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise NasError(f"--name: {name!r} is not a profile name (letters, digits, '.', '_' and '-')")
    target = Path(out) if out else builtin_dir("hardware_profiles") / f"{name}.yaml"
    if target.exists() and not force:
        raise NasError(f"{target}: exists; pass --force to replace it, or --out another file")
    return target


def _bundle(args) -> int:
    from nas.latency._bundle import write_bundle

    out = write_bundle(args.space, args.out, networks=args.networks, seed=args.seed, blocks=not args.no_blocks)
    count = len(json.loads((out / "bundle.json").read_text())["models"])
    print(f"{out}: {count} ONNX graphs. Next, on the device: nas profile measure {out}")
    return 0


def _measure(args) -> int:
    from nas.latency._bundle import measure_bundle
    from nas.latency._measure import MeasurementSettings

    settings = MeasurementSettings(execution_provider=args.provider, intra_op_threads=args.threads,
                                   graph_optimization=args.optimization)

    def progress(done: int, total: int) -> None:
        if not args.quiet and (done == total or done % 25 == 0):
            print(f"measured {done}/{total}", file=sys.stderr)

    csv_path = measure_bundle(args.bundle, settings, progress, fresh=args.fresh)
    print(f"{csv_path}. Next, on the host: nas profile fit --measurements {csv_path} --name DEVICE")
    return 0


def _fit(args) -> int:
    from nas.latency._calibrate import fit_profile
    from nas.latency._profiles import write_profile

    target = _profile_target(args.name, args.out, args.force)
    profile = fit_profile(args.measurements, args.name, description=args.description, latency=args.latency)
    path = write_profile(profile, target)
    _print_validation(path, profile["validation"])
    return 0


def _import(args) -> int:
    from nas.latency._profiles import write_profile
    from nas.latency._table_profiles import import_block_table

    target = _profile_target(args.name, args.out, args.force)
    description = args.description or f"latency predicted from the per-block table {Path(args.table).name}"
    profile = import_block_table(args.table, args.name, description, {"engine": "unknown (block table)"},
                                 f"imported by `nas profile import` from {args.table}", device=args.device)
    path = write_profile(profile, target)
    _print_validation(path, profile["validation"])
    return 0


def _print_validation(path: Path, validation: dict, label: str = "cross-validated") -> None:
    print(f"{path}: {label} MAPE {validation['mape']:.1f}%, "
          f"{100 * validation['within_10pct']:.0f}% within +-10%, Kendall tau {validation['kendall_tau']:.3f} "
          f"({validation['n']} samples)")


def _predict(args) -> int:
    from nas.latency import load_profile
    from nas.latency._calibrate import predict_models

    rows = predict_models(load_profile(args.profile), args.models)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['latency_ms']:10.4f} ms  {row['model']}")
    return 0


def _validate(args) -> int:
    from nas.errors import NasError
    from nas.latency import load_profile
    from nas.latency._calibrate import validate_on_measurements

    profile = load_profile(args.profile)
    label = "held-out"
    if args.measurements:
        result = validate_on_measurements(profile, args.measurements)
    elif profile.validation:
        result, label = profile.validation, "cross-validated"
    else:
        raise NasError(f"profile {profile.name!r} records no validation; pass --measurements")
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _print_validation(Path(str(profile.path)), result, label)
    return 0


