"""Production metadata as a manifest CSV: `path,label,<any slice columns>` (camera, site, time of day, ...).

Paths are relative to the manifest's folder (or absolute). Slices are the values of each slice column and,
for each `combine` group, the combinations of its columns' values that occur. A column with more than
`MAX_SLICE_VALUES` distinct values (a timestamp, an id) is not sliced unless named in `slice_columns`.
Every check runs before any model does, and each problem is one line naming the file and line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas.data import decode_image
from nas.errors import NasError

REQUIRED_COLUMNS = ("path", "label")
MAX_SLICE_VALUES = 20
MISSING = "(missing)"


@dataclass
class Manifest:
    """The rows of a manifest, their decoded images and label names; `columns` are the metadata columns."""

    path: Path
    columns: tuple[str, ...]
    rows: list[dict]
    images: list = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [r["label"] for r in self.rows]

    def values(self, column: str) -> list[str]:
        return [r[column] or MISSING for r in self.rows]

    def check_column(self, column: str, flag: str) -> str:
        if column not in self.columns:
            known = ", ".join(self.columns) or "none"
            raise NasError(
                f"{flag}: manifest {self.path} has no column {column!r} (columns besides path and label: {known})"
            )
        return column

    def label_indices(self, classes) -> np.ndarray:
        """Labels as indices into `classes`; a label that is not one of them is an error naming its line."""
        index = {c: i for i, c in enumerate(classes)}
        for line, row in enumerate(self.rows, start=2):
            if row["label"] not in index:
                raise NasError(
                    f"{self.path}:{line}: label {row['label']!r} is not a class of the models "
                    f"(classes: {', '.join(classes)})"
                )
        return np.array([index[r["label"]] for r in self.rows], dtype=np.int64)


def read_manifest(path: str | Path, *, decode: bool = True) -> Manifest:
    path = Path(path)
    if not path.is_file():
        raise NasError(
            f"manifest not found: {path}" if not path.exists() else f"manifest {path} is not a file"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise NasError(f"{path}: not a UTF-8 CSV file") from None
    try:
        table = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise NasError(f"{path}: not a readable CSV file ({exc})") from None
    table = [row for row in table if any(cell.strip() for cell in row)]
    if not table:
        raise NasError(f"{path}: empty manifest (expected a header path,label,... and one row per image)")
    header = [h.strip() for h in table[0]]
    for column in REQUIRED_COLUMNS:
        if column not in header:
            raise NasError(
                f"{path}: no {column!r} column in the header {','.join(header)} (need path,label,...)"
            )
    if "" in header:
        raise NasError(f"{path}: column {header.index('') + 1} of the header has no name")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise NasError(f"{path}: column {repeated[0]!r} appears twice in the header")
    if len(table) == 1:
        raise NasError(f"{path}: the manifest has a header but no rows")
    rows, seen = [], {}
    for line, cells in enumerate(table[1:], start=2):
        if len(cells) != len(header):
            raise NasError(f"{path}:{line}: {len(cells)} fields where the header has {len(header)}")
        row = {h: c.strip() for h, c in zip(header, cells)}
        if not row["path"] or not row["label"]:
            raise NasError(f"{path}:{line}: empty {'path' if not row['path'] else 'label'}")
        if row["path"] in seen:
            raise NasError(
                f"{path}:{line}: duplicate row: {row['path']!r} is already on line {seen[row['path']]}"
            )
        seen[row["path"]] = line
        image = (path.parent / row["path"]).expanduser()
        if not image.is_file():
            raise NasError(f"{path}:{line}: image not found: {row['path']}")
        row["file"] = image
        rows.append(row)
    columns = tuple(h for h in header if h not in REQUIRED_COLUMNS)
    manifest = Manifest(path, columns, rows)
    if decode:
        manifest.images = [
            decode_image(r["file"], f"{path}:{line} ({r['path']})") for line, r in enumerate(rows, 2)
        ]
    return manifest


def manifest_slices(
    manifest: Manifest, slice_columns=None, combine=(), exclude=()
) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """[(slice name, row indices)] for each column value and combination, and the columns left unsliced (why).

    `slice_columns`: the columns to slice by (default: every metadata column with at most
    `MAX_SLICE_VALUES` values, except `exclude`); `combine`: groups of columns whose value combinations
    are slices too ("camera=a & site=x").
    """
    skipped = []
    if slice_columns is None:
        chosen = []
        for column in manifest.columns:
            distinct = len(set(manifest.values(column)))
            if column in exclude:
                continue
            if distinct > MAX_SLICE_VALUES:
                skipped.append(
                    f"{column}: {distinct} distinct values (name it in --slice-columns to slice by it)"
                )
            else:
                chosen.append(column)
    else:
        chosen = [manifest.check_column(c, "--slice-columns") for c in slice_columns]
    groups = [tuple(manifest.check_column(c, "--combine") for c in group) for group in combine]
    for group in groups:
        if len(group) < 2 or len(set(group)) != len(group):
            raise NasError(f"--combine: give two or more different columns, got {','.join(group)}")
    slices = []
    for group in [(c,) for c in chosen] + groups:
        keys = list(zip(*(manifest.values(c) for c in group)))
        for combo in sorted(set(keys)):
            name = " & ".join(f"{c}={v}" for c, v in zip(group, combo))
            slices.append((name, np.array([i for i, k in enumerate(keys) if k == combo], dtype=np.int64)))
    return slices, skipped


def parse_combine(texts) -> list[tuple[str, ...]]:
    return [tuple(p.strip() for p in text.split(",") if p.strip()) for text in texts or ()]


__all__ = ["Manifest", "manifest_slices", "parse_combine", "read_manifest"]
