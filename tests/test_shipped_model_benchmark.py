"""benchmarks/shipped_model_bits_per_dim.py: the shipped model's test bits/dim by the course's
own evaluation; the committed result agrees with the model's record."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _benchmarks import BENCHMARKS, import_benchmark

from coursekit.pretrained import pretrained_mnist_metadata
from coursekit.train_mnist import EVAL_SEED

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_committed_figure_is_the_recorded_one_on_the_10000_test_images():
    data = json.loads((BENCHMARKS / "shipped_model_bits_per_dim.json").read_text())
    recorded = pretrained_mnist_metadata()
    assert data["n_images"] == recorded["test_images"] == 10_000
    assert data["eval_seed"] == recorded["eval_seed"] == EVAL_SEED
    assert data["recorded_test_bits_per_dim"] == recorded["test_bits_per_dim"]
    # the record keeps 3 decimals: the measured figure rounds to it
    assert round(data["bits_per_dim"], 3) == recorded["test_bits_per_dim"]


def test_measure_scores_images_with_the_shipped_model():
    bench = import_benchmark("shipped_model_bits_per_dim")
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 1, 28, 28), generator=g, dtype=torch.uint8)
    result = bench.measure(images)
    assert result["n_images"] == 4 and result["eval_seed"] == EVAL_SEED
    assert math.isfinite(result["bits_per_dim"]) and result["bits_per_dim"] > 0
