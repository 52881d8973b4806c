"""Smoke test of benchmarks/fit_ablation.py: a fraction of a second of training per run, two
seeds, and the JSON it writes has every variant that benchmarks/README.md reports."""

from __future__ import annotations

import json

from _benchmarks import import_benchmark


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
