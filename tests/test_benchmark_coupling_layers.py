"""Smoke test of benchmarks/coupling_layers.py (the bands of notebook 04's trainings) with
short trainings, and a check of the committed results the notebook reads."""

from __future__ import annotations

import json
import math

import pytest
from _benchmarks import import_benchmark

from coursekit.bands import Band, benchmark_results

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cl():
    return import_benchmark("coupling_layers")


def test_the_quick_run_writes_every_part(cl, tmp_path):
    out = tmp_path / "cl.json"
    assert cl.main(["--quick", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    runs = data["runs"]
    assert data["settings"]["seeds"] == [0, 1, 2]
    assert {r["model"] for r in runs if r["part"] == "masks"} == set(cl.MASKS)
    assert all(math.isfinite(r["kl"]) and r["kl_se"] > 0 for r in runs if r["part"] == "masks")
    bounded = [r for r in runs if r["part"] == "bound" and r["scale_bound"] == 3]
    assert len(bounded) == 3 and all(r["diverged_at"] is None for r in bounded)


def test_the_committed_results_support_the_notebook():
    runs = benchmark_results("coupling_layers")["runs"]
    band = {
        name: Band.from_runs([r["kl"] for r in runs if r.get("model") == name])
        for name in ("same mask [1, 0]", "alternating")
    }
    floor = 1.625  # KL(p(x1) || N(0, 1)) of the 4 modes, notebook 04 section 5
    assert band["same mask [1, 0]"].low > floor > band["alternating"].high
    assert len({r["seed"] for r in runs}) >= 10
