"""Block tables -> profiles: fit a latency model on a per-block table and write the profile dict.

`import_block_table` serves `nas profile import`; `generate_builtin_profiles` regenerates the shipped
table-fitted profiles (`jetson-tx2`, `raspberry-pi-4`, `pixel-3`: HW-NAS-Bench data in
`hardware_profiles/data/`), each from the source its own YAML records (the table format itself:
`nas.latency._tables`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Iterable

from nas.errors import NasError
from nas.latency._block_samples import block_features, block_table_samples, identity_rows
from nas.latency._tables import (
    UNIQUE_BLOCKS_DEVICES,
    BlockConfig,
    BlockRow,
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


TABLE_FORMATS = ("block_table", "unique_blocks")


def builtin_table_specs(folder: str | Path | None = None) -> dict[str, dict]:
    """What each shipped table-fitted profile was made from, read from the profile files themselves.

    A profile ``<folder>/<name>.yaml`` whose ``measurements.format`` is a block table carries its own
    source: the table, its device column, the description, runtime and provenance texts and the data's
    provenance and license. So a built-in device is one file, and `generate_builtin_profiles` rebuilds
    it from that file and its table alone.
    """
    from nas._resources import builtin_dir
    from nas._yaml import parse_yaml

    folder = Path(folder) if folder is not None else builtin_dir("hardware_profiles")
    columns = {column: device for device, column in UNIQUE_BLOCKS_DEVICES.items()}
    specs = {}
    for path in sorted(folder.glob("*.yaml")):
        data = parse_yaml(path.read_text())
        measurements = data.get("measurements") if isinstance(data, dict) else None
        if not isinstance(measurements, dict) or measurements.get("format") not in TABLE_FORMATS:
            continue
        specs[data["name"]] = dict(
            table=Path(measurements["path"]).name,
            device=columns[measurements["latency_column"]]
            if measurements["format"] == "unique_blocks"
            else None,
            description=data["description"],
            runtime=data["runtime"],
            provenance=data["provenance"],
            data_provenance=measurements.get("provenance", ""),
            license=measurements.get("license", ""),
            energy=_energy_spec(data),
        )
    return specs


def _energy_spec(data: dict) -> dict | None:
    """The energy column and its provenance a profile's ``energy.measurements`` records (None: no energy)."""
    energy = data.get("energy")
    measurements = energy.get("measurements") if isinstance(energy, dict) else None
    if not isinstance(measurements, dict) or not measurements.get("column"):
        return None
    return {"column": measurements["column"], "provenance": measurements.get("provenance", "")}


class _BuiltinSpecs(Mapping):
    """`BUILTIN_PROFILES`: the specs of `builtin_table_specs()`, read on first use."""

    def _specs(self) -> dict[str, dict]:
        if not hasattr(self, "_cache"):
            self._cache = builtin_table_specs()
        return self._cache

    def __getitem__(self, name: str) -> dict:
        return self._specs()[name]

    def __iter__(self):
        return iter(self._specs())

    def __len__(self) -> int:
        return len(self._specs())


BUILTIN_PROFILES: Mapping[str, dict] = _BuiltinSpecs()


def generate_builtin_profiles(
    folder: str | Path | None = None, names: Iterable[str] | None = None
) -> list[Path]:
    """(Re)generate the shipped table-fitted profiles `<folder>/<name>.yaml` from `<folder>/data/*.csv`,
    each from the source it records (`builtin_table_specs`).

    `folder`: default the built-in hardware_profiles folder. Returns the written paths.
    """
    from nas._resources import builtin_dir
    from nas.latency._energy_fit import add_energy_section
    from nas.latency._profiles import write_profile

    folder = Path(folder) if folder is not None else builtin_dir("hardware_profiles")
    specs = builtin_table_specs(folder)
    written = []
    for name in names or specs:
        spec = specs[name]
        profile = import_block_table(
            folder / "data" / spec["table"],
            name,
            spec["description"],
            spec["runtime"],
            spec["provenance"],
            device=spec["device"],
            license=spec["license"],
            data_provenance=spec["data_provenance"],
        )
        if spec.get("energy"):
            profile = add_energy_section(
                profile,
                folder / "data" / spec["table"],
                spec["energy"]["column"],
                provenance=spec["energy"]["provenance"],
                device=spec["device"],
            )
        written.append(write_profile(profile, folder / f"{name}.yaml"))
    return written
