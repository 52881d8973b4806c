"""coursekit.bands: the band of a trained figure, and reading committed results."""

from __future__ import annotations

import math

import pytest

from coursekit.bands import BENCHMARKS_DIR, Band, benchmark_results


def test_band_is_mean_plus_minus_k_standard_deviations():
    band = Band.from_runs([1.0, 2.0, 3.0, 4.0], k=2, source="x.json")
    sd = math.sqrt(5 / 3)  # sample standard deviation of 1..4 (n - 1)
    assert band.mean == pytest.approx(2.5, abs=1e-15)
    assert band.sd == pytest.approx(sd, rel=1e-14)
    assert (band.low, band.high) == pytest.approx((2.5 - 2 * sd, 2.5 + 2 * sd), rel=1e-14)
    assert 2.5 + 1.99 * sd in band and 2.5 + 2.01 * sd not in band
    assert 2.5 - 2.01 * sd not in band
    assert "4 seeds of x.json" in str(band) and band.format(3).startswith("[")


def test_band_rejects_what_is_not_a_set_of_runs():
    with pytest.raises(ValueError, match="values: expected at least 3 runs"):
        Band.from_runs([1.0, 2.0])
    with pytest.raises(ValueError, match="values: expected finite"):
        Band.from_runs([1.0, float("nan"), 2.0])
    with pytest.raises(TypeError, match="values: expected real numbers"):
        Band.from_runs(["a", "b", "c"])
    with pytest.raises(ValueError, match="k: expected a positive number"):
        Band.from_runs([1.0, 2.0, 3.0], k=0)
    assert "text" not in Band.from_runs([1.0, 2.0, 3.0])


def test_benchmark_results_reads_the_committed_file_and_names_a_missing_one():
    names = sorted(p.stem for p in BENCHMARKS_DIR.glob("*.json"))
    assert names, "the repository commits benchmark results"
    assert isinstance(benchmark_results(names[0]), dict)
    with pytest.raises(FileNotFoundError, match="name: no committed results"):
        benchmark_results("no_such_benchmark")
    with pytest.raises(ValueError, match="name: expected a file name"):
        benchmark_results("../README.md")
    with pytest.raises(TypeError, match="name: expected a str"):
        benchmark_results(3)  # type: ignore[arg-type]
