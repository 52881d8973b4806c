"""Smoke test of benchmarks/flows_in_practice.py with tiny CPU budgets: one run, and the
whole script (models and recipes parts, the JSON file, resuming) in a few seconds."""

from __future__ import annotations

import json
import math

import pytest
from _benchmarks import import_benchmark

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fip():
    return import_benchmark("flows_in_practice")


def test_one_run_is_measured_on_its_cpu_budget(fip):
    row = fip.run_one("zuko NSF", "4 modes", 0, 0.2, {}, kl_samples=500, gap_samples=500)
    assert row["model"] == "zuko NSF" and row["steps"] >= 1
    assert 0.2 <= row["train_cpu_s"] < 2.0
    assert math.isfinite(row["kl"]) and row["kl_se"] > 0
    assert 0 <= row["gap_mass"] <= 1 and 0 <= row["true_gap_mass"] < 0.05
    other = fip.run_one("course RealNVP", "rings", 0, 0.1, {"lr": 1e-3}, 500, 500)
    assert "gap_mass" not in other and other["recipe"] == {"lr": 1e-3}


def test_the_script_writes_and_resumes_its_json(fip, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(fip, "BUDGETS", {"4 modes": 0.1})
    monkeypatch.setattr(fip, "SEEDS", (0,))
    monkeypatch.setattr(fip, "RECIPE_BUDGET", 0.1)
    monkeypatch.setattr(
        fip, "RECIPES", {"fit defaults": {}, "zuko's usual loop": fip.RECIPES["zuko's usual loop"]}
    )
    monkeypatch.setattr(fip, "KL_SAMPLES", 300)
    monkeypatch.setattr(fip, "GAP_SAMPLES", 300)
    monkeypatch.setattr(fip, "LIVE_STEPS", {"zuko NSF": 2, "course RealNVP": 3})
    monkeypatch.setattr(fip, "LIVE_SEEDS", (0,))
    out = tmp_path / "bench.json"
    assert fip.main(["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    parts = [(r["part"], r["model"], r.get("recipe_name", "")) for r in data["runs"]]
    assert len(parts) == 8
    assert sum(p == "models" for p, _, _ in parts) == 4
    live = {r["model"]: r["steps"] for r in data["runs"] if r["part"] == "live"}
    assert live == {"zuko NSF": 2, "course RealNVP": 3}
    assert {r for p, _, r in parts if p == "recipes"} == {"fit defaults", "zuko's usual loop"}
    assert data["settings"]["clock"].startswith("CPU time")
    assert fip.main(["--out", str(out)]) == 0  # resumes: nothing left to run
    assert len(json.loads(out.read_text())["runs"]) == 8
    assert capsys.readouterr().out == printed  # the same tables
    assert "| 4 modes (0.1 s) |" in printed and "| zuko's usual loop |" in printed
    assert "gap mass, 4 modes (truth" in printed
    assert "notebook 07's live run" in printed
    assert fip.main(["--out", str(out), "--report"]) == 0
    assert capsys.readouterr().out == printed
