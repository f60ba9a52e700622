"""The headline benchmark's own logic: which networks it trains, how it interleaves latency rounds, and how
it decides the issue's target at a latency level."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # plain `pytest` does not put the repository root on the path
    sys.path.insert(0, str(ROOT))

from benchmarks._headline_report import (  # noqa: E402
    level_ms,
    paired_levels,
    replace_folder,
    target_at_level,
    tau_with_interval,
    with_paired_gain,
)
from benchmarks.headline import RandomChoices, interleaved_orders, spread  # noqa: E402


def _point(name, group, accuracy, latency_ms):
    return {"name": name, "group": group, "accuracy": accuracy, "latency_ms": latency_ms}


def test_spread_keeps_both_ends_and_spaces_the_rest():
    assert spread(list(range(10)), 4, key=lambda v: v) == [0, 3, 6, 9]
    assert spread([3, 1, 2], 5, key=lambda v: v) == [1, 2, 3]
    assert spread([5, 9, 7], 1, key=lambda v: v) == [9]


def test_every_round_measures_every_model_once_and_rounds_start_elsewhere():
    orders = interleaved_orders(6, 3)
    assert all(sorted(order) == list(range(6)) for order in orders)
    assert [order[0] for order in orders] == [0, 2, 4]


def test_target_met_by_accuracy_gain_at_equal_or_lower_latency():
    points = [
        _point("b-slow", "baseline", 0.70, 0.09),
        _point("b-fast", "baseline", 0.60, 0.06),
        _point("f1", "found", 0.725, 0.085),
        _point("f2", "found", 0.80, 0.20),  # more accurate but slower than the baseline: not counted
    ]
    level = target_at_level(points, 0.09)
    assert level["baseline"] == "b-slow"
    assert level["best_found_at_equal_or_lower_latency"] == "f1"
    assert level["accuracy_gain_points"] == 2.5
    assert level["target_met"] is True


def test_target_met_by_speed_and_missed_when_neither_holds():
    points = [_point("b", "baseline", 0.70, 0.09), _point("f", "found", 0.70, 0.06)]
    met = target_at_level(points, 0.1)
    assert met["speedup"] == 1.5 and met["accuracy_gain_points"] == 0.0 and met["target_met"] is True
    points[1]["latency_ms"] = 0.08  # 1.125x faster, equal accuracy
    assert target_at_level(points, 0.1)["target_met"] is False


def test_no_baseline_within_the_level_is_no_verdict():
    level = target_at_level([_point("b", "baseline", 0.7, 0.09), _point("f", "found", 0.9, 0.01)], 0.05)
    assert level["target_met"] is None and level["baseline"] is None


def test_random_choices_are_seeded():
    a, b = RandomChoices(1), RandomChoices(1)
    draws = [a.suggest_categorical("x", [1, 2, 3, 4]) for _ in range(20)]
    assert draws == [b.suggest_categorical("x", [1, 2, 3, 4]) for _ in range(20)]
    assert len(set(draws)) > 1


def test_a_level_is_milliseconds_or_a_models_measured_latency():
    points = [_point("mobilenetv2-0.5x", "baseline", 0.6, 0.081)]
    assert level_ms(points, "mobilenetv2-0.5x") == 0.081
    assert level_ms(points, "0.1") == 0.1


def test_paired_rounds_judge_a_model_by_its_rounds_against_the_same_rounds_of_the_level_model():
    def point(name, group, accuracy, rounds):
        ordered = sorted(rounds)
        median = ordered[len(ordered) // 2]
        latency = {"x86-cpu": {"latency_ms": median, "rounds_ms": rounds}}
        return {"name": name, "group": group, "accuracy": accuracy, "latency_ms": median, "latency": latency}

    baseline = point("base", "baseline", 0.50, [1.0, 2.0, 2.0, 1.0, 2.0])  # median 2.0: slow rounds 2, 3, 5
    # the found model was fast in round 2 (a round slow for the baseline only): its median (1.1) is below the
    # baseline's, but in 4 of 5 shared rounds it took 1.1x the baseline's time
    found = point("found", "found", 0.53, [1.1, 1.1, 2.2, 1.1, 2.2])
    assert target_at_level([baseline, found], 2.0)["target_met"]  # by medians: +3 points, and faster
    [row, none] = paired_levels([baseline, found], ["base", "0.5"])
    assert row["latency_ratio_to_level_model"] == {"base": 1.0, "found": 1.1}
    assert row["best_found_at_equal_or_lower_latency"] is None and not row["target_met"]
    assert none is None  # a level in milliseconds names no model to pair with


def test_a_levels_gain_gets_its_paired_interval_over_the_same_test_images():
    import numpy as np

    # 1,000 images: both right on 500, the found network alone on 60 more, the baseline alone on 20 more
    found = np.zeros(1000, bool)
    baseline = np.zeros(1000, bool)
    found[:560], baseline[:500], baseline[560:580] = True, True, True
    row = {"baseline": "b", "best_found_at_equal_or_lower_latency": "f", "accuracy_gain_points": 4.0}
    [with_gain, no_found] = with_paired_gain(
        [row, {**row, "best_found_at_equal_or_lower_latency": None}], {"f": found, "b": baseline}
    )
    low, high = with_gain["accuracy_gain_ci95_points"]
    # 40 discordant images more for the found network out of 80: +4 points, about +-2.5 by the bootstrap
    assert 0.5 < low < 4.0 < high < 7.5 and with_gain["accuracy_gain_mcnemar_p"] < 0.001
    assert "accuracy_gain_ci95_points" not in no_found
    assert with_paired_gain([row], None) == [row]


def test_tau_comes_with_a_bootstrap_interval_that_narrows_with_more_networks():
    import numpy as np

    rng = np.random.default_rng(1)

    def points(n):
        proxy = rng.normal(size=n)
        return [{"proxy_accuracy": a, "accuracy": a + rng.normal(0, 0.5)} for a in proxy]

    few, many = tau_with_interval(points(12)), tau_with_interval(points(200))
    for result in (few, many):
        low, high = result["ci95"]
        assert low <= result["tau"] <= high
    assert many["ci95"][1] - many["ci95"][0] < few["ci95"][1] - few["ci95"][0]
    assert tau_with_interval(points(12)) != tau_with_interval(points(12))  # other data, other result
    same = points(12)
    assert tau_with_interval(same) == tau_with_interval(same)  # seeded


def test_the_fidelity_benchmark_rebuilds_every_network_of_the_committed_headline(tmp_path, monkeypatch):
    """The random networks are drawn again, as headline.py drew them: their names (hash prefixes) must be the
    committed ones, or the fidelity benchmark would rank other networks than the headline trained."""
    import benchmarks.search_efficiency as search_efficiency
    from benchmarks._harness import RESULTS, read_json
    from benchmarks.headline import random_draws, random_name
    from benchmarks.headline_fidelity import headline_architectures, headline_test_fraction

    monkeypatch.setattr(search_efficiency, "RUNS", tmp_path)  # the frozen profile's copy goes there
    headline = read_json(RESULTS / "headline.json", "headline results")
    archs = headline_architectures(headline)
    assert list(archs) == [p["name"] for p in headline["points"]]
    spec = read_json(RESULTS / "headline" / "found-trial49" / "spec.json", "spec")
    assert archs["found-trial49"].hash == spec["arch_hash"]
    randoms = [p["name"] for p in headline["points"] if p["group"] == "random"]
    draws = random_draws(headline["search"]["space"], len(randoms), headline["search"]["latency_budget_ms"])
    assert [random_name(i, h) for i, h in enumerate(draws)] == randoms
    assert headline_test_fraction(headline) == 0.1


def test_fidelity_taus_per_seed_of_the_mean_and_between_seeds():
    from benchmarks.headline_fidelity import kendall_taus

    got = kendall_taus([[1, 2, 3, 4], [3, 1, 4, 6]], [10, 20, 30, 40])
    assert got["per_seed"] == [1.0, 0.667] and got["one_seed_mean"] == 0.833
    assert got["mean_of_seeds"] == 0.667  # means 2, 1.5, 3.5, 5: the first pair is out of order
    assert got["seed_vs_seed"] == 0.667
    assert kendall_taus([[1, 2, 3]], [1, 2, 3])["seed_vs_seed"] is None


def test_replace_folder_keeps_only_the_new_figure(tmp_path):
    dest, staged = tmp_path / "headline", tmp_path / "headline.staged"
    (dest / "found-trial1").mkdir(parents=True)
    (dest / "found-trial1" / "model.onnx").write_text("old")
    (staged / "found-trial2").mkdir(parents=True)
    (staged / "found-trial2" / "model.onnx").write_text("new")
    replace_folder(staged, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["found-trial2"]
    assert (dest / "found-trial2" / "model.onnx").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["headline"]
    replace_folder_target = tmp_path / "fresh"  # no earlier folder: the staged one simply moves in
    (tmp_path / "fresh.staged").mkdir()
    replace_folder(tmp_path / "fresh.staged", replace_folder_target)
    assert replace_folder_target.is_dir() and not (tmp_path / "fresh.staged").exists()
