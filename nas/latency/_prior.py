"""The prior: prices for the node kinds a device never measured, learnt from reference devices that did.

See `nas.latency._prediction` for how a prediction uses it. Three rules, the first that applies:

1. **Sibling.** A convolution kind whose family differs from one the device measured only in kernel size
   (`conv_depthwise_k5` when the device measured `conv_depthwise_k3`; dense k3/k5/k7 likewise) costs
   the main reference's price times the device/reference time ratio on those sibling families: the same
   operator and kernel routine, so the device's cost relative to the reference carries over better than
   a ratio over everything. The main reference is the local x86 CPU, whose bundle measures every kind a
   built-in space produces in networks and single blocks, so its per-kind costs are the best separated.
2. **Combination.** A kind the references measured costs a non-negative combination of their prices and
   of a per-node cost (`PER_NODE`: a reference that charges 1 ms for every node of any kind), fitted on
   what the device and all of them measured: a GPU board is priced by the devices it resembles rather
   than by a CPU, and a device that pays a fixed cost per node (a kernel launch, an operator dispatch)
   pays it for the kinds it never ran too, which no reference's per-kind prices carry over. A reference
   joins only if the kinds it prices (a positive weight) carry at least `MIN_PRICED_SHARE` of the
   device's time on those graphs: one that prices only a few of them (a corpus device whose
   whole-network fit left most kinds at zero) would get a coefficient fitted to those few kinds and
   carry it to the priced kind.
3. **Scale.** A kind whose combination the graphs cannot tell costs the main reference's price times one
   device-level scale.

A kind the device measured in fewer than `MIN_NODES` nodes whose fitted weights all came out zero is
priced by the prior as well (`unidentified_kinds`): so few nodes cannot tell "free" from "its cost went
to another kind" (the flatten of two head blocks says nothing about a channel shuffle).

None of these rules was chosen per device or per kind: they hold for every device and kind, and the
benchmark (`benchmarks/latency_prior.py`) checks them by hiding kinds the devices did measure.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from nas.errors import NasError
from nas.latency._coverage import Coverage
from nas.latency._features import GraphFeatures
from nas.latency._model import LatencyModel
from nas.latency._op_kinds import KINDS
from nas.latency._prediction import LEVEL, Interval, Prior, _matrix, conformal_interval, unidentified_kinds

# A device that measured kinds, as a source of prices: (name, model, coverage).
Reference = tuple[str, LatencyModel, Coverage]
# The per-node reference: 1 ms for each node of every kind. Its coefficient in a combination is the
# device's fixed cost per node beyond what the real references' prices explain.
PER_NODE: Reference = (
    "per-node",
    LatencyModel(overhead_ms=0.0, weights={f"{kind}.count": 1.0 for kind in KINDS}),
    Coverage(kinds={kind: {"nodes": 0} for kind in KINDS}, source="every kind, 1 ms per node"),
)


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
    """The prior for the kinds `device_coverage` lacks (or leaves unidentified) and a reference has, by
    the module docstring's rules; None when no reference adds a kind. `samples`: the (features, latency)
    the device model was fitted on. `also`: more reference devices (the latency-corpus devices), after
    the main one. ``scale`` is the median device/reference ratio over the fitted graphs on the kinds both
    measured (overheads out).

    The intervals come from hiding what the device did measure (`hidden_family_ratios_by_rule`, same
    rules): for each family of kinds, the model and prices are refitted without the graphs that use it,
    and those graphs' extrapolated part is compared with what the measurement leaves for it. Kinds
    priced through a sibling take the conformal interval of the hidden families priced that way (when 10
    ratios measure it); the others take that of the hidden families priced by a reference rule (all of
    them when fewer than 10), widened to the spread of the per-graph device/reference ratio around the
    scale, so that a device whose relative costs vary widely is not promised a narrow price."""
    references = [(reference_name, reference, reference_coverage), *also]
    unidentified = unidentified_kinds(device, device_coverage)
    extra = sorted(
        {
            k
            for _, _, coverage in references
            for k in coverage.kinds
            if not device_coverage.covers(k) or k in unidentified
        }
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
    weights, combinations, siblings = _prices(device, graphs, references, extra)
    by_rule = hidden_family_ratios_by_rule(samples, reference, reference_coverage, also)
    # kinds priced by a reference rule take the interval of hidden families priced that way (every hidden
    # family when fewer than 10 such ratios), never narrower than the spread of the device/reference
    # ratio over the fitted graphs (how far one scale can be off); kinds priced through a sibling take
    # that of the sibling rule when 10 ratios measure it
    ratios = _ratios(device, graphs, reference, reference_coverage)
    spread = conformal_interval(  # floored as the hidden ratios are: a price at most 20x too high
        np.maximum(np.asarray(ratios) / scale, HIDDEN_FLOOR),
        level,
        f"device/reference time ratio over {len(ratios)} fitted graphs, relative to the scale",
    )
    hidden = (
        by_rule["reference"] if len(by_rule["reference"]) >= 10 else by_rule["sibling"] + by_rule["reference"]
    )
    if len(hidden) >= 10:
        measured = conformal_interval(
            hidden,
            level,
            f"measured/predicted of the extrapolated part of {len(hidden)} graphs, each predicted with one "
            f"family of its kinds hidden; widened to the {spread.data}",
        )
        spread = replace(
            measured,
            low=min(measured.low, spread.low),
            high=max(measured.high, spread.high),
            level=min(measured.level, spread.level),
        )
    sibling_spread = None
    if siblings and len(by_rule["sibling"]) >= 10:
        sibling_spread = _holding_one(
            conformal_interval(
                by_rule["sibling"],
                level,
                f"measured/predicted of the extrapolated part of {len(by_rule['sibling'])} graphs, each "
                "predicted with one family of its kinds hidden and priced through a sibling family",
            )
        )
    return Prior(
        reference=reference_name,
        scale=scale,
        interval=_holding_one(spread),
        weights=weights,
        combinations=tuple(combinations),
        siblings=tuple(siblings),
        sibling_interval=sibling_spread,
    )


def _holding_one(spread: Interval) -> Interval:
    """The point estimate stays inside its own interval, even where hidden families were all cheaper
    (or dearer) than priced: the prices come from every graph, the spread from the hidden ones."""
    return replace(spread, low=min(spread.low, 1.0), high=max(spread.high, 1.0))


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


MIN_PRICED_SHARE = 0.5  # of the device's time a reference must price to join a combination


def _informative(
    device: LatencyModel, graphs: Sequence[GraphFeatures], references: Sequence[Reference]
) -> set[int]:
    """Indices of `references` whose positively weighted kinds carry at least `MIN_PRICED_SHARE` of the
    device model's time on `graphs` (overhead out): the ones a combination can learn a coefficient from
    that fits more than a few kinds. `PER_NODE` prices every kind, so it always qualifies."""
    per_kind: dict[str, float] = {}
    for graph in graphs:
        for kind, ms in device.breakdown(graph).items():
            if kind in graph.kinds:
                per_kind[kind] = per_kind.get(kind, 0.0) + ms
    total = sum(per_kind.values())
    informative = set()
    for i, (_, model, _) in enumerate(references):
        priced = {column.partition(".")[0] for column, w in model.weights.items() if w > 0}
        if total > 0 and sum(ms for k, ms in per_kind.items() if k in priced) >= MIN_PRICED_SHARE * total:
            informative.add(i)
    return informative


def sibling_families(family: str, measured) -> list[str]:
    """The families of `measured` that differ from `family` only in kernel size (conv_depthwise_k5 ->
    conv_depthwise_k3, conv_depthwise_k7; the same for dense convolutions): the same operator."""
    if not family.startswith(("conv_dense_k", "conv_depthwise_k")):
        return []
    head = family.rpartition("_k")[0]
    return sorted({f for f in measured if f != family and f.rpartition("_k")[0] == head})


def _family_time(model: LatencyModel, graphs: Sequence[GraphFeatures], families: Sequence[str]) -> float:
    """The model's milliseconds on the kinds of `families`, summed over `graphs`."""
    wanted = set(families)
    return sum(
        ms for graph in graphs for kind, ms in model.breakdown(graph).items() if kind_family(kind) in wanted
    )


def _add_prices(weights: dict[str, float], model: LatencyModel, kinds, coefficient: float) -> None:
    wanted = set(kinds)
    for column, w in model.weights.items():
        if column.partition(".")[0] in wanted and w > 0:
            weights[column] = weights.get(column, 0.0) + coefficient * w


def _prices(
    device: LatencyModel,
    graphs: Sequence[GraphFeatures],
    references: Sequence[Reference],
    kinds: Sequence[str],
) -> tuple[
    dict[str, float],
    list[tuple[tuple[str, ...], dict[str, float]]],
    list[tuple[tuple[str, ...], tuple[str, ...], float]],
]:
    """The prior's weights for `kinds` (the module docstring's rules, in order), the combinations of
    several references used, and the sibling transfers used: (kinds, sibling families, ratio). Every
    pool of references that measured a kind is combined with `PER_NODE`, those `_informative` keeps
    (`PER_NODE` alone when it keeps no real reference: a launch-bound device); a pool whose combination
    the graphs cannot tell falls back to its first reference alone."""
    _, main, main_coverage = references[0]
    references = [*references, PER_NODE]
    measured = {kind_family(k) for graph in graphs for k in graph.kinds}
    by_family: dict[str, list[str]] = {}
    for kind in kinds:
        by_family.setdefault(kind_family(kind), []).append(kind)
    weights: dict[str, float] = {}
    siblings = []
    rest = []
    for family, family_kinds in sorted(by_family.items()):
        sources = sibling_families(family, measured)
        theirs = _family_time(main, graphs, sources) if sources else 0.0
        mine = _family_time(device, graphs, sources) if theirs > 0 else 0.0
        if mine > 0 and all(main_coverage.covers(k) for k in family_kinds):
            _add_prices(weights, main, family_kinds, mine / theirs)
            siblings.append((tuple(sorted(family_kinds)), tuple(sources), mine / theirs))
        else:
            rest.extend(family_kinds)
    pools: dict[tuple[int, ...], list[str]] = {}
    for kind in rest:
        pool = tuple(i for i, (_, _, coverage) in enumerate(references) if coverage.covers(kind))
        if len(pool) > 1:  # a real reference besides PER_NODE
            pools.setdefault(pool, []).append(kind)
    models = {name: model for name, model, _ in references}
    combinations = []
    informative = _informative(device, graphs, references)
    for pool, pool_kinds in pools.items():
        joined = [references[i] for i in pool if i in informative]
        coefficients = _combination(device, graphs, joined) if joined else None
        if coefficients is None:
            coefficients = _combination(device, graphs, [references[pool[0]]])
        if coefficients is None:
            continue
        for name, a in coefficients.items():
            _add_prices(weights, models[name], pool_kinds, a)
        if len(coefficients) > 1 or len(pool) > 1:
            combinations.append((tuple(sorted(pool_kinds)), coefficients))
    return weights, combinations, siblings


def kind_family(kind: str) -> str:
    """A kind without its spatial bucket (conv_dense_k3_l -> conv_dense_k3): what a device measures or not."""
    head, _, bucket = kind.rpartition("_")
    return head if kind.startswith("conv_") and bucket in ("s", "m", "l") and kind != "conv_input" else kind


MIN_KEPT, MIN_HIDDEN, MIN_SHARE = 30, 5, 0.25
HIDDEN_FLOOR = 0.05  # a measurement below the covered part alone: the ratio counts as 0.05, not 0 or less


def hidden_family_ratios(
    samples: Sequence[tuple[GraphFeatures, float]],
    reference: LatencyModel,
    reference_coverage: Coverage,
    also: Sequence[Reference] = (),
) -> list[float]:
    """Every ratio of `hidden_family_ratios_by_rule`, whichever rule priced it."""
    by_rule = hidden_family_ratios_by_rule(samples, reference, reference_coverage, also)
    return [ratio for ratios in by_rule.values() for ratio in ratios]


def hidden_family_ratios_by_rule(
    samples: Sequence[tuple[GraphFeatures, float]],
    reference: LatencyModel,
    reference_coverage: Coverage,
    also: Sequence[Reference] = (),
) -> dict[str, list[float]]:
    """For each family of kinds the device measured (with at least `MIN_HIDDEN` graphs using it and
    `MIN_KEPT` not), refit without the graphs using it and price them with the prior (`_prices`, the
    main reference first, then `also`; kinds the refit leaves unidentified are priced too): the ratio
    of what the measurement leaves for the extrapolated part (measured - the model's covered part) to
    the prior's price of it (floored at `HIDDEN_FLOOR`: a measurement below the covered part alone), for every
    hidden graph where the kinds the prior priced make at least `MIN_SHARE` of the device's own
    prediction (by the model fitted on every sample: not by the prior's price, which would drop the
    graphs it underprices). Keyed by the rule that
    priced the hidden family: "sibling" or "reference" (a combination or the scale)."""
    from nas.latency._model import fit_latency_model

    references = [("reference", reference, reference_coverage), *also]
    families = sorted({kind_family(k) for graph, _ in samples for k in graph.kinds})
    ratios: dict[str, list[float]] = {"sibling": [], "reference": []}
    full = fit_latency_model(samples)  # the device's own price of a hidden family, for MIN_SHARE
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
        unidentified = unidentified_kinds(model, Coverage.of(kept_graphs))
        priced = sorted(
            {*family_kinds, *(k for graph, _ in hidden for k in graph.kinds if k in unidentified)}
        )
        weights, _, siblings = _prices(model, kept_graphs, references, priced)
        by_sibling = {k for kinds, _, _ in siblings for k in kinds}
        rule = "sibling" if set(family_kinds) <= by_sibling else "reference"
        matrix = _matrix(weights)
        for graph, measured in hidden:
            covered = model.predict(graph)
            extrapolated = sum(float(matrix[k] @ v) for k, v in graph.kinds.items() if k in matrix)
            own = full.breakdown(graph)
            if extrapolated > 0 and sum(own.get(k, 0.0) for k in matrix) >= MIN_SHARE * full.predict(graph):
                ratios[rule].append(max(measured - covered, HIDDEN_FLOOR * extrapolated) / extrapolated)
    return ratios
