"""Calibration bundles: the ONNX graphs a device measures so its latency can be predicted.

`write_bundle` (on the host, needs torch) exports, for a search space, whole random networks plus
every distinct block, stem and head they contain, at the shapes they run at, and one block for each
node kind the space can produce that those networks happen not to contain (so the fitted profile
covers the space). `measure_bundle` (on the
device) needs only onnxruntime, onnx and numpy: it measures every graph with the profile protocol and
writes `measurements.csv` (`model,latency_ms,spread,stable`; model relative to the CSV) and
`measurements.meta.json` (device, runtime, settings, date). Paired with a reference graph
(`bundle_reference`: R G1 R G2 R ..., `nas.latency._measure.paired_measurements`), each row also records
`reference_ms`, the geometric mean of the reference's medians right before and after the graph, from
which readers cancel the machine's slow phases (`nas.latency._calibrate.measurement_samples`).
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
from pathlib import Path
from typing import Callable

from nas._io import cpu_model, read_json, write_atomic
from nas.errors import NasError
from nas.latency._measure import MeasurementSettings, measure_latency, paired_measurements
from nas.latency._signature import machine_signature

MANIFEST = "bundle.json"
FORMAT = "nas-bundle/1"
COLUMNS = ["model", "latency_ms", "spread", "stable"]
PAIRED_COLUMNS = COLUMNS + ["reference_ms"]


FEW_SHOT_POOL = 1000  # random candidates a few-shot bundle's networks are chosen from


def write_bundle(
    space_name: str,
    out_dir: str | Path,
    *,
    networks: int = 150,
    seed: int = 0,
    num_classes: int = 10,
    blocks: bool = True,
    few_shot: bool | None = None,
) -> Path:
    """Export `networks` architectures of the space (and their blocks) into `out_dir`: random ones, or with
    `few_shot` the ones a few-shot fit learns most from (`few_shot_networks`). `few_shot` None: below
    `FEW_SHOT_BELOW` networks (where `nas profile fit` makes a few-shot fit) when the latency-corpus
    devices cover the space, random otherwise (`bundle_design` in the manifest says which)."""
    import hashlib

    import torch

    from nas.builder import build_model
    from nas.latency._calibrate import FEW_SHOT_BELOW
    from nas.onnx_io import export_onnx
    from nas.space import load_space

    if networks < 1:
        raise NasError(f"networks: must be at least 1, got {networks}")
    space = load_space(space_name)
    design = networks < FEW_SHOT_BELOW if few_shot is None else few_shot
    draws = max(100 * networks, 2 * FEW_SHOT_POOL * design)
    archs = _distinct_random(space, seed, FEW_SHOT_POOL if design else networks, draws)
    if len(archs) < networks:
        raise NasError(
            f"space {space.name!r} gave only {len(archs)} distinct networks in {draws} draws; "
            f"ask for fewer than {networks}"
        )
    design_note = "random"
    if design:
        chosen, why_not = few_shot_networks(archs, networks, num_classes, seed)
        if chosen is None and few_shot:
            raise NasError(f"--few-shot: {why_not}")
        if chosen is not None:
            design_note = f"few-shot: nas.latency.design_few_shot from {len(archs)} random networks"
            archs = chosen
        else:
            design_note = f"random ({why_not})"
            archs = archs[:networks]
    out = Path(out_dir)
    (out / "networks").mkdir(parents=True, exist_ok=True)
    (out / "blocks").mkdir(exist_ok=True)
    entries, seen_blocks = [], set()
    for arch in archs:
        model = build_model(arch, num_classes, seed=0)
        path = out / "networks" / f"{arch.hash}.onnx"
        export_onnx(model, arch.resolution, fast=True, path=path)
        entries.append({"path": str(path.relative_to(out)), "kind": "network", "id": arch.hash})
        if not blocks:
            continue
        for label, module, shape in _parts_with_input_shapes(model, arch.resolution):
            key = hashlib.sha256(f"{label}|{module}|{shape}".encode()).hexdigest()[:12]
            if key in seen_blocks:
                continue
            seen_blocks.add(key)
            path = out / "blocks" / f"{key}.onnx"
            export_onnx(module, arch.resolution, fast=True, path=path, input_shape=shape)
            entries.append({"path": str(path.relative_to(out)), "kind": label, "id": key})
    if blocks:
        entries += _coverage_blocks(space, out, num_classes, entries)
    manifest = {
        "format": FORMAT,
        "space": space.name,
        "seed": seed,
        "networks": networks,
        "bundle_design": design_note,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "torch": torch.__version__,
        "models": entries,
    }
    write_atomic(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return out


def _distinct_random(space, seed: int, count: int, draws: int) -> list:
    """Up to `count` distinct architectures drawn at random, in at most `draws` draws."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs, seen = [], set()
    for _ in range(draws):
        if len(archs) == count:
            break
        arch = space.sample(study.ask())
        if arch.hash not in seen:
            seen.add(arch.hash)
            archs.append(arch)
    return archs


def few_shot_networks(archs: list, k: int, num_classes: int, seed: int) -> tuple[list | None, str]:
    """(the k of `archs` to measure for a few-shot fit, ""), chosen by `design_few_shot` on the
    latency-corpus devices' predictions; (None, why) when those devices never measured some node kind
    the candidates hold, or are not installed: a few-shot fit of such networks is impossible."""
    from nas.latency._arch_features import ArchitectureFeaturizer
    from nas.latency._calibrate import FEW_SHOT_BELOW, _corpus_kinds
    from nas.latency._fewshot import design_few_shot, prior_matrix
    from nas.latency._profile_lookup import corpus_profiles

    corpus = corpus_profiles()
    if not corpus:
        return None, "the latency-corpus profiles (hardware_profiles/corpus/) are not installed"
    featurizer = ArchitectureFeaturizer(num_classes)
    known = _corpus_kinds(corpus)
    features = []
    for arch in archs:  # stops at the first network with a kind the corpus lacks
        features.append(featurizer.features(arch))
        unknown = known.uncovered_kinds(features[-1])
        if unknown:
            return None, (
                f"the space's networks hold node kinds no latency-corpus device measured "
                f"({', '.join(sorted(unknown))}); measure at least {FEW_SHOT_BELOW} networks for a direct fit"
            )
    q = prior_matrix([p.latency_model for p in corpus], features)
    return [archs[i] for i in design_few_shot(q, k, seed=seed)], ""


def _coverage_blocks(space, out: Path, num_classes: int, entries: list[dict]) -> list[dict]:
    """One block per node kind the space can produce that no exported network contains, so a profile
    fitted on the bundle covers its space (`nas.latency._space_coverage`)."""
    import hashlib

    from nas.latency._graph import graph_features
    from nas.latency._space_coverage import kind_examples
    from nas.onnx_io import export_onnx

    seen: set[str] = set()
    for entry in entries:
        if entry["kind"] == "network":
            seen.update(graph_features(out / entry["path"]).kinds)
    added = []
    for kind, (build, shape) in kind_examples(space, num_classes).items():
        if kind in seen:
            continue
        module = build()
        key = hashlib.sha256(f"coverage|{kind}|{module}|{shape}".encode()).hexdigest()[:12]
        path = out / "blocks" / f"{key}.onnx"
        features = graph_features(export_onnx(module, shape[-1], fast=True, path=path, input_shape=shape))
        seen.update(features.kinds)
        added.append({"path": str(path.relative_to(out)), "kind": "block", "id": key, "covers": kind})
    return added


def _parts_with_input_shapes(model, resolution: int):
    """(label, module, input shape) of the stem, every block and the head (pool + classifier included)."""
    import torch
    from torch import nn

    parts = [("stem", model.stem)] + [("block", b) for stage in model.stages for b in stage]
    shapes: dict[int, tuple[int, ...]] = {}

    def recorder(key):
        def hook(module, inputs, output) -> None:  # returning None keeps the module's output unchanged
            shapes.setdefault(key, tuple(inputs[0].shape))

        return hook

    hooks = [m.register_forward_hook(recorder(i)) for i, (_, m) in enumerate(parts)]
    hooks.append(model.head.register_forward_hook(recorder("head")))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, resolution, resolution))
    for hook in hooks:
        hook.remove()
    head = nn.Sequential(model.head, model.pool, nn.Flatten(1), model.classifier)
    return [(label, module, shapes[i]) for i, (label, module) in enumerate(parts)] + [
        ("head", head, shapes["head"])
    ]


def bundle_groups(bundle_dir: str | Path) -> list[int]:
    """A group per manifest entry: a network's index for the network and the blocks it introduced
    (`write_bundle` lists each network, then its blocks not seen before), and a group of its own for each
    coverage block; held-out estimates leave a network out with its blocks (`calibrated_with_held_out`)."""
    entries = read_json(Path(bundle_dir) / MANIFEST, "bundle manifest")["models"]
    networks = sum(entry["kind"] == "network" for entry in entries)
    groups, network, extra = [], -1, networks
    for entry in entries:
        if entry["kind"] == "network":
            network += 1
        if entry.get("covers") or network < 0:
            groups.append(extra)
            extra += 1
        else:
            groups.append(network)
    return groups


def bundle_models(bundle_dir: str | Path) -> list[dict]:
    """The manifest's entries, checked: format, entry shape, every file present (before anything is
    written into the bundle)."""
    bundle = Path(bundle_dir)
    manifest_path = bundle / MANIFEST
    if not manifest_path.is_file():
        raise NasError(f"{bundle}: not a calibration bundle (no {MANIFEST})")
    manifest = read_json(manifest_path, "bundle manifest")
    models = manifest.get("models") if isinstance(manifest, dict) else None
    if not isinstance(models, list) or not all(
        isinstance(m, dict) and isinstance(m.get("path"), str) for m in models
    ):
        raise NasError(f"{manifest_path}: models: must be a list of {{path, kind, id}} entries")
    if manifest.get("format") != FORMAT:
        raise NasError(f"{manifest_path}: format {manifest.get('format')!r} is not {FORMAT!r}")
    missing = [m["path"] for m in models if not (bundle / m["path"]).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise NasError(f"{manifest_path}: file missing: {bundle / missing[0]}{more}")
    return models


def bundle_reference(bundle_dir: str | Path) -> str:
    """The manifest path of the bundle's network of median MACs: the reference for paired measurement,
    chosen before measuring, whose kernels resemble the other networks' (a block's would not)."""
    from nas.latency._graph import graph_features

    networks = [m["path"] for m in bundle_models(bundle_dir) if m.get("kind") == "network"]
    if not networks:
        raise NasError(f"{bundle_dir}: the bundle has no whole network to pair the measurements with")
    macs = [graph_features(Path(bundle_dir) / path).total("macs") for path in networks]
    return networks[sorted(range(len(networks)), key=macs.__getitem__)[len(networks) // 2]]


def measure_bundle(
    bundle_dir: str | Path,
    settings: MeasurementSettings = MeasurementSettings(),
    progress: Callable[[int, int], None] = lambda done, total: None,
    *,
    fresh: bool = False,
    reference: str | None = None,
) -> Path:
    """Measure every graph of a bundle; returns the path of measurements.csv.

    With `reference` (a manifest path, e.g. `bundle_reference`), paired: the reference is measured before
    the first graph and after each one, about twice the time. The CSV is rewritten atomically after every
    graph, so a device that is switched off loses nothing: measuring again resumes where it stopped, as
    long as the device, settings and reference are the same (`fresh` starts over). The metadata is written
    first and marked finished at the end.
    """
    import onnxruntime

    bundle = Path(bundle_dir)
    models = bundle_models(bundle)
    if reference is not None and reference not in {m["path"] for m in models}:
        raise NasError(f"reference: {reference!r} is not a graph of the bundle {bundle}")
    available = onnxruntime.get_available_providers()
    if settings.execution_provider not in available:
        raise NasError(
            f"unknown execution provider {settings.execution_provider!r} (this ONNX Runtime has: "
            f"{', '.join(available)})"
        )
    csv_path, meta_path = bundle / "measurements.csv", bundle / "measurements.meta.json"
    signature = machine_signature(settings.execution_provider)
    device = {
        "host": platform.node(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "isa": signature["isa"],
        "cores": signature["cores"],
        "settings": json.loads(json.dumps(settings.__dict__, default=str)),
        "reference": reference,  # None: unpaired
    }
    header = COLUMNS if reference is None else PAIRED_COLUMNS
    rows = {} if fresh else _resumable_rows(csv_path, meta_path, device, header)
    started = time.time()
    manifest = read_json(bundle / MANIFEST, "bundle manifest")
    meta = {
        "bundle": {k: manifest.get(k) for k in ("space", "seed", "networks", "created")},
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **device,
        "finished": False,
    }
    write_atomic(meta_path, json.dumps(meta, indent=2, default=str) + "\n")
    pending = {bundle / m["path"]: m["path"] for m in models if m["path"] not in rows}
    done = len(models) - len(pending)
    if done:
        progress(done, len(models))
    measured = (
        ((path, measure_latency(path, settings), None) for path in pending)
        if reference is None
        else paired_measurements(pending, bundle / reference, settings, measure_latency)
    )
    for path, m, reference_ms in measured:
        row = [pending[path], f"{m.median_ms:.6f}", f"{m.spread:.6f}", str(m.stable)]
        rows[pending[path]] = row if reference_ms is None else row + [f"{reference_ms:.6f}"]
        _write_rows(csv_path, rows, header)
        done += 1
        progress(done, len(models))
    _write_rows(csv_path, rows, header)
    meta.update(finished=True, seconds=round(time.time() - started, 1))
    write_atomic(meta_path, json.dumps(meta, indent=2, default=str) + "\n")
    return csv_path


def _write_rows(csv_path: Path, rows: dict[str, list[str]], header: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows.values())
    write_atomic(csv_path, buffer.getvalue())


def _resumable_rows(csv_path: Path, meta_path: Path, device: dict, header: list[str]) -> dict[str, list[str]]:
    """Rows of an earlier, unfinished measurement of this bundle on the same device, settings and
    reference (rows paired with another reference, or unpaired, are not comparable)."""
    if not (csv_path.is_file() and meta_path.is_file()):
        return {}
    previous = read_json(meta_path, "measurement metadata")
    if previous.get("finished", True) or any(previous.get(k) != v for k, v in device.items()):
        return {}
    with open(csv_path, newline="") as handle:
        found = list(csv.reader(handle))
    if not found or found[0] != header:
        return {}
    return {row[0]: row for row in found[1:] if len(row) == len(header)}
