"""Model selection: every candidate on the same images and slices, one candidates x slices matrix.

Per slice and candidate: accuracy with its 95% Wilson interval, ECE and per-class recall. Per slice the
most accurate candidate is compared with each other one by an exact McNemar test on the same images
(the discordant pairs), so "better" means better on these images beyond chance at the 5% level, one
test per pair (not corrected for the number of slices). Per candidate: its worst slice (among slices
that are not thin, if any) and its latency on a hardware profile (measured here with ONNX Runtime for a
measured profile, predicted for a remote one; skipped with `profile=None`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas._io import write_json_atomic
from nas.errors import NasError, first_line
from nas.runtime import softmax
from nas.validate._candidates import PreprocessingFlags, candidate_names, load_candidate
from nas.validate._corruptions import check_family, check_severity, corrupt
from nas.validate._data import evaluation_images, read_user_slices
from nas.validate._manifest import manifest_slices, read_manifest
from nas.validate._slices import THIN_HALF_WIDTH, THIN_N, _thin_reason
from nas.validate._stats import mcnemar_exact, slice_statistics

ALPHA = 0.05


@dataclass
class _ImageSet:
    """Images run once per candidate, and the slices (row indices) taken from them."""

    images: object
    labels: np.ndarray
    slices: list[tuple[str, str, np.ndarray]]  # (name, kind, indices)


@dataclass
class SelectionReport:
    """The result of `compare_candidates`; `to_dict()` is its JSON form."""

    candidates: list[dict]
    classes: tuple[str, ...]
    data: str
    slices: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "candidates": self.candidates,
            "classes": list(self.classes),
            "data": self.data,
            "test": f"exact McNemar on the same images, two-sided, alpha {ALPHA}, one test per pair and slice",
            "thin_rule": f"n < {THIN_N} or 95% CI half-width > {THIN_HALF_WIDTH} for any candidate",
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
            "slices": self.slices,
        }

    def write_json(self, path: str | Path) -> Path:
        return write_json_atomic(Path(path), self.to_dict())

    def write_html(self, path: str | Path) -> Path:
        from nas.validate._select_html import write_selection_page

        return write_selection_page(self.to_dict(), Path(path))

    def print(self, console=None) -> None:
        from nas.validate._select_html import print_selection

        print_selection(self.to_dict(), console)


def _latency(model, profile) -> dict:
    if profile is None:
        return {"skipped": True}
    from nas.latency import measure_latency

    try:
        if profile.latency == "measured":
            m = measure_latency(model.path, profile.measurement)
            return {
                "profile": profile.name,
                "median_ms": m.median_ms,
                "spread": m.spread,
                "stable": m.stable,
                "how": "measured here with ONNX Runtime",
            }
        return {
            "profile": profile.name,
            "median_ms": profile.predict(str(model.path)).latency_ms,
            "how": "predicted by the profile's latency model",
        }
    except NasError as exc:
        return {"profile": profile.name, "median_ms": None, "how": f"not available: {first_line(exc)}"}


def _image_sets(
    classes,
    data,
    manifest,
    slice_columns,
    combine,
    user_slices,
    families,
    severities,
    split,
    seed,
    max_images,
    notes,
) -> tuple[list[_ImageSet], str]:
    sets, names = [], []
    if data is not None:
        ev = evaluation_images(data, classes, split=split, seed=seed, max_images=max_images)
        everything = np.arange(len(ev))
        sets.append(_ImageSet(ev.images, ev.labels, [("clean", "clean", everything)]))
        for family in families:
            for severity in severities:
                x = corrupt(np.asarray(ev.images), family, severity, seed)
                sets.append(_ImageSet(x, ev.labels, [(f"{family}@{severity}", "corruption", everything)]))
        names.append(ev.name)
    if user_slices is not None:
        for user in read_user_slices(user_slices, classes):
            sets.append(
                _ImageSet(user.images, user.labels, [(f"user:{user.name}", "user", np.arange(len(user)))])
            )
        names.append(str(user_slices))
    if manifest is not None:
        labels = manifest.label_indices(classes)
        column_slices, skipped = manifest_slices(manifest, slice_columns, combine)
        notes.extend(f"not sliced: {s}" for s in skipped)
        slices = [("manifest", "manifest", np.arange(len(labels)))]
        slices += [(name, "manifest", index) for name, index in column_slices]
        sets.append(_ImageSet(manifest.images, labels, slices))
        names.append(str(manifest.path))
    return sets, " + ".join(names)


def _class_order(models, names) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """The first candidate's classes, and for each candidate the column of its logits for each of them."""
    reference = models[0].classes
    orders = []
    for model, name in zip(models, names):
        if set(model.classes) != set(reference):
            extra = sorted(set(model.classes) - set(reference)) or sorted(set(reference) - set(model.classes))
            raise NasError(
                f"candidates disagree on classes: {name} has {len(model.classes)} classes, {names[0]} has "
                f"{len(reference)} (first difference: {extra[0]!r}); compare models of the same classes"
            )
        position = {c: i for i, c in enumerate(model.classes)}
        orders.append(np.array([position[c] for c in reference]))
    return reference, orders


def _compare(best: str, hits: dict[str, np.ndarray]) -> list[dict]:
    out = []
    for other, hit in hits.items():
        if other == best:
            continue
        best_only = int((hits[best] & ~hit).sum())
        other_only = int((~hits[best] & hit).sum())
        p = mcnemar_exact(best_only, other_only)
        out.append(
            {
                "against": other,
                "best_only_correct": best_only,
                "other_only_correct": other_only,
                "p_value": p,
                "significant": p < ALPHA,
            }
        )
    return out


def compare_candidates(
    models,
    data="builtin",
    *,
    manifest=None,
    slice_columns=None,
    combine=(),
    user_slices=None,
    families=(),
    severities=(3,),
    split: str = "val",
    seed: int = 0,
    max_images: int | None = None,
    profile: str | None = "x86-cpu",
    preprocessing: PreprocessingFlags | None = None,
    threads: int = 1,
) -> SelectionReport:
    """Evaluate every candidate ONNX classifier on the same images and slices (see the module docstring).

    `data`: as `evaluate_slices` takes it (None: no such set); `manifest`: a manifest CSV (see
    `read_manifest`); `user_slices`: a folder `<condition>/<class>/*.jpg`; `families`/`severities`:
    corruption slices of `data`; `profile`: a hardware profile name or path for latency (None: skip);
    `preprocessing`: flags for candidates without their own preprocessing.
    """
    start = time.perf_counter()
    paths = [Path(m) for m in models]
    if len(paths) < 2:
        raise NasError("give two or more candidate models to compare (for one model use 'nas validate')")
    seen = set()
    for p in paths:
        if p.resolve() in seen:
            raise NasError(f"candidate {p} is given twice")
        seen.add(p.resolve())
    families = tuple(check_family(f, "families") for f in families)
    severities = tuple(check_severity(s, "severities") for s in severities)
    if families and data is None:
        raise NasError("corruption slices (--families) need --data: they corrupt its images")
    if data is None and manifest is None and user_slices is None:
        raise NasError("nothing to evaluate on: give --data, --manifest or --slices")
    names = candidate_names(paths)
    loaded = [load_candidate(p, preprocessing, threads) for p in paths]
    models_ = [m for m, _ in loaded]
    classes, orders = _class_order(models_, names)
    read = read_manifest(manifest) if manifest is not None else None
    hw = None
    if profile is not None:
        from nas.latency import load_profile

        hw = load_profile(profile)
    notes: list[str] = []
    sets, data_name = _image_sets(
        classes,
        data,
        read,
        slice_columns,
        combine,
        user_slices,
        families,
        severities,
        split,
        seed,
        max_images,
        notes,
    )
    report = SelectionReport([], classes, data_name, notes=notes)
    rows: list[dict] = []
    for image_set in sets:
        probs = {
            n: softmax(m.logits(image_set.images).astype(np.float64))[:, o]
            for n, m, o in zip(names, models_, orders)
        }
        for slice_name, kind, index in image_set.slices:
            labels = image_set.labels[index]
            results, hits, reasons = {}, {}, []
            for name in names:
                p = probs[name][index]
                stats = slice_statistics(np.log(np.clip(p, 1e-30, None)), labels, classes, top_confusions=0)
                hits[name] = p.argmax(axis=1) == labels
                reason = _thin_reason(stats["n"], stats["ci95"])
                if reason:
                    reasons.append(reason if stats["n"] < THIN_N else f"{name}: {reason}")
                results[name] = {
                    "accuracy": stats["accuracy"],
                    "ci95": stats["ci95"],
                    "ece": stats["ece"],
                    "recall": {c: v["accuracy"] for c, v in stats["per_class"].items()},
                }
            best = max(names, key=lambda n: results[n]["accuracy"])
            rows.append(
                {
                    "name": slice_name,
                    "kind": kind,
                    "n": int(len(index)),
                    "thin": bool(reasons),
                    "thin_reason": reasons[0] if reasons else None,
                    "results": results,
                    "best": best,
                    "comparisons": _compare(best, hits),
                }
            )
    report.slices = rows
    for name, path, (model, source) in zip(names, paths, loaded):
        pool = [s for s in rows if not s["thin"]] or rows
        worst = min(pool, key=lambda s: s["results"][name]["accuracy"])
        report.candidates.append(
            {
                "name": name,
                "path": str(path),
                "preprocessing": source,
                "precision": model.precision,
                "input_size": list(model.input_size),
                "worst_slice": worst["name"],
                "worst_slice_accuracy": worst["results"][name]["accuracy"],
                "best_on": [s["name"] for s in rows if s["best"] == name],
                "latency": _latency(model, hw),
            }
        )
    report.seconds = time.perf_counter() - start
    return report
