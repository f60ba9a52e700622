"""`nas adapt`: fine-tune a model on the slices where it fails, or replace it by another candidate.

`adapt` strings nas.validate's pieces (`failing_slices`, `adaptation_set`, `decide`) around the deployment
trainer (`nas.export.deploy_train`, started from the model's own weights); it lives at this layer because
nas.validate may not import nas.export. Every input is checked before anything is trained or written;
the fine-tuned model is a new export folder (the input is never touched).
"""

from __future__ import annotations

import time
from pathlib import Path

from nas._checks import check_integer, check_number
from nas._cli import add_json_arguments, check_outputs, corruption_families, int_list, messages, print_json
from nas.cli_select import add_preprocessing_flags, preprocessing_flags
from nas.errors import NasError

ADAPTED_SUFFIX = "-adapted"


def _source_folder(model) -> Path:
    """The export folder of `model` (the folder, or its model.onnx)."""
    source = Path(model)
    if source.is_file() and (source.parent / "spec.json").is_file():
        source = source.parent
    if not source.is_dir():
        raise NasError(f"MODEL {source}: exported model folder not found")
    for name in ("spec.json", "model.onnx"):
        if not (source / name).is_file():
            raise NasError(f"MODEL {source}: not an exported model folder (missing {name})")
    return source


def _check_out(out: Path, source: Path) -> None:
    from nas._io import check_output_path

    if out.resolve() == source.resolve():
        raise NasError(f"--out {out}: is the model's own folder; the adapted model goes to a new folder")
    check_output_path(out, "--out")
    if (out / "model.onnx").exists():
        raise NasError(f"--out {out}: already holds a model; choose another --out (nothing is replaced)")


def _check_settings(epochs, train_subset, min_gap, max_families, max_clean_loss, seed) -> None:
    check_integer("--epochs", epochs, 1)
    if train_subset is not None:
        check_integer("--train-subset", train_subset, 1)
    check_integer("--max-families", max_families, 1)
    check_integer("--seed", seed, 0)
    check_number("--min-gap", min_gap, lambda v: 0 <= v < 1, "a number in [0, 1)")
    check_number("--max-clean-loss", max_clean_loss, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def adapt(
    model,
    data,
    *,
    eval_data=None,
    eval_split: str = "val",
    user_slices=None,
    families=(),
    severities=(3,),
    candidates=(),
    out=None,
    epochs: int = 5,
    train_subset: int | None = None,
    min_gap: float = 0.03,
    max_families: int = 2,
    max_clean_loss: float = 0.01,
    seed: int = 0,
    max_images: int | None = None,
    profile: str | None = "x86-cpu",
    preprocessing=None,
    progress=None,
):
    """Fine-tune the export folder `model` on `data`'s training images where it fails on `eval_data`
    (default: `data`; `eval_split` of it) and compare it with `candidates`; returns the AdaptationReport,
    or None when no slice fails (nothing is trained or written then)."""
    from nas.data import load_dataset
    from nas.export import deploy_train
    from nas.validate import (
        ADAPT_FILE,
        AdaptationReport,
        adaptation_set,
        check_disjoint,
        compare_candidates,
        decide,
        evaluate_slices,
        evaluation_pool,
        failing_slices,
        load_candidate,
        training_conditions,
        write_model_card,
    )

    start = time.perf_counter()
    source = _source_folder(model)
    out = Path(out) if out is not None else source.parent / f"{source.name}{ADAPTED_SUFFIX}"
    _check_out(out, source)
    _check_settings(epochs, train_subset, min_gap, max_families, max_clean_loss, seed)
    if profile is not None:
        from nas.latency import load_profile

        load_profile(profile)  # a bad profile is refused now, not after the training
    onnx = source / "model.onnx"
    classifier, _ = load_candidate(onnx)
    for path in candidates:
        other, _ = load_candidate(path, preprocessing)
        if set(other.classes) != set(classifier.classes):
            raise NasError(
                f"--candidates {path}: classes {sorted(other.classes)} are not the model's "
                f"{sorted(classifier.classes)}"
            )
    train = load_dataset(data, seed=seed)
    evaluation = data if eval_data is None else eval_data
    images = evaluation_pool(evaluation, user_slices, classifier.classes, eval_split, seed, max_images)
    check_disjoint(train.x_train, images, f"--data {train.name}", f"--eval-data {evaluation}")
    where = {"split": eval_split, "seed": seed, "max_images": max_images, "user_slices": user_slices}
    before = evaluate_slices(onnx, evaluation, families=families, severities=severities, **where).to_dict()
    failing = failing_slices(before, min_gap)
    if not failing:
        return None
    conditions = training_conditions(failing, max_families)
    pre = classifier.preprocessing
    chosen = adaptation_set(train, classifier, conditions, mean=pre["mean"], std=pre["std"], seed=seed)
    deploy_train(source, dataset=chosen.dataset, epochs=epochs, train_subset=train_subset, seed=seed,
                 init=source, out=out, progress=progress)  # fmt: skip
    selection = compare_candidates(
        [onnx, out / "model.onnx", *candidates],
        evaluation,
        families=families,
        severities=severities,
        profile=profile,
        preprocessing=preprocessing,
        **where,
    ).to_dict()
    base, adapted = (c["name"] for c in selection["candidates"][:2])
    report = AdaptationReport(
        str(source),
        str(out),
        before,
        failing,
        {
            "data": train.name,
            "epochs": epochs,
            "train_subset": train_subset,
            "seed": seed,
            "from_weights_of": str(source),
            "summary": chosen.summary,
        },
        selection,
        decide(selection, base, adapted, failing, max_clean_loss=max_clean_loss),
    )
    report.seconds = time.perf_counter() - start
    report.write_json(out / ADAPT_FILE)
    write_model_card(out)
    return report


def add_adapt_command(sub) -> None:
    a = sub.add_parser(
        "adapt",
        help="fine-tune a model on the slices where it fails, and compare with switching to another candidate",
        description="Find the slices (corruption families of the evaluation images, user slices) where MODEL "
        "is more than --min-gap below its clean accuracy; fine-tune it from its own weights on --data's "
        "training images, clean and corrupted by its worst failing families, plus the images it gets wrong; "
        "re-validate on evaluation images disjoint from those; write a decision report: per failing slice "
        "the gap closed by fine-tuning against switching to the best of --candidates, the clean accuracy and "
        "latency each costs, and the recommendation. The fine-tuned model is a new export folder.",
    )
    a.add_argument("model", help="an exported model folder (or its model.onnx) with trained weights")
    a.add_argument("--data", required=True, help="fine-tuning images: 'builtin', a folder or an .npz")
    a.add_argument("--eval-data", default=None, help="evaluation images (default: --data)")
    a.add_argument(
        "--eval-split",
        choices=("val", "all"),
        default="val",
        help="which evaluation images: the validation split, or all of --eval-data (default: val)",
    )
    a.add_argument("--slices", default=None, help="user slices: DIR/<condition>/<class>/*.jpg")
    a.add_argument("--families", default="all", help="corruption slices: f1,f2, 'all' or 'none'")
    a.add_argument("--severities", type=int_list, default=(3,), help="corruption severities (default: 3)")
    a.add_argument("--candidates", nargs="*", default=[], help="other ONNX classifiers to switch to")
    a.add_argument("--out", default=None, help="the adapted model's folder (default: MODEL-adapted)")
    a.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs (default: %(default)s)")
    a.add_argument("--train-subset", type=int, default=None, help="images per epoch (default: all)")
    a.add_argument(
        "--min-gap", type=float, default=0.03, help="a slice fails this far below clean (default: 0.03)"
    )
    a.add_argument("--max-families", type=int, default=2, help="failing families fine-tuned on (default: 2)")
    a.add_argument(
        "--max-clean-loss",
        type=float,
        default=0.01,
        help="clean accuracy a recommended fix may cost (default: 0.01)",
    )
    a.add_argument(
        "--max-images", type=int, default=None, help="a seeded random subset of the evaluation images"
    )
    a.add_argument(
        "--seed", type=int, default=0, help="seed of the splits, corruptions and training (default: 0)"
    )
    a.add_argument("--profile", default="x86-cpu", help="hardware profile for latency (default: %(default)s)")
    a.add_argument("--no-latency", action="store_true", help="skip latency")
    add_json_arguments(a, "the decision report", "not written beside the model: adaptation.json is")
    a.add_argument("--html", default=None, metavar="FILE", help="write the decision as a self-contained page")
    add_preprocessing_flags(a)
    a.set_defaults(run=_adapt_command)


def _adapt_command(args) -> int:
    from nas.validate import FAMILIES

    to_stdout, json_file = check_outputs(args, "json", "html")
    say = messages(to_stdout)

    def progress(done) -> None:
        say(f"fine-tuning: epoch {done.epoch}/{done.epochs} ({done.seconds:.0f} s)")

    report = adapt(
        args.model,
        args.data,
        eval_data=args.eval_data,
        eval_split=args.eval_split,
        user_slices=args.slices,
        families=corruption_families(args.families, FAMILIES),
        severities=args.severities,
        candidates=args.candidates,
        out=args.out,
        epochs=args.epochs,
        train_subset=args.train_subset,
        min_gap=args.min_gap,
        max_families=args.max_families,
        max_clean_loss=args.max_clean_loss,
        seed=args.seed,
        max_images=args.max_images,
        profile=None if args.no_latency else args.profile,
        preprocessing=preprocessing_flags(args),
        progress=progress,
    )
    if report is None:
        say(
            f"{args.model}: no slice is more than --min-gap {args.min_gap} below clean accuracy: nothing to adapt"
        )
        return 0
    if to_stdout:
        from rich.console import Console

        report.print(Console(stderr=True, width=160))
    else:
        report.print()
    say(f"adapted model: {report.adapted}")
    if json_file:
        say(f"decision report: {report.write_json(json_file)}")
    if args.html:
        say(f"page: {report.write_html(args.html)}")
    if to_stdout:
        print_json(report.to_dict())
    return 0
