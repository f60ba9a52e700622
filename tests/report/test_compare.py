"""write_comparison: several real runs side by side, on one latency axis or normalised ones."""

from __future__ import annotations

from nas.report import write_comparison

from .test_report_html import assert_self_contained

COMPARE_FIGURES = ("compare_fronts.png", "compare_fronts_per_run.png", "compare_allocation.png")


def test_two_runs_on_the_same_profile_share_one_axis(tiny_run, mixed_run, tmp_path):
    path = write_comparison([tiny_run, mixed_run], tmp_path / "cmp")
    assert path == tmp_path / "cmp" / "compare.html"
    html = path.read_text()
    assert_self_contained(html, path.parent, COMPARE_FIGURES)
    assert "tiny-run" in html and "mixed-run" in html
    assert "share one absolute latency axis" in html and "one common reference latency" in html


def test_runs_on_different_profiles_are_normalised(tiny_run, other_profile_run, tmp_path):
    path = write_comparison([tiny_run, other_profile_run], tmp_path / "named.html")
    assert path == tmp_path / "named.html"
    html = path.read_text()
    assert_self_contained(html, tmp_path, COMPARE_FIGURES)
    assert "different hardware profiles (other-device, x86-cpu)" in html and "normalised latency axis" in html
