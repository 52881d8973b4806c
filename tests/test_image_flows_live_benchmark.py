"""Smoke test of benchmarks/image_flows_live.py: notebook 08's live training, a few steps on
synthetic images (no MNIST needed), and the settings notebook 08 asserts."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _benchmarks import BENCHMARKS, import_benchmark

from coursekit.flows import ImageFlowConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ifl():
    return import_benchmark("image_flows_live")


def test_one_run_records_the_notebooks_figures(ifl, monkeypatch):
    monkeypatch.setitem(ifl.SETTINGS, "fit", {**ifl.SETTINGS["fit"], "steps": 2, "warmup": 1})
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (64, 1, 28, 28), generator=g, dtype=torch.uint8)
    test = torch.randint(0, 256, (8, 1, 28, 28), generator=g, dtype=torch.uint8)
    row = ifl.run(3, train, test)
    assert row["seed"] == 3 and row["steps"] == 2
    for key in ("before", "after", "after_k8", "uniform"):
        assert math.isfinite(row[key]) and 0 < row[key] < 20
    assert row["after_k8"] <= row["after"] + 0.05  # K = 8 draws: a bound at least as tight


def test_the_settings_are_the_notebooks(ifl):
    s = ifl.SETTINGS
    assert s["fit"] == {"steps": 250, "batch_size": 64, "lr": 5e-3, "warmup": 50}
    assert s["held_out_images"] == 500 and s["eval_seed"] == 1234


def test_the_flow_is_the_shipped_architecture_narrowed_and_recorded(ifl):
    """The flow is derived from ``ImageFlowConfig()`` (only widths and channel steps differ),
    and the committed results record the same settings."""
    shipped = ImageFlowConfig().as_dict()
    changed = {k for k, v in ifl.SETTINGS["flow"].items() if shipped[k] != v}
    assert changed == {"hidden", "n_channel"} and ifl.SETTINGS["flow"]["hidden"] == [16, 32, 32]
    data = json.loads((BENCHMARKS / "image_flows_live.json").read_text())
    assert data["settings"] == ifl.SETTINGS
