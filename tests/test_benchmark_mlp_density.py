"""benchmarks/mlp_density_failure.py: its code path runs, and its committed results (read by
notebook 01) are consistent with the runs they summarise."""

from __future__ import annotations

import json
import math
import statistics

import pytest
from _benchmarks import import_benchmark

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bench():
    return import_benchmark("mlp_density_failure")


def test_finite_data_run_records_both_curves(bench, monkeypatch):
    small = {**bench.FINITE_SETTINGS, "steps": 4, "eval_every": 2, "held_out": 50}
    monkeypatch.setattr(bench, "FINITE_SETTINGS", small)
    run = bench.finite_data_run(30, seed=0)
    assert run["steps"] == [0, 2, 4]
    assert len(run["train_nll"]) == len(run["held_out_nll"]) == 3
    assert run["best_held_out"] == min(run["held_out_nll"])
    assert run["final_held_out"] == run["held_out_nll"][-1]


def test_committed_results_match_their_runs(bench):
    result = json.loads(bench.OUT.read_text())
    assert len(result["seeds"]) >= 5
    for normaliser, per_k in result["summary"]["modes"].items():
        for k, stats in per_k.items():
            kls = [
                r["kl"]
                for r in result["modes_runs"]
                if r["normaliser"] == normaliser and r["k"] == int(k)
            ]
            assert len(kls) == len(result["seeds"])
            assert stats["mean"] == pytest.approx(statistics.fmean(kls), abs=1e-12)
            se = statistics.stdev(kls) / math.sqrt(len(kls))
            assert stats["se"] == pytest.approx(se, abs=1e-12)
    for n, stats in result["summary"]["finite_data"].items():
        runs = [r for r in result["finite_data_runs"] if r["n"] == int(n)]
        rises = [r["final_held_out"] - r["best_held_out"] for r in runs]
        assert stats["rise"]["mean"] == pytest.approx(statistics.fmean(rises), abs=1e-12)
    sizes = {row["dim"]: row["points"] for row in result["grid_cost"]}
    assert sizes[5] == 50**5
