"""`nas profile ...`: the device-profile commands (bundle, measure, fit, import, calibrate, predict, validate).

Argument parsing and messages only; `measure` imports nothing but onnxruntime, onnx and numpy, so it
runs on a device without torch.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from nas._io import check_output_path


def add_profile_commands(sub) -> None:
    p = sub.add_parser(
        "profile",
        help="build device profiles: bundle -> measure -> fit -> validate",
        description="Add a device: write a calibration bundle here, measure it on the device, fit a "
        "latency model from the measurements, and check its error.",
    )
    ps = p.add_subparsers(dest="profile_command", metavar="STEP", required=True)

    b = ps.add_parser(
        "bundle", help="(host) write ONNX graphs covering a search space: blocks and whole networks"
    )
    b.add_argument(
        "--space", default="mobilenet", help="built-in space name or YAML path (default: %(default)s)"
    )
    b.add_argument("--out", required=True, help="bundle folder to create")
    b.add_argument("--networks", type=int, default=150, help="random whole networks (default: %(default)s)")
    b.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    b.add_argument("--no-blocks", action="store_true", help="whole networks only")
    b.add_argument(
        "--few-shot",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="choose the networks a few-shot fit learns most from, out of 1,000 random ones, by the "
        "latency-corpus devices' predictions (default: when --networks is below 30 and the corpus devices "
        "measured every node kind of the space)",
    )
    b.set_defaults(run=_bundle)

    m = ps.add_parser(
        "measure", help="(device) measure a bundle with ONNX Runtime; needs onnxruntime, onnx, numpy only"
    )
    m.add_argument("bundle", help="a folder written by 'nas profile bundle'")
    m.add_argument(
        "--provider",
        default="CPUExecutionProvider",
        help="ONNX Runtime execution provider, e.g. CUDAExecutionProvider or TensorrtExecutionProvider "
        "(default: %(default)s)",
    )
    m.add_argument("--threads", type=int, default=1, help="intra-op threads (default: %(default)s)")
    m.add_argument("--optimization", default="all", help="graph optimization level (default: %(default)s)")
    m.add_argument(
        "--fresh", action="store_true", help="start over instead of resuming an interrupted measurement"
    )
    m.add_argument(
        "--paired",
        action="store_true",
        help="measure a reference network before the first graph and after each one, and read each graph "
        "relative to the two beside it: a device whose speed drifts (throttling, a shared machine) then "
        "measures consistently; about twice the time",
    )
    m.add_argument("--quiet", action="store_true")
    m.set_defaults(run=_measure)

    f = ps.add_parser(
        "fit",
        help="fit a profile from measurements.csv (any ONNX graphs: blocks or networks), or calibrate the "
        "profile of a search from its device measurements (--from-run)",
    )
    source = f.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--measurements", help="CSV with columns model,latency_ms (model relative to the CSV)"
    )
    source.add_argument(
        "--from-run",
        metavar="RUN_DIR",
        help="a search run with --latency hybrid (or device): its profile's model calibrated on the "
        "latencies measured on the device node, as the search refitted it",
    )
    _profile_output_arguments(f, name_help="profile name")
    f.add_argument(
        "--latency",
        choices=("predicted", "measured"),
        default="predicted",
        help="'measured' only for the machine that runs the search (default: %(default)s)",
    )
    f.add_argument(
        "--few-shot",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fit the device as a combination of the latency-corpus devices, with a leave-one-out error "
        "(default: when fewer than 30 graphs were measured)",
    )
    f.set_defaults(run=_fit)

    i = ps.add_parser(
        "import",
        help="create a profile from a per-block latency lookup table (schema: hardware_profiles/data/README.md)",
    )
    i.add_argument("--table", required=True, help="block table CSV (e.g. the HW-NAS-Bench tables)")
    _profile_output_arguments(i)
    i.add_argument("--device", default=None, help="latency column of a unique-blocks table (e.g. pixel3)")
    i.set_defaults(run=_import)

    pr = ps.add_parser("predict", help="predicted latency of ONNX models on a profile")
    pr.add_argument("--profile", required=True, help="profile name or YAML path")
    pr.add_argument("models", nargs="+", help="ONNX files")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(run=_predict)

    c = ps.add_parser(
        "calibrate",
        help="(this machine) refit a local profile measured on another machine, from a few "
        "networks measured here",
    )
    c.add_argument(
        "--profile", default="x86-cpu", help="local profile name or YAML path (default: %(default)s)"
    )
    c.add_argument(
        "--space", default="mobilenet", help="space whose random networks are measured (default: %(default)s)"
    )
    c.add_argument("--networks", type=int, default=40, help="networks to measure (default: %(default)s)")
    c.add_argument(
        "--networks-only",
        action="store_true",
        help="measure the networks only, not their blocks (faster; the blocks tell each operator's cost)",
    )
    c.add_argument(
        "--paired",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure each graph between two measurements of a reference network and read it relative to "
        "them, so that the machine's slow phases cancel; --no-paired measures half as much "
        "(default: paired)",
    )
    c.add_argument(
        "--out",
        default=None,
        help="profile file to write (default: the user's profile folder, "
        "$NAS_PROFILE_DIR or $XDG_CONFIG_HOME/nas/profiles)",
    )
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(run=_calibrate)

    v = ps.add_parser(
        "validate", help="error of a profile's model: cross-validated, or on held-out measurements"
    )
    v.add_argument("--profile", required=True, help="profile name or YAML path")
    v.add_argument(
        "--measurements",
        default=None,
        help="held-out measurements.csv (default: the profile's stored cross-validation)",
    )
    v.add_argument("--json", action="store_true")
    v.set_defaults(run=_validate)


def _profile_output_arguments(parser, name_help: str | None = None) -> None:
    """What `fit` and `import` write: the profile's name, file and description."""
    parser.add_argument("--name", required=True, help=name_help)
    parser.add_argument(
        "--out",
        default=None,
        help="profile file (default: NAME.yaml in the user's profile folder, "
        "$NAS_PROFILE_DIR or $XDG_CONFIG_HOME/nas/profiles)",
    )
    parser.add_argument("--description", default=None)
    parser.add_argument("--force", action="store_true", help="replace an existing profile file")


def _profile_target(name: str, out: str | None, force: bool) -> Path:
    """Where a new profile goes (default: the user's profile folder, never the installed package); an
    existing file is replaced only with --force, and a built-in profile's name is not taken."""
    from nas.errors import NasError
    from nas.latency import builtin_profile_names, user_profile_dir

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise NasError(f"--name: {name!r} is not a profile name (letters, digits, '.', '_' and '-')")
    if out is None and name in builtin_profile_names():
        raise NasError(f"--name: {name!r} is a built-in profile; choose another name (or --out a file)")
    target = Path(out) if out else user_profile_dir() / f"{name}.yaml"
    if target.exists() and not force:
        raise NasError(f"{target}: exists; pass --force to replace it, or --out another file")
    return target


def _bundle(args) -> int:
    from nas.errors import NasError
    from nas.latency import write_bundle

    check_output_path(args.out, "--out")
    if Path(args.out).is_dir() and any(Path(args.out).iterdir()):
        raise NasError(f"--out {args.out}: exists and is not empty; a bundle goes into a new or empty folder")
    if not 0 <= args.seed < 2**32:
        raise NasError(f"--seed: must be an integer from 0 to 2**32 - 1, got {args.seed}")
    out = write_bundle(
        args.space,
        args.out,
        networks=args.networks,
        seed=args.seed,
        blocks=not args.no_blocks,
        few_shot=args.few_shot,
    )
    manifest = json.loads((out / "bundle.json").read_text())
    print(f"{out}: {len(manifest['models'])} ONNX graphs; networks: {manifest['bundle_design']}")
    print(f"Next, on the device: nas profile measure {out}")
    return 0


def _measure(args) -> int:
    from nas.latency import MeasurementSettings, bundle_reference, measure_bundle

    settings = MeasurementSettings(
        execution_provider=args.provider, intra_op_threads=args.threads, graph_optimization=args.optimization
    )

    def progress(done: int, total: int) -> None:
        if not args.quiet and (done == total or done % 25 == 0):
            print(f"measured {done}/{total}", file=sys.stderr)

    reference = bundle_reference(args.bundle) if args.paired else None
    csv_path = measure_bundle(args.bundle, settings, progress, fresh=args.fresh, reference=reference)
    print(f"{csv_path}. Next, on the host: nas profile fit --measurements {csv_path} --name DEVICE")
    return 0


def _fit(args) -> int:
    from nas.latency import fit_profile, write_profile

    target = _profile_target(args.name, args.out, args.force)
    check_output_path(target, "--out", folder=False)
    if args.from_run is not None:
        from nas.search import profile_from_run

        profile = profile_from_run(args.from_run, args.name)
        if args.description:
            profile["description"] = args.description
        _print_validation(write_profile(profile, target), profile["validation"], "leave-one-out")
        return 0
    profile = fit_profile(
        args.measurements,
        args.name,
        description=args.description,
        latency=args.latency,
        few_shot=args.few_shot,
    )
    path = write_profile(profile, target)
    few_shot = "few_shot" in profile["validation"]
    _print_validation(
        path, profile["validation"], "few-shot, leave-one-out" if few_shot else "cross-validated"
    )
    return 0


def _import(args) -> int:
    from nas.latency import import_block_table, write_profile

    target = _profile_target(args.name, args.out, args.force)
    check_output_path(target, "--out", folder=False)
    description = args.description or f"latency predicted from the per-block table {Path(args.table).name}"
    profile = import_block_table(
        args.table,
        args.name,
        description,
        {"engine": "unknown (block table)"},
        f"imported by `nas profile import` from {args.table}",
        device=args.device,
    )
    path = write_profile(profile, target)
    _print_validation(path, profile["validation"])
    return 0


def _print_validation(path: Path, validation: dict, label: str = "cross-validated") -> None:
    tau = validation["kendall_tau"]
    tau = "n/a (the latencies tie)" if not isinstance(tau, (int, float)) or tau != tau else f"{tau:.3f}"
    print(
        f"{path}: {label} MAPE {validation['mape']:.1f}%, "
        f"{100 * validation['within_10pct']:.0f}% within +-10%, Kendall tau {tau} "
        f"({validation['n']} samples)"
    )
    term = validation.get("whole_graph_term")
    if term and term["kept"]:
        print(
            f"  kept the whole-graph term log(1 + convolution nodes): held-out MAPE "
            f"{term['with_log_conv_nodes_mape']:.1f}% with it, {term['per_node_mape']:.1f}% without"
        )


def _calibrate(args) -> int:
    from nas.errors import NasError
    from nas.latency import calibrate_profile, load_profile

    profile = load_profile(args.profile)
    if profile.latency != "measured":
        raise NasError(
            f"profile {profile.name!r} is a remote device's: calibrate it by measuring on the device "
            "(nas profile bundle/measure/fit)"
        )
    if args.out:
        check_output_path(args.out, "--out", folder=False)

    def progress(done: int, total: int) -> None:
        if not args.quiet and (done == total or done % 5 == 0):
            print(f"measured {done}/{total}", file=sys.stderr)

    path = calibrate_profile(
        profile,
        space=args.space,
        networks=args.networks,
        blocks=not args.networks_only,
        paired=args.paired,
        out=args.out,
        progress=progress,
    )
    _print_validation(path, load_profile(path).validation, "held-out networks'")
    return 0


def _predict(args) -> int:
    from nas.latency import load_profile, local_profile, predict_models

    profile = local_profile(load_profile(args.profile))
    rows = predict_models(profile, args.models)
    if profile.energy is not None:  # a profile fitted on energy measurements too (jetson-tx2)
        for row in rows:
            row["energy"] = profile.predict_energy(row["model"]).to_dict()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            interval = (
                f"  [{row['low_ms']:.4f}, {row['high_ms']:.4f}] ms ({100 * row['level']:.0f}% interval)"
                if row["low_ms"] is not None
                else "  (the profile records no interval)"
            )
            print(f"{row['latency_ms']:10.4f} ms{interval}  {row['model']}")
            if "energy" in row:
                print(_energy_line(row["energy"]))
            if row["uncovered_kinds"]:
                print(
                    f"{'':13} extrapolated: {100 * row['extrapolated_share']:.0f}% of it is node kinds this device "
                    f"never measured, priced by the profile's prior: {', '.join(row['uncovered_kinds'])}"
                )
            if row["out_of_range"]:
                print(
                    f"{'':13} {len(row['out_of_range'])} node(s) outside the measured sizes, "
                    f"e.g. {row['out_of_range'][0]}"
                )
    return 0


def _energy_line(energy: dict) -> str:
    interval = (
        f"  [{energy['low_mj']:.4f}, {energy['high_mj']:.4f}] mJ ({100 * energy['level']:.0f}% interval)"
        if energy["low_mj"] is not None
        else ""
    )
    share = energy["extrapolated_share"]
    extrapolated = f", {100 * share:.0f}% extrapolated (latency x power)" if share > 0 else ""
    return f"{energy['energy_mj']:10.4f} mJ{interval}  energy per inference{extrapolated}"


def _validate(args) -> int:
    from nas.errors import NasError
    from nas.latency import load_profile, validate_on_measurements

    profile = load_profile(args.profile)
    label = "held-out"
    if args.measurements:
        result = validate_on_measurements(profile, args.measurements)
    elif profile.validation:
        result, label = profile.validation, "cross-validated"
    else:
        raise NasError(f"profile {profile.name!r} records no validation; pass --measurements")
    if not isinstance(result.get("n"), int) or result["n"] < 2:  # one row has no error spread and no ranking
        source = args.measurements or f"the validation of {profile.path}"
        raise NasError(
            f"{source}: {result.get('n')} usable measurement(s); validating a latency model needs at "
            "least 2 (Kendall tau ranks pairs)"
        )
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _print_validation(Path(str(profile.path)), result, label)
    return 0
