"""The prior: prices for the node kinds a device never measured, learnt from reference devices that did.

See `nas.latency._prediction` for how a prediction uses it. A kind only the main reference (the local
x86 CPU, whose bundle measures every kind a built-in space produces) measured costs its price there
times one device-level scale; a kind that several references measured (the x86 CPU and the
latency-corpus devices) costs a non-negative combination of their prices, fitted on what the device and
all of them measured, so a GPU board is priced by the devices it resembles rather than by a CPU.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from nas.errors import NasError
from nas.latency._coverage import Coverage
from nas.latency._features import GraphFeatures
from nas.latency._model import LatencyModel
from nas.latency._prediction import LEVEL, Prior, _matrix, conformal_interval

# A device that measured kinds, as a source of prices: (name, model, coverage).
Reference = tuple[str, LatencyModel, Coverage]


def fit_prior(
    device: LatencyModel,
    device_coverage: Coverage,
    samples: Sequence[tuple[GraphFeatures, float]],
    reference: LatencyModel,
    reference_coverage: Coverage,
    reference_name: str,
    level: float = LEVEL,
    also: Sequence[Reference] = (),
) -> Prior | None:
    """The prior for the kinds `device_coverage` lacks and a reference has (see the module docstring);
    None when no reference adds a kind. `samples`: the (features, latency) the device model was fitted on.
    `also`: more reference devices (the latency-corpus devices), after the main one.

    A kind only the main reference measured costs its price there times the scale, the median
    device/reference ratio over the fitted graphs on the kinds both measured. A kind several references
    measured costs a non-negative combination of their prices, fitted on the kinds the device and all of
    them measured (`_combination`): a device is priced by the devices it resembles. The interval comes
    from hiding what the device did measure (`hidden_family_ratios`, same method): for each family of
    kinds, the model and prices are refitted without the graphs that use it, and those graphs'
    extrapolated part is compared with what the measurement leaves for it. With too few such graphs, the
    spread of the per-graph ratios stands in (narrower: it sees no unmeasured kind)."""
    references = [(reference_name, reference, reference_coverage), *also]
    extra = sorted(
        {k for _, _, coverage in references for k in coverage.kinds if not device_coverage.covers(k)}
    )
    if not extra:
        return None
    graphs = [g for g, _ in samples]
    scale = _scale(device, graphs, reference, reference_coverage)
    if scale is None:
        raise NasError(
            f"cannot learn a scale from the reference {reference_name!r}: fewer than 2 graphs that both "
            "devices price"
        )
    weights, combinations = _prices(device, graphs, references, extra)
    hidden = hidden_family_ratios(samples, reference, reference_coverage, also)
    if len(hidden) >= 10:
        spread = conformal_interval(
            hidden,
            level,
            f"measured/predicted of the extrapolated part of {len(hidden)} "
            "graphs, each predicted with one family of its kinds hidden",
        )
    else:
        ratios = _ratios(device, graphs, reference, reference_coverage)
        spread = conformal_interval(
            np.asarray(ratios) / scale,
            level,
            f"device/reference time ratio over {len(ratios)} fitted graphs, relative to the "
            "scale (too few graphs to hide a family of kinds)",
        )
    # the point estimate stays inside its own interval, even where hidden families were all cheaper (or
    # dearer) than priced: the prices come from every graph, the spread from the hidden ones
    spread = replace(spread, low=min(spread.low, 1.0), high=max(spread.high, 1.0))
    return Prior(
        reference=reference_name,
        scale=scale,
        interval=spread,
        weights=weights,
        combinations=tuple(combinations),
    )


def _ratios(
    device: LatencyModel,
    graphs: Sequence[GraphFeatures],
    reference: LatencyModel,
    reference_coverage: Coverage,
) -> list[float]:
    """Per graph: device time / reference time over the kinds the reference measured (overheads out)."""
    ratios = []
    for graph in graphs:
        mine, theirs = device.breakdown(graph), reference.breakdown(graph)
        shared = [kind for kind in graph.kinds if reference_coverage.covers(kind)]
        mine_ms, theirs_ms = sum(mine.get(k, 0.0) for k in shared), sum(theirs.get(k, 0.0) for k in shared)
        if mine_ms > 0 and theirs_ms > 0:
            ratios.append(mine_ms / theirs_ms)
    return ratios


def _scale(
    device: LatencyModel, graphs, reference: LatencyModel, reference_coverage: Coverage
) -> float | None:
    ratios = _ratios(device, graphs, reference, reference_coverage)
    return float(np.exp(np.median(np.log(ratios)))) if len(ratios) >= 2 else None


def _combination(
    device: LatencyModel, graphs: Sequence[GraphFeatures], pool: Sequence[Reference]
) -> dict[str, float] | None:
    """Coefficients (reference name -> a >= 0) such that the device's time on the kinds every pool
    device measured is about sum_r a_r x reference r's time on them, over `graphs` (relative-error
    NNLS); one reference: its `_scale`. None when the graphs cannot tell."""
    if len(pool) == 1:
        name, model, coverage = pool[0]
        scale = _scale(device, graphs, model, coverage)
        return None if scale is None else {name: scale}
    from nas.latency._model import nnls

    rows, targets = [], []
    for graph in graphs:
        shared = [k for k in graph.kinds if all(coverage.covers(k) for _, _, coverage in pool)]
        mine = device.breakdown(graph)
        mine_ms = sum(mine.get(k, 0.0) for k in shared)
        theirs = [sum(model.breakdown(graph).get(k, 0.0) for k in shared) for _, model, _ in pool]
        if mine_ms > 0 and any(t > 0 for t in theirs):
            rows.append(np.asarray(theirs) / mine_ms)
            targets.append(1.0)
    if len(rows) <= len(pool):
        return None
    design = np.asarray(rows)
    scale = design.max(axis=0)
    scale[scale == 0] = 1.0
    coefficients = nnls(design / scale, np.asarray(targets)) / scale
    if not (coefficients > 0).any():
        return None
    return {name: float(a) for (name, _, _), a in zip(pool, coefficients) if a > 0}


def _prices(
    device: LatencyModel,
    graphs: Sequence[GraphFeatures],
    references: Sequence[Reference],
    kinds: Sequence[str],
) -> tuple[dict[str, float], list[tuple[tuple[str, ...], dict[str, float]]]]:
    """The prior's weights for `kinds` (each priced by the references that measured it, `_combination`),
    and the combinations of several references used. A pool whose combination the graphs cannot tell
    falls back to its first reference alone."""
    pools: dict[tuple[int, ...], list[str]] = {}
    for kind in kinds:
        pool = tuple(i for i, (_, _, coverage) in enumerate(references) if coverage.covers(kind))
        if pool:
            pools.setdefault(pool, []).append(kind)
    models = {name: model for name, model, _ in references}
    weights: dict[str, float] = {}
    combinations = []
    for pool, pool_kinds in pools.items():
        coefficients = _combination(device, graphs, [references[i] for i in pool])
        if coefficients is None and len(pool) > 1:
            coefficients = _combination(device, graphs, [references[pool[0]]])
        if coefficients is None:
            continue
        wanted = set(pool_kinds)
        for name, a in coefficients.items():
            for column, w in models[name].weights.items():
                if column.partition(".")[0] in wanted and w > 0:
                    weights[column] = weights.get(column, 0.0) + a * w
        if len(coefficients) > 1 or len(pool) > 1:
            combinations.append((tuple(sorted(pool_kinds)), coefficients))
    return weights, combinations


def kind_family(kind: str) -> str:
    """A kind without its spatial bucket (conv_dense_k3_l -> conv_dense_k3): what a device measures or not."""
    head, _, bucket = kind.rpartition("_")
    return head if kind.startswith("conv_") and bucket in ("s", "m", "l") and kind != "conv_input" else kind


MIN_KEPT, MIN_HIDDEN, MIN_SHARE = 30, 5, 0.25


def hidden_family_ratios(
    samples: Sequence[tuple[GraphFeatures, float]],
    reference: LatencyModel,
    reference_coverage: Coverage,
    also: Sequence[Reference] = (),
) -> list[float]:
    """For each family of kinds the device measured (with at least `MIN_HIDDEN` graphs using it and
    `MIN_KEPT` not), refit without the graphs using it and price them with the prior (`_prices`, the
    main reference first, then `also`): the ratio of what the measurement leaves for the extrapolated
    part (measured - the model's covered part) to the prior's price of it, for every hidden graph where
    the prior prices at least `MIN_SHARE` of the prediction (floored at 0.05: a measurement below the
    covered part alone)."""
    from nas.latency._model import fit_latency_model

    references = [("reference", reference, reference_coverage), *also]
    families = sorted({kind_family(k) for graph, _ in samples for k in graph.kinds})
    ratios: list[float] = []
    for family in families:
        uses = [any(kind_family(k) == family for k in graph.kinds) for graph, _ in samples]
        kept = [sample for sample, used in zip(samples, uses) if not used]
        hidden = [sample for sample, used in zip(samples, uses) if used]
        if len(kept) < MIN_KEPT or len(hidden) < MIN_HIDDEN:
            continue
        family_kinds = sorted({k for graph, _ in hidden for k in graph.kinds if kind_family(k) == family})
        if not all(reference_coverage.covers(k) for k in family_kinds):
            continue  # the reference cannot price this family either
        try:
            model = fit_latency_model(kept)
        except RuntimeError:  # NNLS did not converge on what is left: this family cannot be tested
            continue
        kept_graphs = [g for g, _ in kept]
        if _scale(model, kept_graphs, reference, reference_coverage) is None:
            continue
        matrix = _matrix(_prices(model, kept_graphs, references, family_kinds)[0])
        for graph, measured in hidden:
            covered = model.predict(graph)
            extrapolated = sum(float(matrix[k] @ v) for k, v in graph.kinds.items() if k in matrix)
            if extrapolated > 0 and extrapolated >= MIN_SHARE * (covered + extrapolated):
                ratios.append(max(measured - covered, 0.05 * extrapolated) / extrapolated)
    return ratios
