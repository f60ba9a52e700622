"""Block tables -> profiles: fit a latency model on a per-block table and write the profile dict.

`import_block_table` serves `nas profile import`; `generate_builtin_profiles` regenerates the shipped
`jetson-tx2`, `raspberry-pi-4` and `pixel-3` profiles from the HW-NAS-Bench data in
`hardware_profiles/data/` (the table format itself: `nas.latency._tables`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from nas.errors import NasError
from nas.latency._tables import (
    UNIQUE_BLOCKS_DEVICES,
    BlockConfig,
    BlockRow,
    block_features,
    block_table_samples,
    identity_rows,
    read_block_table,
    read_unique_blocks_table,
    table_format,
)


def _searchable(config: BlockConfig) -> bool:
    return config.block in ("conv_block", "skip")


def import_block_table(
    table_path: str | Path,
    name: str,
    description: str,
    runtime: dict,
    provenance: str,
    *,
    device: str | None = None,
    license: str = "",
    data_provenance: str = "",
    dataset: str | None = None,
    folds: int = 5,
    seed: int = 0,
    prior_reference: str | None = "x86-cpu",
) -> dict:
    """A ``latency: predicted`` profile dict from a measured block table (write it with `write_profile`).

    `table_path`: a block table (schema in the module docstring) or, with `device` ("pixel3",
    "raspi4", "edgegpu"), HW-NAS-Bench's unique-blocks file. The model is fitted on every measured
    configuration (`block_table_samples`; `dataset` restricts the rows); ``validation`` is the
    `folds`-fold cross-validated error on the same data, over all configurations and over the
    searchable blocks only (the blocks a search chooses between); ``coverage``, ``interval`` and
    ``prior`` (from `prior_reference`) as `nas.latency._calibrate.fit_sections` makes them.
    ``measurements.path`` is absolute here; `write_profile` makes it relative to the profile file.
    """
    from nas.latency._calibrate import fit_sections
    from nas.latency._model import error_metrics, fit_latency_model

    path = Path(table_path).resolve()
    fmt = table_format(path)
    if fmt == "unique_blocks":
        if device is None:
            raise NasError(
                f"{path}: a unique-blocks table has one latency column per device; choose one with "
                f"device ({', '.join(UNIQUE_BLOCKS_DEVICES)})"
            )
        rows = read_unique_blocks_table(path, device)
        column = UNIQUE_BLOCKS_DEVICES[device]
    else:
        if device is not None:
            raise NasError(f"{path}: device is only for a unique-blocks table; this is a block table")
        rows = read_block_table(path)
        column = "latency_ms"
    selected = [r for r in rows if dataset is None or r.dataset == dataset]
    samples = block_table_samples(rows, dataset)
    configs = _sample_configs(rows, dataset)
    model = fit_latency_model(samples)
    zero_rows = sum(1 for r in selected if r.latency_ms == 0)
    datasets = sorted({r.dataset for r in selected if r.dataset})
    data = (
        f"{folds}-fold cross-validation (seed {seed}) over the {len(samples)} measured block configurations "
        f"of {path.name}"
        + (f" (rows of {', '.join(datasets)})" if datasets else "")
        + f"; one sample per configuration; left out: {zero_rows} rows with latency 0 and "
        f"{identity_rows(rows, dataset)} identity-skip rows (no computing node). Relative error of each "
        "held-out block measured on its own, overhead included."
    )
    validation, sections, predicted = fit_sections(samples, model, folds, seed, data, prior_reference)
    measured = [latency for _, latency in samples]
    searchable = [i for i, config in enumerate(configs) if _searchable(config)]
    validation["searchable_blocks"] = (
        error_metrics(predicted[searchable], [measured[i] for i in searchable])
        if len(searchable) >= 2
        else None
    )
    return {
        "name": name,
        "description": description,
        "latency": "predicted",
        "runtime": dict(runtime),
        "provenance": provenance,
        "model": model.to_dict(),
        "validation": validation,
        "measurements": {
            "path": str(path),
            "format": fmt,
            "latency_column": column,
            "rows": len(rows),
            "provenance": data_provenance,
            "license": license,
        },
        **sections,
    }


def _sample_configs(rows: list[BlockRow], dataset: str | None) -> list[BlockConfig]:
    """The configurations of `block_table_samples(rows, dataset)`, in the same order."""
    seen: dict[BlockConfig, None] = {}
    for row in rows:
        if (dataset is None or row.dataset == dataset) and row.latency_ms > 0:
            seen.setdefault(row.config, None)
    return [c for c in seen if block_features(c).kinds]


_HWNASBENCH = (
    "HW-NAS-Bench (Li et al., 'HW-NAS-Bench: Hardware-Aware Neural Architecture Search Benchmark', "
    "ICLR 2021, arXiv:2103.10584), repository GATECH-EIC/HW-NAS-Bench"
)
_FIT = (
    "The model (per-operator-kind non-negative linear costs plus one per-inference overhead, fitted by "
    "relative-error NNLS; nas/latency/_model.py) was fitted by nas.latency.import_block_table on every "
    "measured block configuration of the table; validation is its 5-fold cross-validated error. A network's "
    "latency is predicted from its ONNX graph with the overhead counted once, not once per block."
)

BUILTIN_PROFILES = {
    "jetson-tx2": dict(
        table="jetson-tx2_fbnet_blocks.csv",
        device=None,
        description="NVIDIA Jetson TX2 (edge GPU), TensorRT, batch 1: latency predicted from HW-NAS-Bench's "
        "measured FBNet block table",
        runtime={
            "engine": "tensorrt",
            "converter": "torch2trt (PyTorch -> TensorRT)",
            "device": "NVIDIA Jetson TX2",
            "batch_size": 1,
            "timing": "mean of 50 runs after a 3 s warm-up",
        },
        provenance="Block latencies measured on a Jetson TX2 by "
        + _HWNASBENCH
        + ": PyTorch blocks converted to "
        "TensorRT with torch2trt, batch 1, 3 s warm-up, mean of 50 runs. Every block was measured on its "
        "own and sits on a floor of about 0.45-0.55 ms (per-engine launch overhead), so the sum of a "
        "network's blocks overestimates it; the model learns that fixed cost once as overhead_ms. " + _FIT,
        data_provenance="HW-NAS-Bench FBNet lookup table for the Jetson TX2 (edge GPU), cifar100 and ImageNet "
        "settings, 404 rows, passed through unchanged; see data/README.md",
    ),
    "raspberry-pi-4": dict(
        table="raspberry-pi-4_fbnet_blocks.csv",
        device=None,
        description="Raspberry Pi 4 (ARM Cortex-A72 CPU), batch 1: latency predicted from HW-NAS-Bench's "
        "measured FBNet block table",
        runtime={
            "engine": "unverified (the source repository has no measuring script)",
            "device": "Raspberry Pi 4, ARM Cortex-A72 CPU",
            "batch_size": 1,
        },
        provenance="Block latencies measured on a Raspberry Pi 4 by "
        + _HWNASBENCH
        + ", batch 1, each block on its "
        "own. The source repository has no measuring script, so the framework is not verified. " + _FIT,
        data_provenance="HW-NAS-Bench FBNet lookup table for the Raspberry Pi 4, cifar100 and ImageNet settings, "
        "404 rows, passed through unchanged; see data/README.md",
    ),
    "pixel-3": dict(
        table="hwnasbench_fbnet_unique_blocks_all_devices.csv",
        device="pixel3",
        description="Google Pixel 3, batch 1: latency predicted from HW-NAS-Bench's measured FBNet unique-block "
        "latencies (pixel3_latency_ms)",
        runtime={"engine": "not stated in the data source", "device": "Google Pixel 3", "batch_size": 1},
        provenance="Block latencies measured on a Pixel 3 by "
        + _HWNASBENCH
        + " (column pixel3_latency_ms of the "
        "unique-blocks file; the Eyeriss and FPGA columns are simulator estimates and are not used), "
        "batch 1, each block on its own. How the Pixel 3 ran the blocks is not stated in the data source. "
        + _FIT,
        data_provenance="HW-NAS-Bench FBNet unique block configurations with every metric of the source (225 rows), "
        "passed through unchanged; only the measured Pixel 3 column is used; see data/README.md",
    ),
}


def generate_builtin_profiles(
    folder: str | Path | None = None, names: Iterable[str] | None = None
) -> list[Path]:
    """(Re)generate the shipped predicted profiles `<folder>/<name>.yaml` from `<folder>/data/*.csv`.

    `folder`: default the built-in hardware_profiles folder. Returns the written paths.
    """
    from nas._resources import builtin_dir
    from nas.latency._profiles import write_profile

    folder = Path(folder) if folder is not None else builtin_dir("hardware_profiles")
    written = []
    for name in names or BUILTIN_PROFILES:
        spec = BUILTIN_PROFILES[name]
        profile = import_block_table(
            folder / "data" / spec["table"],
            name,
            spec["description"],
            spec["runtime"],
            spec["provenance"],
            device=spec["device"],
            license="MIT (HW-NAS-Bench repository GATECH-EIC/HW-NAS-Bench)",
            data_provenance=spec["data_provenance"],
        )
        written.append(write_profile(profile, folder / f"{name}.yaml"))
    return written
