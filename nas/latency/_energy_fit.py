"""Fitting a profile's ``energy`` section from a block table's energy column (the format:
`nas.latency._energy`), exactly as its latency model is fitted from the latency column."""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import NasError
from nas.latency._block_samples import block_table_samples
from nas.latency._calibrate import fit_sections
from nas.latency._coverage import Coverage
from nas.latency._energy import EnergySection, Power
from nas.latency._model import fit_latency_model
from nas.latency._prediction import Interval, conformal_interval
from nas.latency._tables import read_block_table, read_unique_blocks_table


def add_energy_section(
    profile: dict, table_path: str | Path, column: str, *, provenance: str = "", device: str | None = None
) -> dict:
    """`profile` (an `import_block_table` dict) with an ``energy`` section fitted on the table's energy
    `column` (`device`: the unique-blocks file's device, as for its latency)."""
    path = Path(table_path).resolve()
    rows = read_unique_blocks_table(path, device) if device is not None else read_block_table(path)
    section = energy_section(
        rows, table_energies(path, column), source=path.name, column=column, provenance=provenance
    )
    return {**profile, "energy": section}


def energy_section(
    rows: list,
    energies: dict[int, float],
    *,
    source: str,
    column: str,
    provenance: str = "",
    dataset: str | None = None,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """The ``energy`` section dict from block-table rows and each row's measured energy (by line).

    Rows without an energy value, or with energy or latency 0 (the source's identity skips), are left
    out; one sample per block configuration, as for latency."""
    measured = [r for r in rows if r.line in energies and energies[r.line] > 0 and r.latency_ms > 0]
    if len(measured) < 2:
        raise NasError(f"{source}: {column}: fewer than 2 rows with a positive energy")
    as_energy = [dataclasses.replace(r, latency_ms=energies[r.line]) for r in measured]
    samples = block_table_samples(as_energy, dataset)
    # the same rows, so the same configurations in the same order: one power per configuration
    latency = block_table_samples(measured, dataset)
    watts = np.array([e / t for (_, e), (_, t) in zip(samples, latency, strict=True)])
    model = fit_latency_model(samples)
    data = (
        f"{folds}-fold cross-validation (seed {seed}) over the {len(samples)} block configurations of "
        f"{source} with a measured {column}; one sample per configuration. Relative error of each held-out "
        "block's energy, measured on its own, overhead included."
    )
    validation, sections, _ = fit_sections(samples, model, folds, seed, data, prior_reference=None)
    median = float(np.median(watts))
    spread = conformal_interval(watts / median)
    power = Power(
        median=median,
        low=median * spread.low,
        high=median * spread.high,
        level=spread.level,
        n=len(watts),
        data=f"{column} / latency_ms of the same {len(watts)} block configurations",
    )
    return EnergySection(
        model=model,
        coverage=Coverage.from_dict(sections["coverage"]),
        interval=Interval.from_dict(sections["interval"]),
        power=power,
        validation=validation,
        measurements={
            "column": column,
            "rows": len(measured),
            "units": "millijoules per image, batch 1",
            "provenance": provenance,
        },
    ).to_dict()


def table_energies(path: str | Path, column: str) -> dict[int, float]:
    """Each data line's energy in `column` of a CSV table (line numbers as `BlockRow.line`); an empty
    cell is no measurement. A missing column or a value that is not a finite number >= 0 is a
    `NasError` naming the file, the line and the column."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if column not in (reader.fieldnames or []):
                raise NasError(f"{path}:1: no energy column {column!r}")
            out = {}
            for values in reader:
                text = (values.get(column) or "").strip()
                if text == "":
                    continue
                try:
                    value = float(text)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value) or value < 0:
                    raise NasError(
                        f"{path}:{reader.line_num}: {column}: must be a finite number of millijoules >= 0, "
                        f"got {text!r}"
                    )
                out[reader.line_num] = value
    except FileNotFoundError:
        raise NasError(f"latency table not found: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise NasError(f"{path}: cannot read the table: {error}") from None
    return out
