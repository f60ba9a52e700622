"""Pareto set -> deployable files: a trained ONNX model (dynamic batch), its spec JSON and its metrics (and,
with the tflite format, a LiteRT model beside it).

The exact input preprocessing travels with every model (ONNX metadata and spec JSON), so the model can
be run on new images without reading this code. Each export is checked against PyTorch in ONNX Runtime.
Each model folder's spec.json names the run it came from (`exported_from`): export replaces or removes
only folders it made for the same run, so exporting into another run's export folder never loses its models.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from nas._io import load_checkpoint, read_json
from nas.builder import build_model
from nas.errors import NasError
from nas.export._checkpoint import digest
from nas.export._exits import add_exit_segments
from nas.export._folder import finished_export, mark_exported
from nas.export._litert import check_export_format
from nas.export._network import ExportedModel, exported_model, run_identity, write_export
from nas.space import Architecture

_EXPORT_DIR = re.compile(r"^\d\d_[0-9a-f]{12}$")


def export_run(
    run_dir: str | Path, out: str | Path | None = None, *, force: bool = False, export_format: str = "onnx"
) -> list[ExportedModel]:
    """Export every Pareto-optimal architecture of a finished (or running) search.

    `out` may hold other exports (another run's, or folders of unknown origin) only with `force`; they are
    never removed or replaced. `export_format="tflite"`: a LiteRT model.tflite beside each model.onnx (needs
    the litert extra).
    """
    run_dir = Path(run_dir)
    pareto_path, config_path = run_dir / "pareto.json", run_dir / "config.json"
    if not config_path.is_file():
        raise NasError(f"{run_dir}: not a nas run directory (missing config.json)")
    if not pareto_path.is_file() and (run_dir / "study.db").is_file():  # stopped before its first batch ended
        raise NasError(
            f"{run_dir}: the search stopped before writing pareto.json; run the same nas search "
            "command again to resume it (it writes pareto.json), then export"
        )
    if not pareto_path.is_file():
        raise NasError(f"{run_dir}: not a nas run directory (missing pareto.json)")
    pareto, config = read_json(pareto_path, "pareto file"), read_json(config_path, "run configuration")
    _check_pareto_file(pareto_path, pareto)
    if not isinstance(config, dict):
        raise NasError(f"{config_path}: not a nas run configuration (expected a JSON object)")
    if not pareto["pareto"]:
        raise NasError(f"{run_dir}: no completed trial to export yet")
    out = Path(out) if out else run_dir / "export"
    if out.exists() and not out.is_dir():
        raise NasError(f"{out}: is a file; choose another --out folder")
    for record in pareto["pareto"]:
        if not (run_dir / record["checkpoint"]).is_file():
            raise NasError(
                f"{run_dir}: checkpoint of trial {record['trial']} missing ({record['checkpoint']})"
            )
    # Every checkpoint read before anything is written: a damaged one is a one-line error, not half an export.
    weights = [load_checkpoint(run_dir, record["checkpoint"]) for record in pareto["pareto"]]
    current = {
        f"{rank:02d}_{Architecture.from_dict(r['architecture']).hash}"
        for rank, r in enumerate(pareto["pareto"])
    }
    origin = run_identity(run_dir)
    own = _own_folders(out, run_dir, origin, current, force)
    # The converter imported (or its absence told in one line) before anything is written.
    check_export_format(export_format)
    out.mkdir(parents=True, exist_ok=True)
    preprocessing = pareto["preprocessing"]
    num_classes = len(preprocessing["classes"])
    exported = []
    for rank, (record, state) in enumerate(zip(pareto["pareto"], weights)):
        arch = Architecture.from_dict(record["architecture"])
        target = out / f"{rank:02d}_{arch.hash}"
        target.mkdir(exist_ok=True)
        metrics = {
            "trial": record["trial"],
            "profile": pareto["profile"],
            "dataset": pareto["dataset"],
            "proxy_accuracy": record["accuracy"],
            "accuracy_objective": pareto.get("accuracy_objective", "clean validation accuracy"),
            "clean_accuracy": record.get("clean_accuracy"),
            "corrupted_accuracy": record.get("corrupted_accuracy"),
            "latency_ms": record["latency_ms"],
            "latency_spread": record["latency_spread"],
            "params": record["params"],
            "macs": record["macs"],
            "macs_note": (
                "fvcore counts multiply-accumulates of conv/linear layers; activations, adds and SE "
                "multiplies count 0"
            ),
            "training": config.get("recipe"),
        }
        exits = record.get("exits") if arch.exits else None
        exported_as = digest(
            {
                "checkpoint": hashlib.sha256((run_dir / record["checkpoint"]).read_bytes()).hexdigest(),
                "architecture": arch.to_dict(),
                "metrics": metrics,
                "preprocessing": preprocessing,
                "exported_from": origin,
                "exits": exits,
                "format": export_format,
            }
        )
        done = finished_export(target, exported_as)
        if done is not None:  # the same model exported to the end before: its files stay as they are
            exported.append(exported_model(target, done, export_format))
            continue
        model = build_model(arch, num_classes)
        model.load_state_dict(state)
        model.eval()
        exported.append(
            write_export(
                target,
                model,
                arch,
                num_classes,
                preprocessing,
                metrics,
                spec={"exported_from": origin},
                export_format=export_format,
            )
        )
        if exits:  # early exits: the segments and the search's thresholds
            add_exit_segments(target, model, arch, exits, exits.get("expected_latency"))
        mark_exported(target, exported_as)
    # This run's exports of an earlier front (a resumed search moves the front) go last: an export stopped
    # half-way (Ctrl-C, a kill) leaves the earlier models in place, never fewer than it found.
    for stale in sorted(own - current):
        shutil.rmtree(out / stale)
    return exported


def _check_pareto_file(path: Path, pareto: Any) -> None:
    """pareto.json as `nas search` writes it; anything else is a one-line error saying how to get it back."""
    again = (
        "run the same nas search command again to rewrite it (the search resumes; finished trials are kept)"
    )
    if not isinstance(pareto, dict) or not isinstance(pareto.get("pareto"), list):
        raise NasError(f"{path}: not a nas Pareto file (expected an object with a 'pareto' list); {again}")
    pre = pareto.get("preprocessing")
    if not isinstance(pre, dict) or not isinstance(pre.get("classes"), list):
        raise NasError(f"{path}: no 'preprocessing' with the classes; {again}")
    for i, record in enumerate(pareto["pareto"]):
        missing = [
            k
            for k in ("trial", "checkpoint", "architecture", "accuracy", "latency_ms")
            if not isinstance(record, dict) or k not in record
        ]
        if missing:
            raise NasError(f"{path}: Pareto entry {i} lacks {', '.join(missing)}; {again}")
        try:
            Architecture.from_dict(record["architecture"])
        except Exception as exc:
            raise NasError(
                f"{path}: Pareto entry {i}: invalid architecture ({type(exc).__name__}); {again}"
            ) from None


def _own_folders(
    out: Path, run_dir: Path, origin: dict[str, str], current: set[str], force: bool
) -> set[str]:
    """The model folders in `out` this run's export made, which it may replace or remove.

    Any other model folder there (another run's, or of unknown origin) is refused without `force` and
    never touched; one with the name of a model to write is refused even with `force`. Folders without
    `exported_from` (exports made before it was recorded) count as the run's own in RUN_DIR/export only.
    """
    own_default = out.resolve() == (run_dir / "export").resolve()
    own, foreign = set(), []
    for folder in sorted(out.iterdir()) if out.is_dir() else ():
        if not (folder.is_dir() and _EXPORT_DIR.match(folder.name)):
            continue  # not a model folder of nas export (e.g. NN_HASH-deployed of nas train): left alone
        owner = _exported_from(folder)
        same_run = (
            own_default
            if owner is None
            else (
                owner.get("config_sha256") == origin["config_sha256"]
                and (own_default or owner.get("run_dir") == origin["run_dir"])
            )
        )
        if same_run:
            own.add(folder.name)
        else:
            foreign.append(folder)
    for folder in foreign:
        if folder.name in current:
            raise NasError(
                f"{folder}: holds a model exported from {_origin_name(folder)}, not from {run_dir}; "
                "nas export never replaces it, even with --force; choose another --out"
            )
    if foreign and not force:
        raise NasError(
            f"{out}: holds models not exported from {run_dir} ({foreign[0].name} from {_origin_name(foreign[0])}"
            f"{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}); choose another --out, or pass "
            "--force to export next to them (they are left as they are)"
        )
    return own


def _exported_from(folder: Path) -> dict | None:
    try:
        owner = json.loads((folder / "spec.json").read_text()).get("exported_from")
    except (OSError, ValueError, AttributeError):
        return None
    return owner if isinstance(owner, dict) else None


def _origin_name(folder: Path) -> str:
    owner = _exported_from(folder)
    return str(owner.get("run_dir")) if owner else "an unknown run"
