"""benchmarks/latency_corpus.py's choice of the graph a device ran: made per device on its own
measured networks only, and recorded (synthetic devices, no ../shared data needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from nas.latency._features import COLUMNS

USED = [
    COLUMNS.index(c) for c in ("conv_dense_k3_l.count", "conv_pointwise_m.count", "add.count", "pool.macs")
]


@pytest.fixture(scope="module")
def corpus():
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:  # plain `pytest` does not put the repository root on the path
        sys.path.insert(0, root)
    from benchmarks import _corpus_fits

    return _corpus_fits


def _representations(rng: np.random.Generator, n: int = 200) -> dict:
    """Two graphs per network: 'fold' drops part of the 'eager' nodes (differently per network)."""
    eager = np.zeros((n, len(COLUMNS)))
    eager[:, USED] = rng.integers(1, 30, size=(n, len(USED))) * np.array([1, 1, 1, 1e5])
    fold = eager.copy()
    fold[:, USED] *= rng.integers(0, 2, size=(n, len(USED)))
    return {"eager": eager, "fold": fold}


def _latency(rng, x: np.ndarray) -> np.ndarray:
    w = np.zeros(len(COLUMNS))
    w[USED] = rng.uniform(0.05, 0.2, len(USED)) * np.array([1, 1, 1, 1e-5])
    return 0.3 + x @ w


def test_each_device_is_fitted_on_the_graph_it_ran(corpus):
    rng = np.random.default_rng(0)
    reps = _representations(rng)
    latency = np.stack(
        [_latency(rng, reps["eager"]) for _ in range(4)] + [_latency(rng, reps["fold"])], axis=1
    )
    predictions, ran = corpus.prior_predictions(reps, latency)
    assert ran == ["eager"] * 4 + ["fold"]
    assert set(predictions) == {"eager", "fold"} and predictions["fold"].shape == latency.shape


def test_the_held_out_device_chooses_its_graph_on_its_k_networks_and_says_which(corpus):
    rng = np.random.default_rng(1)
    reps = _representations(rng)
    latency = np.stack(
        [_latency(rng, reps["eager"]) for _ in range(5)] + [_latency(rng, reps["fold"])], axis=1
    )
    devices = [f"dev{i}" for i in range(6)]
    prior, _ = corpus.prior_predictions(reps, latency)
    folded = corpus.few_shot(prior, latency, devices, 5, 12, 2, False)
    assert folded["representation"] == {"fold": 2}
    package = corpus.package_fit(reps, prior, latency, devices, 5, 40, 1)
    assert package["representation"] == {"fold": 1} and package["mape"]["mean"] < 1.0
    assert corpus.few_shot(prior, latency, devices, 0, 12, 2, False)["representation"] == {"eager": 2}


def test_devices_option(corpus):
    from benchmarks._harness import BenchmarkError
    from benchmarks.latency_corpus import selected_devices

    assert selected_devices(None, ["a", "b"]) == ["a", "b"]
    assert selected_devices("b, a", ["a", "b"]) == ["b", "a"]
    with pytest.raises(BenchmarkError, match="unknown corpus column"):
        selected_devices("a,pixel9", ["a", "b"])


def test_with_a_prior_over_graphs_a_slightly_better_fit_does_not_move_a_device_off_the_common_graph(corpus):
    from types import SimpleNamespace

    y = np.linspace(1.0, 10.0, 10)
    fits = {
        "eager": SimpleNamespace(loo_predictions=y * 1.05),
        "fold": SimpleNamespace(loo_predictions=y * 1.045),
    }
    assert corpus.choose_representation(fits, y) == "fold"  # lowest leave-one-out MAPE
    assert corpus.choose_representation(fits, y, {"eager": 23, "fold": 0}) == "eager"
    fits["eager"] = SimpleNamespace(loo_predictions=y * 1.5)  # the 10 networks reject 'eager'
    assert corpus.choose_representation(fits, y, {"eager": 23, "fold": 0}) == "fold"


def test_the_prior_comparison_measures_on_training_networks_and_ranks_the_others(corpus, monkeypatch):
    """benchmarks/_corpus_gbm_prior: a device whose costs are another's, scaled, is ranked from 10 of the
    training networks; no draw measures a held-out one."""
    import nas.latency
    from benchmarks import _corpus_gbm_prior as gbm_prior

    rng = np.random.default_rng(0)
    x = _representations(rng)["eager"]
    y = _latency(rng, x)
    train, test = np.arange(150), np.arange(150, 200)
    linear = gbm_prior.linear_predictions(x, y, train)
    assert np.allclose(linear, y, rtol=1e-3)  # an exact linear device is fitted exactly
    measured = []
    fit = nas.latency.fit_few_shot_predictions
    monkeypatch.setattr(nas.latency, "fit_few_shot_predictions", lambda q, m: measured.append(m) or fit(q, m))
    slower = 1.7 * y  # a device 1.7x as slow in every operator alike
    predictions, latency = np.column_stack([linear, 1.7 * linear]), np.column_stack([y, slower])
    result = gbm_prior.k10(predictions, latency, ["prior", "slower"], 1, train, test)
    assert result["prior_devices"] == ["prior"]
    assert result["spearman"]["min"] > 0.999 and result["mape"]["mean"] < 1
    assert len(measured) == gbm_prior.DRAWS and all(len(m) == gbm_prior.K for m in measured)
    assert set(np.concatenate(measured)) <= set(slower[train])  # the latencies are distinct per network


def test_prior_devices_fitted_on_their_own_rows_only(corpus):
    """`prior_predictions(fit_rows=...)`: a device's model learns from its rows alone (HELP's protocol fits
    each prior device on its pool), and predicts every network."""
    rng = np.random.default_rng(2)
    reps = _representations(rng)
    clean = _latency(rng, reps["eager"])
    spoiled = clean.copy()
    spoiled[150:] *= rng.uniform(2, 10, size=50)  # rows no model may learn from
    latency = np.stack([clean, spoiled], axis=1)
    rows = [np.arange(200), np.arange(150)]
    predictions, ran = corpus.prior_predictions(reps, latency, fit_rows=rows)
    assert ran == ["eager", "eager"]
    assert np.allclose(predictions["eager"][:, 1], clean, rtol=1e-3)
    unrestricted, _ = corpus.prior_predictions(reps, latency)
    assert not np.allclose(unrestricted["eager"][:, 1], clean, rtol=1e-3)


def test_a_fixed_protocol_measures_from_its_pool_ranks_its_query_with_its_prior(corpus, monkeypatch):
    import nas.latency

    rng = np.random.default_rng(3)
    reps = _representations(rng, n=300)
    latency = np.stack([_latency(rng, reps["eager"]) for _ in range(4)], axis=1)
    latency = np.hstack([latency, 1.5 * latency[:, :1]])  # device 4: device 0, 1.5x as slow
    devices = [f"dev{i}" for i in range(5)]
    predictions, ran = corpus.prior_predictions(reps, latency)
    pool, query = np.arange(100), np.arange(200, 300)
    fitted, ranked = [], []
    fit = nas.latency.fit_few_shot_predictions
    monkeypatch.setattr(
        nas.latency, "fit_few_shot_predictions", lambda q, y: fitted.append((q, y)) or fit(q, y)
    )
    spearman = corpus.spearman
    monkeypatch.setattr(corpus, "spearman", lambda p, y: ranked.append(len(y)) or spearman(p, y))
    for design_pool in (0, len(pool)):
        fitted.clear()
        result = corpus.few_shot(
            predictions,
            latency,
            devices,
            4,
            10,
            2,
            False,
            ran=ran,
            design_pool=design_pool,
            prior=[0, 2],
            pool=pool,
            query=query,
        )
        assert result["prior_devices"] == ["dev0", "dev2"] and result["spearman"]["min"] > 0.999
        assert all(q.shape == (10, 2) for q, _ in fitted)
        assert set(np.concatenate([y for _, y in fitted])) <= set(latency[pool, 4])
    assert set(ranked) == {len(query)}
    with pytest.raises(ValueError, match="among the query networks"):
        corpus.few_shot(predictions, latency, devices, 4, 10, 1, False, pool=pool, query=pool)
    with pytest.raises(ValueError, match="among the query networks"):
        corpus.few_shot(predictions, latency, devices, 4, 10, 1, False, query=np.arange(300))
    with pytest.raises(ValueError, match="its own prior"):
        corpus.few_shot(predictions, latency, devices, 4, 10, 1, False, prior=[0, 4])


def test_help_protocol_cuts_a_tenth_off_each_end_as_help_does(corpus):
    from benchmarks.help_protocol import without_outliers

    y = np.random.default_rng(4).permutation(2000).astype(float)
    kept = without_outliers(np.arange(900), y)
    assert len(kept) == 720 and len(without_outliers(np.arange(900, 1900), y)) == 800
    order = np.argsort(y[:900])
    assert set(kept) == set(order[90:810])


def test_help_protocol_writes_every_prior_and_draw_kind_per_device(corpus, tmp_path, monkeypatch):
    """benchmarks/help_protocol.py end to end on a synthetic corpus (every device a scaled copy of one of
    three): HELP's pools and queries, its priors by name, a result per (device, prior, draw kind)."""
    import csv
    import json

    import nas.latency
    from benchmarks import _harness, help_protocol

    rng = np.random.default_rng(5)
    reps = _representations(rng, n=2000)
    names = [*help_protocol.HELP_TRAINING, *help_protocol.HELP_VALIDATION, *help_protocol.HELP_REFERENCE]
    base = [_latency(rng, reps["eager"]) for _ in range(3)]
    with open(tmp_path / "nasbench201_latency_ms.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch_index", "arch_str", *names])
        for i in range(2000):
            writer.writerow([i, f"net{i}", *(base[j % 3][i] * (1 + j / 10) for j in range(len(names)))])
    monkeypatch.setattr(help_protocol, "representation_features", lambda archs, name: reps["eager"])
    fit = nas.latency.fit_few_shot_predictions  # one ridge: no nested choice, the wiring is what is tested
    monkeypatch.setattr(nas.latency, "fit_few_shot_predictions", lambda q, y: fit(q, y, ridges=(1e-3,)))
    monkeypatch.setenv(_harness.RESULTS_ENV, str(tmp_path / "results"))
    monkeypatch.setattr(sys, "argv", ["help_protocol", "--data", str(tmp_path), "--draws", "2"])
    assert help_protocol.main() == 0
    result = json.loads((tmp_path / "results" / "help_protocol.json").read_text())
    assert sorted(result["per_device"]) == sorted(help_protocol.HELP_REFERENCE)
    for name, entry in result["per_device"].items():
        assert entry["pool"] == 720 and entry["query"] == 800
        training = entry["help_training"]["random"]["prior_devices"]
        assert training == list(help_protocol.HELP_TRAINING)
        assert len(entry["help_training_and_validation"]["designed"]["prior_devices"]) == 13
        assert set(entry["every_other_column"]["random"]["prior_devices"]) == set(names) - {name}
        for prior in help_protocol.PRIORS:
            assert entry[prior]["designed"]["spearman"]["min"] > 0.99  # a scaled copy is ranked exactly
    assert result["all_met"]["help_training"] == {"random": True, "designed": True}
