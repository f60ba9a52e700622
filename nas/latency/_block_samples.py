"""Block-table rows -> (GraphFeatures, latency) samples: what a latency model is fitted on.

`block_table_samples` groups rows by block configuration (block, kernel, expansion, groups, stride,
c_in, c_out, h_in, w_in): layers of the same configuration share one measured entry in HW-NAS-Bench,
so each configuration is ONE sample (repeated measurements of one configuration are averaged), which
also keeps duplicates from leaking between cross-validation folds. Left out:

* rows with latency 0 (the source's convention for an identity skip it did not run): not measurements;
* identity blocks (``skip`` with stride 1 and c_in == c_out): they have no computing node, so their
  features are all zero and only the overhead could "explain" them. Inside a network an identity layer
  exports to no node at all and costs nothing; on its own it was measured as an empty graph that copies
  its input (Raspberry Pi 4: 0.005-0.27 ms, Pixel 3: 0.0006-0.08 ms), which is not the cost it has in a
  network. `identity_rows` counts them so reports can say so. Each
configuration is built with `nas.blocks`, exported with ``export_onnx(fast=True)`` and featurized
with `graph_features`; features are cached by configuration for the life of the process.
"""

from __future__ import annotations

from nas.errors import NasError
from nas.latency._features import GraphFeatures
from nas.latency._graph import graph_features
from nas.latency._tables import BlockConfig, BlockRow

_FEATURE_CACHE: dict[BlockConfig, GraphFeatures] = {}


def build_block_module(config: BlockConfig):
    """The torch module a configuration was measured as, and its input shape."""
    from torch import nn

    from nas.blocks import build_block, conv_bn
    from nas.space import BlockSpec

    shape = (1, config.c_in, config.h_in, config.w_in)
    if config.block == "conv_block":
        spec = BlockSpec(
            "shuffle_bottleneck",
            kernel=config.kernel,
            expansion=config.expansion,
            groups=config.groups,
            se=False,
            activation="relu",
        )
        module = build_block(spec, config.c_in, config.c_out, config.stride)
    elif config.block == "skip":
        module = build_block(BlockSpec("skip"), config.c_in, config.c_out, config.stride)
    elif config.block == "stem_conv3x3":
        module = conv_bn(config.c_in, config.c_out, config.kernel, config.stride, act="relu")
    elif config.block == "head_conv1x1":
        module = conv_bn(config.c_in, config.c_out, 1, config.stride, act="relu")
    elif config.block == "avgpool":
        module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    elif config.block == "classifier":
        module = nn.Linear(config.c_in, config.c_out)
        shape = (1, config.c_in)
    else:  # pragma: no cover - BlockConfig is only made by _config
        raise ValueError(f"unknown block {config.block!r}")
    return module, shape


def block_features(config: BlockConfig) -> GraphFeatures:
    """The `GraphFeatures` of one block configuration (built, exported with the fast exporter, cached)."""
    cached = _FEATURE_CACHE.get(config)
    if cached is None:
        from nas.onnx_io import export_onnx

        module, shape = build_block_module(config)
        cached = graph_features(export_onnx(module, 0, fast=True, input_shape=shape))
        _FEATURE_CACHE[config] = cached
    return cached


def identity_rows(rows: list[BlockRow], dataset: str | None = None) -> int:
    """How many rows (with a positive latency) are identity blocks that `block_table_samples` leaves out."""
    return sum(
        1
        for row in rows
        if (dataset is None or row.dataset == dataset)
        and row.latency_ms > 0
        and row.config.block == "skip"
        and row.config.stride == 1
        and row.config.c_in == row.config.c_out
    )


def block_table_samples(
    rows: list[BlockRow], dataset: str | None = None
) -> list[tuple[GraphFeatures, float]]:
    """One (features, latency_ms) sample per block configuration (see the module docstring).

    `dataset`: keep only rows of that ``dataset`` column value ("cifar100", "ImageNet"); None (the
    default) keeps every row: both settings of HW-NAS-Bench are real measurements.
    """
    groups: dict[BlockConfig, list[float]] = {}
    for row in rows:
        if dataset is not None and row.dataset != dataset:
            continue
        if row.latency_ms <= 0:
            continue  # HW-NAS-Bench writes 0 for an identity it did not run: not a measurement
        groups.setdefault(row.config, []).append(row.latency_ms)
    if not groups:
        where = f" with dataset {dataset!r}" if dataset is not None else ""
        raise NasError(f"no measured rows{where} in the latency table")
    samples = []
    for config, values in groups.items():
        features = block_features(config)
        if not features.kinds:
            continue  # an identity: no computing node (see the module docstring)
        samples.append((features, sum(values) / len(values)))
    if not samples:
        raise NasError("the latency table has no measured block with a computing node")
    return samples
