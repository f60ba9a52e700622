"""Manifest CSVs: slices by column values and their combinations, high-cardinality columns left unsliced."""

from __future__ import annotations

import numpy as np
from PIL import Image

from nas.validate import manifest_slices, read_manifest


def _manifest(tmp_path, rows: list[str], header="path,label,camera,site,id"):
    (tmp_path / "img").mkdir(exist_ok=True)
    for i in range(len(rows)):
        Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(tmp_path / "img" / f"{i}.png")
    lines = [header] + [f"img/{i}.png,{row}" for i, row in enumerate(rows)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "m.csv"


def test_slices_by_value_and_combination(tmp_path):
    rows = [f"red,c{i % 2},s{i % 3},{i}" for i in range(30)] + ["green,c1,,30"]
    manifest = read_manifest(_manifest(tmp_path, rows))
    assert manifest.columns == ("camera", "site", "id") and len(manifest.images) == 31
    assert manifest.images[3].shape == (4, 4, 3)
    slices, skipped = manifest_slices(manifest, combine=[("camera", "site")])
    names = dict(slices)
    assert len(names["camera=c0"]) == 15 and len(names["camera=c1"]) == 16
    assert len(names["site=(missing)"]) == 1  # an empty cell is a value of its own
    assert "camera=c0 & site=s0" in names and len(names["camera=c0 & site=s0"]) == 5
    assert not any(n.startswith("id=") for n in names) and skipped[0].startswith("id: 31 distinct values")
    chosen, _ = manifest_slices(manifest, slice_columns=("id",))
    assert len(chosen) == 31  # named explicitly: sliced however many values it has
    assert manifest.label_indices(("green", "red")).tolist() == [1] * 30 + [0]
