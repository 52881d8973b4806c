"""Smoke tests of benchmarks/flow_vs_mlp.py and benchmarks/fit_ablation.py: a fraction of a
second of training per run, two seeds, and the JSON they write has every figure the lecture
notebook 05 reads."""

from __future__ import annotations

import json

from _benchmarks import import_benchmark


def test_flow_vs_mlp_writes_every_figure(tmp_path):
    out = tmp_path / "duel.json"
    bench = import_benchmark("flow_vs_mlp")
    bench.main(["--seeds", "0", "1", "--seconds", "0.1", "--seconds-10d", "0.1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["command"].endswith(f"--out {out}")
    assert len(result["rows"]) == 2
    for key in ("kl_flow", "kl_mlp", "kl_flow_minus_mlp", "kl_flow10", "gap_mass_flow"):
        entry = result["summary"][key]
        assert entry["n_seeds"] == 2 and entry["se"] >= 0
    row = result["rows"][0]
    assert abs(row["kl_flow"][0] - row["kl_mlp"][0] - row["kl_flow_minus_mlp"][0]) < 1e-9
    assert result["grid_cost"]["d10_points"] == 60**10
    assert 0 < result["true_gap_mass"] < 0.01


def test_fit_ablation_writes_every_variant(tmp_path):
    out = tmp_path / "ablation.json"
    bench = import_benchmark("fit_ablation")
    bench.main(["--seeds", "0", "1", "--seconds", "0.1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result["summary"]) == set(bench.VARIANTS)
    for name, entry in result["summary"].items():
        assert entry["runs"] == 2
        if entry["diverged"] == 0:
            assert entry["kl_se"] >= 0 and entry["steps_mean"] > 0
            assert name == "fit" or "kl_minus_fit_mean" in entry
