"""Importance-weighted bits/dim: K = 1 is the single-sample bound, the estimate is the direct
logsumexp of the draws (float64), and it decreases with K on a tiny model; bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from coursekit.flows import ImageRealNVP, dequantize, image_bits_per_dim
from coursekit.flows.importance import (
    importance_weighted_bits_per_dim,
    importance_weighted_log_prob,
)

LEVELS = 4  # few levels: wide dequantization cells, so the density varies inside each one


def tiny_model() -> ImageRealNVP:
    model = ImageRealNVP(
        image_shape=(1, 4, 4),
        n_scales=2,
        hidden=8,
        n_blocks=1,
        n_checker=2,
        n_channel=2,
        n_final=2,
    ).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.05)
    return model.eval()


def images(n: int = 40, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, LEVELS, (n, 1, 4, 4), generator=torch.Generator().manual_seed(seed))


def test_one_sample_is_the_single_sample_bound():
    model, k = tiny_model(), images()
    iw = importance_weighted_bits_per_dim(
        model, k, 1, batch_size=16, generator=torch.Generator().manual_seed(3), levels=LEVELS
    )
    single = image_bits_per_dim(
        model, k, batch_size=16, generator=torch.Generator().manual_seed(3), levels=LEVELS
    )
    assert abs(iw - single) < 1e-12


def test_equals_a_direct_logsumexp_of_the_draws():
    model, k = tiny_model(), images(10)
    n_samples = 5
    got = importance_weighted_log_prob(
        model,
        k,
        n_samples,
        batch_size=4,
        generator=torch.Generator().manual_seed(5),
        levels=LEVELS,
    )
    # the same draws, in the same order: per batch of 4, K draws of the whole batch
    g = torch.Generator().manual_seed(5)
    expected = []
    for start in range(0, len(k), 4):
        batch = k[start : start + 4]
        log_p = torch.stack(
            [
                model.log_prob(dequantize(batch, generator=g, dtype=torch.float64) / LEVELS)
                for _ in range(n_samples)
            ],
            dim=1,
        ).detach()
        # log (1/K) Σ_k exp(log p_k), written out with the largest term factored out
        m = log_p.max(dim=1, keepdim=True).values
        expected.append((m + torch.log(torch.exp(log_p - m).mean(dim=1, keepdim=True)))[:, 0])
        # Jensen, for these very draws: the log of the mean >= the mean of the logs
        assert bool((expected[-1] >= log_p.mean(dim=1) - 1e-12).all())
    assert got.dtype == torch.float64 and got.shape == (10,)
    assert torch.allclose(got, torch.cat(expected), rtol=0, atol=1e-10)
    bpd = importance_weighted_bits_per_dim(
        model,
        k,
        n_samples,
        batch_size=4,
        generator=torch.Generator().manual_seed(5),
        levels=LEVELS,
    )
    d = 16
    assert abs(bpd - float(-(got.mean() - d * math.log(LEVELS)) / (d * math.log(2)))) < 1e-12


def test_non_increasing_with_the_number_of_samples():
    model, k = tiny_model(), images(200, seed=2)
    bpd = {
        n: importance_weighted_bits_per_dim(
            model,
            k,
            n,
            batch_size=100,
            generator=torch.Generator().manual_seed(11),
            levels=LEVELS,
        )
        for n in (1, 4, 16)
    }
    # the gap K = 1 -> 16 is far above the Monte Carlo noise of these 200 images
    assert bpd[16] < bpd[4] < bpd[1]
    assert bpd[1] - bpd[16] > 0.1


def test_restores_training_mode_and_checks_its_arguments():
    model, k = tiny_model().train(), images(4)
    importance_weighted_log_prob(model, k, 2, levels=LEVELS)
    assert model.training
    with pytest.raises(ValueError, match="num_samples"):
        importance_weighted_log_prob(model, k, 0, levels=LEVELS)
    with pytest.raises(ValueError, match="batch_size"):
        importance_weighted_bits_per_dim(model, k, 2, batch_size=0, levels=LEVELS)
    with pytest.raises(ValueError, match="images"):
        importance_weighted_bits_per_dim(model, torch.zeros(0, 1, 4, 4), 2)
    with pytest.raises(ValueError, match="images"):
        importance_weighted_bits_per_dim(model, [[0, 1]], 2)
    with pytest.raises(ValueError, match="generator"):
        importance_weighted_log_prob(model, k, 2, generator=0)


def test_the_benchmark_script_on_three_images(tmp_path, monkeypatch):
    """benchmarks/iw_bits_per_dim.py on 3 synthetic images: its K = 1 figure is
    image_bits_per_dim's with the same seed, and the paired difference is recorded."""
    import json
    from types import SimpleNamespace

    from _benchmarks import import_benchmark

    from coursekit.pretrained import load_pretrained_mnist

    bench = import_benchmark("iw_bits_per_dim")
    k = torch.randint(0, 256, (3, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    k = k.to(torch.uint8)
    monkeypatch.setattr(
        bench, "load_mnist", lambda split: SimpleNamespace(images=k, source="synthetic")
    )
    out = tmp_path / "iw.json"
    threads = torch.get_num_threads()
    try:
        bench.main(["--ks", "1", "2", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)  # the script runs on one thread
    result = json.loads(out.read_text())
    assert result["n_images"] == 3 and [r["K"] for r in result["runs"]] == [1, 2]
    torch.set_num_threads(1)  # as the script: the float32 sums then add up in the same order
    try:
        single = image_bits_per_dim(
            load_pretrained_mnist(), k, generator=torch.Generator().manual_seed(bench.EVAL_SEED)
        )
    finally:
        torch.set_num_threads(threads)
    # the shipped model computes in float32: same noise, same figure up to float32 round-off
    assert abs(result["runs"][0]["bits_per_dim"] - single) < 1e-6 * abs(single)
    assert math.isfinite(result["runs"][1]["minus_K1"])
