"""nas.latency tables: block-table schema errors with line numbers, the shipped HW-NAS-Bench CSVs, samples."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from nas._resources import builtin_dir
from nas.errors import NasError
from nas.latency import (
    block_features,
    block_table_samples,
    import_block_table,
    read_block_table,
    read_unique_blocks_table,
)

DATA = builtin_dir("hardware_profiles") / "data"
TX2 = DATA / "jetson-tx2_fbnet_blocks.csv"
RPI = DATA / "raspberry-pi-4_fbnet_blocks.csv"
UNIQUE = DATA / "hwnasbench_fbnet_unique_blocks_all_devices.csv"

HEADER = "block,kernel,expansion,groups,stride,c_in,c_out,h_in,w_in,latency_ms\n"
GOOD_ROWS = [
    "stem_conv3x3,3,,1,1,3,16,8,8,0.30",
    "k3_e1,3,1,1,1,16,16,8,8,0.61",
    "k5_e3_g2,5,3,2,2,16,24,8,8,1.10",
    "skip,,,,1,16,16,8,8,0.01",
    "skip(conv1x1_proj),,,,2,16,24,8,8,0.20",
    "head_conv1x1,1,,1,1,24,64,4,4,0.50",
    "global_avgpool,4,,,1,64,64,4,4,0.03",
    "fc,,,,,64,10,,,0.05",
]


def write(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "table.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    return path


def error(path: Path) -> str:
    with pytest.raises(NasError) as info:
        read_block_table(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_good_table_reads(tmp_path):
    rows = read_block_table(write(tmp_path, GOOD_ROWS))
    assert [r.line for r in rows] == list(range(2, 10))
    assert [r.config.block for r in rows] == [
        "stem_conv3x3",
        "conv_block",
        "conv_block",
        "skip",
        "skip",
        "head_conv1x1",
        "avgpool",
        "classifier",
    ]
    assert (
        rows[2].config.kernel,
        rows[2].config.expansion,
        rows[2].config.groups,
        rows[2].config.stride,
    ) == (5, 3.0, 2, 2)
    assert (rows[7].config.h_in, rows[7].config.w_in) == (1, 1)


def test_missing_column(tmp_path):
    path = write(tmp_path, ["k3_e1,3,1,1,1,16,16,8,8"], header=HEADER.replace(",latency_ms", ""))
    assert "table.csv:1: missing required column(s): latency_ms" in error(path)


@pytest.mark.parametrize(
    "bad, expected",
    [
        ("k3_e1,3,1,1,1,16,16,8,8,fast", "latency_ms: latency is not a number: 'fast'"),
        ("k3_e1,3,1,1,1,16,16,8,8,-0.5", "latency_ms: latency must be >= 0, got '-0.5'"),
        ("k3_e1,3,1,1,1,16,16,8,8,nan", "latency_ms: latency must be a finite number, got 'nan'"),
        ("k3_e1,3,1,1,1,16,16,8,8,", "latency_ms: missing latency"),
        ("k7_e9_x,3,1,1,1,16,16,8,8,1.0", "block: unknown block 'k7_e9_x'"),
        ("k3_e1,5,1,1,1,16,16,8,8,1.0", "kernel: 5 does not match block 'k3_e1'"),
        ("k3_e1,3,1,1,1,sixteen,16,8,8,1.0", "c_in: not a number: 'sixteen'"),
        ("k3_e1_g2,3,1,2,1,15,16,8,8,1.0", "groups: 2 groups do not divide c_in 15"),
        ("head_conv1x1,1,,1,1,24,64,,4,0.5", "h_in: missing value"),
    ],
)
def test_row_errors_name_file_line_and_column(tmp_path, bad, expected):
    path = write(tmp_path, GOOD_ROWS[:2] + [bad] + GOOD_ROWS[2:])
    message = error(path)
    assert "table.csv:4: data row 3: " in message, message  # header is line 1
    assert expected in message, message


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(NasError, match="latency table not found"):
        read_block_table(tmp_path / "nope.csv")
    assert "no data rows" in error(write(tmp_path, [], header=HEADER))


def test_shipped_per_device_tables_parse():
    for path in (TX2, RPI):
        rows = read_block_table(path)
        assert len(rows) == 404
        assert {r.dataset for r in rows} == {"cifar100", "ImageNet"}
        by_layer = {r.layer_index: r.config.block for r in rows if r.dataset == "cifar100"}
        assert (by_layer[-1], by_layer[22], by_layer[23], by_layer[24]) == (
            "stem_conv3x3",
            "head_conv1x1",
            "avgpool",
            "classifier",
        )
    tx2 = read_block_table(TX2)
    # The README's check: the all-k3_e1 cifar100 network sums to 15.804523468017578 ms on the TX2.
    k3 = [
        r.latency_ms
        for r in tx2
        if r.dataset == "cifar100" and (r.block == "k3_e1" or r.layer_index in (-1, 22, 23, 24))
    ]
    assert len(k3) == 26 and math.isclose(sum(k3), 15.804523468017578, rel_tol=1e-12)


def test_unique_blocks_table_converts():
    rows = read_unique_blocks_table(UNIQUE, "pixel3")
    assert len(rows) == 225
    first = rows[0]
    assert (first.block, first.config.h_in, first.config.c_in, first.latency_ms) == ("k3_e1", 112, 16, 2.3581)
    assert {r.config.block for r in rows} == {
        "conv_block",
        "skip",
        "stem_conv3x3",
        "head_conv1x1",
        "avgpool",
        "classifier",
    }
    # The same configurations as the per-device table, with the same Raspberry Pi 4 numbers.
    rpi = {r.config: r.latency_ms for r in read_block_table(RPI)}
    raspi = {r.config: r.latency_ms for r in read_unique_blocks_table(UNIQUE, "raspi4")}
    assert all(raspi[c] == pytest.approx(latency) for c, latency in rpi.items())
    with pytest.raises(NasError, match="unknown device 'eyeriss'.*simulator"):
        read_unique_blocks_table(UNIQUE, "eyeriss")


def test_samples_one_per_configuration_without_zero_or_identity_rows():
    rows = [
        r
        for r in read_block_table(TX2)
        if r.dataset == "cifar100" and r.layer_index in (-1, 0, 2, 3, 22, 23, 24)
    ]
    samples = block_table_samples(rows)
    configs = {r.config for r in rows if r.latency_ms > 0}
    assert len(rows) == 4 + 3 * 9 and len(configs) == 4 + 2 * 8  # layers 2 and 3 share configurations
    assert len(samples) == len(
        configs
    )  # one per configuration; the TX2 identity skips (latency 0) are left out
    assert all(latency > 0 and features.kinds for features, latency in samples)
    with pytest.raises(NasError, match="no measured rows with dataset 'ImageNet'"):
        block_table_samples(rows, dataset="ImageNet")
    rpi = [r for r in read_block_table(RPI) if r.dataset == "cifar100" and r.layer_index == 2]
    assert any(r.block == "skip" and r.latency_ms > 0 for r in rpi)
    assert len(block_table_samples(rpi)) == len(rpi) - 1  # the identity skip is left out


def test_block_features_match_the_block():
    rows = [r for r in read_block_table(TX2) if r.dataset == "cifar100"]
    k3 = next(r for r in rows if r.block == "k3_e1_g2" and r.layer_index == 0).config  # 16 -> 16, 32x32
    f = block_features(k3)
    assert set(f.kinds) == {"conv_grouped_l", "conv_depthwise_k3_l", "activation_relu", "memory", "add"}
    assert f.get("conv_depthwise_k3_l", "macs") == 16 * 32 * 32 * 9
    assert f.get("conv_grouped_l", "macs") == 2 * 16 * 32 * 32 * 8
    fc = next(r for r in rows if r.layer_index == 24).config
    assert block_features(fc).get("gemm", "macs") == 1504 * 100
    assert block_features(k3) is f  # cached


def test_import_block_table_on_a_small_table(tmp_path):
    rows = [
        r
        for r in read_block_table(TX2)
        if r.dataset == "cifar100" and r.layer_index in (-1, 0, 1, 5, 9, 22, 23, 24)
    ]
    lines = [
        f"{r.block},{r.config.kernel},{r.config.expansion},{r.config.groups},{r.config.stride},{r.config.c_in},"
        f"{r.config.c_out},{r.config.h_in},{r.config.w_in},{r.latency_ms!r}"
        for r in rows
    ]
    path = write(tmp_path, lines)
    profile = import_block_table(path, "tiny-tx2", "a test", {"engine": "tensorrt"}, "a test", folds=3)
    assert profile["latency"] == "predicted" and profile["measurements"]["path"] == str(path.resolve())
    assert (
        profile["validation"]["n"] == len({r.config for r in rows if r.latency_ms > 0})
        and profile["validation"]["folds"] == 3
    )
    assert profile["model"]["overhead_ms"] >= 0
    with pytest.raises(NasError, match="device is only for a unique-blocks table"):
        import_block_table(path, "x", "x", {"engine": "x"}, "", device="pixel3")
