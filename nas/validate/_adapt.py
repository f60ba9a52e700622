"""Fine-tune or replace: the slices a model fails, the fine-tuning set aimed at them, and the decision.

`nas adapt` (nas/cli_adapt.py) strings these together around the deployment trainer:

1. `failing_slices`: the slices of a `nas validate` report whose accuracy lies more than `min_gap` below
   the clean slice's, worst first;
2. `adaptation_set`: the training images (never the evaluation images: `check_disjoint`), each once clean
   and once corrupted by every failing corruption family it trains on (at the failing severities), plus
   one more copy of each image the model gets wrong (hard examples);
3. after fine-tuning, `decide` reads the `nas select` comparison of the model, its fine-tuned version and
   the other candidates: per failing slice the share of the gap to clean accuracy closed by fine-tuning
   and by switching to the best other candidate, the clean accuracy each costs and the latency each
   costs, and a recommendation with its evidence.

A gap is `clean(model) - slice(model)`; fine-tuning closes `(slice(adapted) - slice(model)) / gap` of it,
switching closes `(slice(other) - slice(model)) / gap`. Shares are of one model's own clean accuracy, so
a switch to a model better everywhere can close more than 100%.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas._io import write_json_atomic
from nas.data import ImageDataset
from nas.errors import NasError
from nas.validate._corruptions import corrupt
from nas.validate._data import evaluation_images, read_user_slices

DEFAULT_MIN_GAP = 0.03  # a slice fails when its accuracy is more than this below clean
DEFAULT_MAX_FAMILIES = 2  # corruption families fine-tuned on: the worst ones
DEFAULT_MAX_CLEAN_LOSS = 0.01  # fine-tuning may cost at most this much clean accuracy to be recommended


def failing_slices(slice_report: dict, min_gap: float = DEFAULT_MIN_GAP) -> list[dict]:
    """The slices of a `SliceReport.to_dict()` more than `min_gap` below clean accuracy, worst first."""
    clean = slice_report["clean_accuracy"]
    failing = [
        {
            "name": s["name"],
            "kind": s["kind"],
            "family": s.get("family"),
            "severity": s.get("severity"),
            "accuracy": s["accuracy"],
            "gap": clean - s["accuracy"],
            "thin": s["thin"],
        }
        for s in slice_report["slices"]
        if s["kind"] != "clean" and clean - s["accuracy"] > min_gap
    ]
    return sorted(failing, key=lambda s: -s["gap"])


def training_conditions(failing: list[dict], max_families: int) -> list[tuple[str, int]]:
    """(family, severity) pairs to corrupt the training images with: every failing severity of the
    `max_families` corruption families with the largest gaps."""
    families: list[str] = []
    for s in failing:
        if s["family"] and s["family"] not in families:
            families.append(s["family"])
    chosen = families[:max_families]
    return sorted({(s["family"], int(s["severity"])) for s in failing if s["family"] in chosen})


def _digests(images) -> set[bytes]:
    return {hashlib.blake2b(np.ascontiguousarray(img).tobytes(), digest_size=16).digest() for img in images}


def check_disjoint(train_images, evaluation_images, train_name: str, evaluation_name: str) -> None:
    """Refuse evaluation images that are also fine-tuning images (byte for byte): the gap closed would be
    measured on what the model was fine-tuned on."""
    shared = len(_digests(train_images) & _digests(evaluation_images))
    if shared:
        raise NasError(
            f"{evaluation_name}: {shared} evaluation images are also training images of {train_name}; "
            "evaluate on images disjoint from the fine-tuning data (another --eval-data, or --eval-split val)"
        )


def evaluation_pool(evaluation, user_slices, classes, split: str, seed: int, max_images) -> list:
    """Every evaluation image (of `evaluation`'s `split` and of the user slices), as `nas validate` takes
    them, for `check_disjoint`."""
    images = list(
        evaluation_images(evaluation, classes, split=split, seed=seed, max_images=max_images).images
    )
    if user_slices is not None:
        for user in read_user_slices(user_slices, classes):
            images.extend(user.images)
    return images


@dataclass
class AdaptationSet:
    """The fine-tuning images, and what they are made of (for the report)."""

    dataset: ImageDataset
    summary: dict = field(default_factory=dict)


def adaptation_set(
    train: ImageDataset,
    model,
    conditions: list[tuple[str, int]],
    *,
    mean,
    std,
    seed: int = 0,
) -> AdaptationSet:
    """`train`'s training images (labels in `model.classes` order) clean and corrupted per `conditions`,
    with one more copy of each image `model` (an OnnxClassifier) gets wrong; `train`'s validation images
    stay its validation split. `mean`/`std`: the model's own, so training normalises as the model does."""
    order = {c: i for i, c in enumerate(model.classes)}
    if set(train.classes) != set(order):
        raise NasError(
            f"--data {train.name}: classes {sorted(train.classes)} are not the model's {sorted(order)}"
        )
    relabel = np.array([order[c] for c in train.classes], np.int64)
    x_clean, y = train.x_train, relabel[np.asarray(train.y_train, np.int64)]
    parts = [x_clean] + [corrupt(x_clean, family, severity, seed + k) for k, (family, severity) in
                         enumerate(conditions)]  # fmt: skip
    x = np.concatenate(parts)
    labels = np.tile(y, len(parts))
    wrong = np.concatenate([model.logits(p).argmax(axis=1) != y for p in parts])
    x_all, y_all = np.concatenate([x, x[wrong]]), np.concatenate([labels, labels[wrong]])
    summary = {
        "train_images": int(len(y)),
        "conditions": [f"{family}@{severity}" for family, severity in conditions],
        "copies_per_image": len(parts),
        "hard_examples": int(wrong.sum()),
        "hard_examples_by_part": {
            name: int(w.sum())
            for name, w in zip(["clean", *(f"{f}@{s}" for f, s in conditions)], np.split(wrong, len(parts)))
        },
        "fine_tuning_images": int(len(y_all)),
    }
    dataset = ImageDataset(
        name=f"{train.name} (adapted: clean + {', '.join(summary['conditions']) or 'no corruption'} + hard)",
        classes=tuple(model.classes),
        x_train=x_all,
        y_train=y_all,
        x_val=train.x_val,
        y_val=relabel[np.asarray(train.y_val, np.int64)],
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
    )
    return AdaptationSet(dataset, summary)


def _row(selection: dict, name: str) -> dict:
    for s in selection["slices"]:
        if s["name"] == name:
            return s
    raise NasError(f"slice {name!r} is missing from the comparison")


def _latency_ms(candidate: dict) -> float | None:
    return candidate.get("latency", {}).get("median_ms")


def decide(
    selection: dict,
    base: str,
    adapted: str,
    failing: list[dict],
    *,
    max_clean_loss: float = DEFAULT_MAX_CLEAN_LOSS,
) -> dict:
    """The decision from a `SelectionReport.to_dict()` of the model (`base`), its fine-tuned version
    (`adapted`) and the other candidates, on the `failing` slices (see the module docstring)."""
    clean = _row(selection, "clean")["results"]
    latency = {c["name"]: _latency_ms(c) for c in selection["candidates"]}
    others = [c["name"] for c in selection["candidates"] if c["name"] not in (base, adapted)]

    def share(row: dict, name: str, gap: float) -> float:
        return (row["results"][name]["accuracy"] - row["results"][base]["accuracy"]) / gap

    def significance(row: dict, a: str, b: str) -> dict | None:
        """The McNemar comparison of a and b on this slice, when one of them is its most accurate model."""
        for first, second in ((a, b), (b, a)):
            if row["best"] == first:
                for c in row["comparisons"]:
                    if c["against"] == second:
                        return {"better": first, "p_value": c["p_value"], "significant": c["significant"]}
        return None

    rows = []
    for f in failing:
        row = _row(selection, f["name"])
        gap = clean[base]["accuracy"] - row["results"][base]["accuracy"]
        if gap <= 0:
            continue
        entry = {
            "slice": f["name"],
            "n": row["n"],
            "thin": row["thin"],
            "gap": gap,
            "accuracy": {name: r["accuracy"] for name, r in row["results"].items()},
            "fine_tune_closed": share(row, adapted, gap),
            "fine_tune_test": significance(row, adapted, base),
        }
        if others:
            best = max(others, key=lambda n: row["results"][n]["accuracy"])
            entry.update(
                switch_to=best,
                switch_closed=share(row, best, gap),
                switch_test=significance(row, best, base),
            )
        rows.append(entry)
    switch = None
    if others and rows:  # one model replaces the base everywhere: the best on the failing slices on average
        switch = max(others, key=lambda n: np.mean([_row(selection, r["slice"])["results"][n]["accuracy"]
                                                    for r in rows]))  # fmt: skip
    clean_loss = {name: clean[base]["accuracy"] - clean[name]["accuracy"] for name in clean if name != base}
    summary = {
        "fine_tune_mean_closed": float(np.mean([r["fine_tune_closed"] for r in rows])) if rows else None,
        "fine_tune_clean_loss": clean_loss[adapted],
        "fine_tune_latency_ms": latency.get(adapted),
        "base_latency_ms": latency.get(base),
        "switch_to": switch,
        "switch_mean_closed": None
        if switch is None
        else float(np.mean([share(_row(selection, r["slice"]), switch, r["gap"]) for r in rows])),
        "switch_clean_loss": None if switch is None else clean_loss[switch],
        "switch_latency_ms": None if switch is None else latency.get(switch),
    }
    recommendation, evidence = _recommend(summary, base, adapted, max_clean_loss, bool(rows))
    return {
        "base": base,
        "adapted": adapted,
        "max_clean_loss": max_clean_loss,
        "slices": rows,
        "summary": summary,
        "recommendation": recommendation,
        "evidence": evidence,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g} ms"


def _recommend(s: dict, base: str, adapted: str, max_clean_loss: float, any_failing: bool):
    if not any_failing:
        return "keep", [f"{base} fails no slice by more than the gap threshold: nothing to fix"]
    tune_ok = s["fine_tune_clean_loss"] <= max_clean_loss
    evidence = [
        f"fine-tuning closes {_pct(s['fine_tune_mean_closed'])} of the gap on the failing slices on average, "
        f"at {_pct(s['fine_tune_clean_loss'])} clean accuracy lost (allowed: {_pct(max_clean_loss)}) and the "
        f"same architecture ({_ms(s['fine_tune_latency_ms'])} against {_ms(s['base_latency_ms'])})"
    ]
    switch_ok = s["switch_to"] is not None and s["switch_clean_loss"] <= max_clean_loss
    if s["switch_to"] is not None:
        evidence.append(
            f"switching to {s['switch_to']} closes {_pct(s['switch_mean_closed'])} at "
            f"{_pct(s['switch_clean_loss'])} clean accuracy lost, latency {_ms(s['switch_latency_ms'])} "
            f"against {_ms(s['base_latency_ms'])}"
        )
    tune = s["fine_tune_mean_closed"] if tune_ok else -np.inf
    other = s["switch_mean_closed"] if switch_ok else -np.inf
    if max(tune, other) <= 0:
        return "keep", evidence + ["neither fine-tuning nor a switch closes any of the gap within the clean "
                                   "accuracy allowed: keep the model, collect data of the failing slices"]  # fmt: skip
    if tune >= other:
        return f"fine-tune: deploy {adapted}", evidence
    return f"replace: switch to {s['switch_to']}", evidence


@dataclass
class AdaptationReport:
    """What `nas adapt` measured and decided; `to_dict()` is its JSON form (also `ADAPT_FILE`)."""

    model: str
    adapted: str
    before: dict  # the model's slice report (to_dict)
    failing: list[dict]
    training: dict
    selection: dict  # the comparison after fine-tuning (SelectionReport.to_dict)
    decision: dict
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "adapted": self.adapted,
            "failing_slices": self.failing,
            "training": self.training,
            "decision": self.decision,
            "comparison": self.selection,
            "before": {k: v for k, v in self.before.items() if k != "slices"},
            "seconds": round(self.seconds, 3),
        }

    def write_json(self, path: str | Path) -> Path:
        return write_json_atomic(Path(path), self.to_dict())

    def write_html(self, path: str | Path) -> Path:
        from nas.validate._adapt_html import write_adaptation_page

        return write_adaptation_page(self.to_dict(), Path(path))

    def print(self, console=None) -> None:
        from nas.validate._adapt_html import print_adaptation

        print_adaptation(self.to_dict(), console)
