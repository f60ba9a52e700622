"""Hand-designed reference networks, built from the same primitives and macro-structure as the
`mobilenet` space (stem stride 2, four stages with strides 1, 2, 2, 1) at the run's input resolution, and
their evaluation with a run's own recipe, dataset and hardware profile.

`nas baselines RUN_DIR` trains them exactly as the run trained its candidates and writes
`RUN_DIR/baselines.json`, which `nas report` draws next to the Pareto front. Users write that file too:
the command marks its own entries (`generated_by`) and replaces only those, keeping every other entry.
With `export`, each trained baseline is also a model folder `RUN_DIR/baselines/NAME` written as
`nas export` writes a found network, so `nas train` trains both with one recipe and one latency protocol.
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import Any

from nas.blocks import make_divisible
from nas.space import Architecture, BlockSpec, StageSpec

log = logging.getLogger(__name__)

# (stage width, depth, stride, block) per stage; widths are scaled by the width multiplier.
_FAMILIES: dict[str, dict[str, Any]] = {
    "mobilenetv2": {  # inverted residuals, ReLU6, no SE, 3x3
        "stem": (16, "relu6"),
        "head": (512, "relu6"),
        "stages": [
            (16, 1, 1, BlockSpec("mbconv", 3, 1.0, None, False, "relu6")),
            (24, 2, 2, BlockSpec("mbconv", 3, 6.0, None, False, "relu6")),
            (48, 3, 2, BlockSpec("mbconv", 3, 6.0, None, False, "relu6")),
            (96, 2, 1, BlockSpec("mbconv", 3, 6.0, None, False, "relu6")),
        ],
    },
    "mobilenetv3-small": {  # SE + Hardswish in the deeper stages, 5x5 kernels there
        "stem": (16, "hardswish"),
        "head": (512, "hardswish"),
        "stages": [
            (16, 1, 1, BlockSpec("mbconv", 3, 1.0, None, True, "relu")),
            (24, 2, 2, BlockSpec("mbconv", 3, 4.0, None, False, "relu")),
            (40, 3, 2, BlockSpec("mbconv", 5, 6.0, None, True, "hardswish")),
            (96, 2, 1, BlockSpec("mbconv", 5, 6.0, None, True, "hardswish")),
        ],
    },
    "shufflenet": {  # grouped 1x1 bottlenecks with channel shuffle (groups 2), no head conv
        "stem": (24, "relu"),
        "head": (None, "relu"),
        "stages": [
            (24, 1, 1, BlockSpec("shuffle_bottleneck", 3, 1.0, 2, False, "relu")),
            (48, 2, 2, BlockSpec("shuffle_bottleneck", 3, 1.0, 2, False, "relu")),
            (96, 3, 2, BlockSpec("shuffle_bottleneck", 3, 1.0, 2, False, "relu")),
            (192, 2, 1, BlockSpec("shuffle_bottleneck", 3, 1.0, 2, False, "relu")),
        ],
    },
}
WIDTH_MULTIPLIERS = (0.5, 0.75, 1.0)
MAX_WIDTH_MULTIPLIER = 4.0  # 4x the mobilenet widths: already far beyond a lightweight network
GENERATED_BY = "nas baselines"


def check_width_multipliers(width_multipliers) -> tuple[float, ...]:
    """Finite multipliers in (0, MAX_WIDTH_MULTIPLIER]; anything else would name and build a broken network."""
    from nas.errors import NasError

    widths = tuple(width_multipliers)
    if not widths:
        raise NasError("widths: give at least one width multiplier, such as 0.5,1")
    for width in widths:
        if (
            isinstance(width, bool)
            or not isinstance(width, numbers.Real)
            or not math.isfinite(width)
            or not 0 < width <= MAX_WIDTH_MULTIPLIER
        ):
            raise NasError(
                f"widths: a width multiplier must be a number in (0, {MAX_WIDTH_MULTIPLIER:g}], got {width!r}"
            )
    return widths


def hand_designed(width_multipliers=WIDTH_MULTIPLIERS, resolution: int = 32) -> dict[str, Architecture]:
    """`{family}-{multiplier}x` -> Architecture, e.g. `mobilenetv2-0.5x`, for `resolution`-pixel inputs."""
    width_multipliers = check_width_multipliers(width_multipliers)
    nets = {}
    for family, spec in _FAMILIES.items():
        for mult in width_multipliers:
            stem_width, stem_act = spec["stem"]
            head_width, head_act = spec["head"]
            stages = tuple(
                StageSpec(
                    name=f"s{i + 1}",
                    stride=stride,
                    width=make_divisible(width * mult),
                    blocks=(block,) * depth,
                )
                for i, (width, depth, stride, block) in enumerate(spec["stages"])
            )
            nets[f"{family}-{mult:g}x"] = Architecture(
                space=f"baseline:{family}",
                resolution=int(resolution),
                stem_channels=make_divisible(stem_width * mult),
                stem_kernel=3,
                stem_stride=2,
                stem_activation=stem_act,
                stages=stages,
                head_width=make_divisible(head_width * mult) if head_width else None,
                head_activation=head_act,
                dropout=0.1,
            )
    return nets


def evaluate_baselines(
    run_dir,
    width_multipliers=WIDTH_MULTIPLIERS,
    executor=None,
    *,
    export: bool = False,
    export_format: str = "onnx",
) -> list[dict[str, Any]]:
    """Train and measure every baseline as the run did its candidates, at the run's input resolution; write
    RUN_DIR/baselines.json, keeping the entries there that this function did not generate (the user's own
    networks). `export`: also write each as a model folder RUN_DIR/baselines/NAME (its path in `export`),
    with model.tflite too when `export_format` is "tflite"."""
    from pathlib import Path

    from nas._io import read_json, write_json_atomic
    from nas.builder import build_model
    from nas.data import load_dataset
    from nas.errors import NasError
    from nas.evaluate import ProxyTrainer, TrainingRecipe, count_costs
    from nas.export import BASELINES_FOLDER, check_export_format
    from nas.latency import load_profile, local_profile, measure_latency
    from nas.onnx_io import export_onnx
    from nas.search import RayExecutor, latencies_as_the_run, resolve_latency_mode, train_candidate

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        from nas.errors import NasError

        raise NasError(f"{run_dir}: not a nas run directory (not a folder)")
    if export_format != "onnx" and not export:
        raise NasError(f"--format {export_format}: it formats the model folders of --export; add --export")
    check_export_format(export_format)  # the litert extra, before any training
    nets = hand_designed(width_multipliers)
    config = read_json(run_dir / "config.json", "run configuration")
    kept = _entries_to_keep(
        run_dir / "baselines.json", set(nets)
    )  # a broken file is refused before any training
    try:
        search, recipe = config["search"], TrainingRecipe(**config["recipe"])
    except (KeyError, TypeError):
        raise NasError(
            f"{run_dir / 'config.json'}: not the configuration of a nas search with the proxy trainer"
        ) from None
    profile = load_profile(search["profile"])
    mode = resolve_latency_mode(profile, search.get("latency", "auto"))
    if mode == "predicted":  # as the search did: a local profile from another machine is its calibrated copy
        profile = local_profile(profile, calibrate=True)
    dataset = load_dataset(search["dataset"], val_fraction=search["val_fraction"], seed=search["seed"])
    nets = hand_designed(width_multipliers, _input_resolution(config))
    own = executor is None  # on the run's cluster: its device node, if any, measures them
    executor = executor or RayExecutor(workers=search.get("workers"), address=search.get("ray_address"))
    try:
        data = executor.put(dataset)
        handles = {
            executor.submit(train_candidate, ProxyTrainer(recipe), arch, data, search["seed"]): name
            for name, arch in nets.items()
        }
        trained = {}
        while handles:
            handle = executor.wait_one(list(handles))
            trained[handles.pop(handle)] = executor.result(handle)
        # latency after training, nothing else runs now; a device run's from its device (or says why not)
        as_the_run = latencies_as_the_run(run_dir, config, profile, executor, list(nets.values()))
    finally:
        if own:
            executor.close()
    if as_the_run is not None:
        log.warning(as_the_run[1])
    results = []
    for index, (name, arch) in enumerate(nets.items()):
        model = build_model(arch, dataset.num_classes, seed=search["seed"])
        if as_the_run is not None:
            latency, spread = as_the_run[0][index]["latency_ms"], as_the_run[0][index]["latency_spread"]
            source = as_the_run[0][index]["latency_source"]
        elif mode == "predicted":
            onnx_bytes = export_onnx(model, arch.resolution, fast=True)
            latency, spread, source = profile.predict(onnx_bytes).latency_ms, None, mode
        else:
            measured = measure_latency(export_onnx(model, arch.resolution, fast=True), profile.measurement)
            latency, spread, source = measured.median_ms, measured.spread, mode
        costs = count_costs(model, arch.resolution)
        results.append(
            {
                "name": name,
                "accuracy": trained[name].accuracy,
                "latency_ms": latency,
                "latency_source": source,
                "params": costs.params,
                "macs": costs.macs,
                "summary": arch.summary(),
                "architecture": arch.to_dict(),
                "generated_by": GENERATED_BY,
            }
        )
        if export:
            folder = run_dir / BASELINES_FOLDER / name
            exported = (folder, name, arch, trained[name], results[-1], spread, config, profile.name, dataset)
            _export(*exported, run_dir, export_format)
            results[-1]["export"] = str(folder)
    write_json_atomic(run_dir / "baselines.json", kept + results)
    return results


def _input_resolution(config: dict) -> int:
    """The input size of the run's networks: its preprocessing contract's, else the space's largest, else 32."""
    try:
        return int(config["preprocessing"]["input_shape"][-1])
    except (KeyError, TypeError, IndexError, ValueError):
        pass
    try:
        return int(max(config["space"]["resolution"]))
    except (KeyError, TypeError, ValueError):
        return 32


def _export(
    folder, name, arch, result, entry, spread, config, profile_name, dataset, run_dir, export_format
) -> None:
    """A trained baseline as a model folder written as `nas export` writes a found network's."""
    from safetensors.torch import load

    from nas.builder import build_model
    from nas.evaluate import preprocessing_spec
    from nas.export import export_network

    model = build_model(arch, dataset.num_classes)
    model.load_state_dict(load(result.state_dict))  # safetensors bytes, as the search's checkpoints
    preprocessing = config.get("preprocessing") or preprocessing_spec(
        dataset.mean, dataset.std, arch.resolution, dataset.classes
    )
    metrics = {
        "baseline": name,
        "profile": profile_name,
        "dataset": dataset.name,
        "proxy_accuracy": entry["accuracy"],
        "accuracy_objective": "clean validation accuracy",
        "clean_accuracy": entry["accuracy"],
        "latency_ms": entry["latency_ms"],
        "latency_spread": spread,
        "latency_source": entry["latency_source"],
        "params": entry["params"],
        "macs": entry["macs"],
        "training": config.get("recipe"),
    }
    export_network(
        folder,
        model,
        arch,
        dataset.num_classes,
        preprocessing,
        metrics,
        run_dir=run_dir,
        spec={"baseline": name},
        export_format=export_format,
    )


def _entries_to_keep(path, names: set[str]) -> list[Any]:
    """The entries of an existing baselines.json that a new run of this command must keep: all but its own
    (marked `generated_by`; before the mark, recognisable by their `baseline:` architectures) of the names
    it is about to write."""
    from nas._io import read_json
    from nas.errors import NasError

    if not path.exists():
        return []
    entries = read_json(path, "baselines file")
    if not isinstance(entries, list):
        raise NasError(
            f"{path}: must be a JSON list of {{name, accuracy, latency_ms}} objects; fix or move it"
        )

    def generated(entry: Any) -> bool:
        if not isinstance(entry, dict):
            return False
        space = (
            entry.get("architecture", {}).get("space", "")
            if isinstance(entry.get("architecture"), dict)
            else ""
        )
        return entry.get("generated_by") == GENERATED_BY or str(space).startswith("baseline:")

    return [entry for entry in entries if not (generated(entry) and entry.get("name") in names)]
