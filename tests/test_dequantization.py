"""Variational dequantization: q(u | k) is a density (change of variable checked against an
autograd Jacobian), the ELBO and the importance-weighted bound agree, training improves it."""

from __future__ import annotations

import math

import pytest
import torch

from coursekit.flows import (
    DequantizedImageFlow,
    ImageRealNVP,
    VariationalDequantizer,
    importance_weighted_log_prob,
    negative_elbo,
)
from coursekit.metrics import bits_per_dim
from coursekit.training import fit


def randomised(module: torch.nn.Module, seed: int, scale: float = 0.3) -> torch.nn.Module:
    """Every parameter redrawn (the zero-initialised last layers too): no layer is the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64).to(p))
    return module


def tiny_images(n: int = 6, shape=(1, 4, 4), seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), generator=torch.Generator().manual_seed(seed))


def test_log_q_is_the_change_of_variable_of_the_sampler():
    """log q(u | k) = log N(ε) − log|det ∂u/∂ε|, with the Jacobian from autograd (float64)."""
    dq = randomised(VariationalDequantizer((1, 4, 4), hidden=5, n_couplings=3), 1, 0.1).double()
    images = tiny_images(3)
    eps = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        u, log_q = dq.transform(eps, images)
    assert 0.01 < float(u.min()) and float(u.max()) < 0.99  # away from σ's saturation
    for i in range(3):
        jac = torch.autograd.functional.jacobian(
            lambda e, i=i: dq.transform(e.view(1, 1, 4, 4), images[i : i + 1])[0].flatten(),
            eps[i].flatten(),
        )
        log_normal = -0.5 * float((eps[i] ** 2).sum()) - 8 * math.log(2 * math.pi)
        expected = log_normal - float(torch.linalg.slogdet(jac)[1])
        assert abs(float(log_q[i]) - expected) <= 1e-10
    assert bool(((u > 0) & (u < 1)).all())


def test_q_is_a_normalised_density_on_the_unit_interval():
    """One pixel: ∫_0^1 q(u | k) du = 1 by quadrature of the sampler's own (u, q) pairs."""
    dq = randomised(VariationalDequantizer((1, 1, 1), hidden=4, n_couplings=2), 3, 0.1).double()
    k = torch.tensor([[[[17]]]])
    eps = torch.linspace(-9, 9, 20_001, dtype=torch.float64).view(-1, 1, 1, 1)
    with torch.no_grad():
        u, log_q = dq.transform(eps, k.expand(len(eps), 1, 1, 1))
    u, q = u.flatten(), log_q.exp()
    assert bool((u[1:] > u[:-1]).all())  # monotone in ε: a bijection onto (0, 1)
    mass = float(torch.trapezoid(q, u))
    assert abs(mass - 1) < 1e-6


def test_sample_is_repeatable_and_depends_on_the_image():
    dq = randomised(VariationalDequantizer((1, 4, 4), hidden=4, n_couplings=2), 4)
    images = tiny_images(4)
    u1, lq1 = dq.sample(images, generator=torch.Generator().manual_seed(7))
    u2, lq2 = dq.sample(images, generator=torch.Generator().manual_seed(7))
    assert torch.equal(u1, u2) and torch.equal(lq1, lq2)
    u3, _ = dq.sample(255 - images, generator=torch.Generator().manual_seed(7))
    assert float((u3 - u1).detach().abs().max()) > 1e-3
    assert u1.shape == images.shape and lq1.shape == (4,)


def small_flow(shape=(1, 4, 4)) -> ImageRealNVP:
    return ImageRealNVP(
        image_shape=shape, n_scales=2, hidden=4, n_blocks=1, n_checker=1, n_channel=1, n_final=1
    )


def test_importance_weighted_k1_is_the_elbo_and_k_tightens_it():
    torch.manual_seed(0)
    model = DequantizedImageFlow(
        randomised(small_flow(), 5, 0.05).double(),
        randomised(VariationalDequantizer((1, 4, 4), hidden=4, n_couplings=2), 6, 0.1).double(),
    )
    images = tiny_images(200)
    with torch.no_grad():
        elbo = model.elbo(images, generator=torch.Generator().manual_seed(9))
    iw1 = importance_weighted_log_prob(model, images, 1, generator=torch.Generator().manual_seed(9))
    assert float((iw1 - elbo).abs().max()) <= 1e-10
    iw16 = importance_weighted_log_prob(
        model, images, 16, generator=torch.Generator().manual_seed(9)
    )
    gap = iw16 - elbo
    assert float(gap.mean()) > 5 * float(gap.std() / math.sqrt(len(gap)))


def test_training_the_dequantizer_with_the_flow_lowers_the_bound():
    torch.manual_seed(0)
    model = DequantizedImageFlow(small_flow((1, 8, 8)), VariationalDequantizer((1, 8, 8), hidden=8))
    images = tiny_images(256, (1, 8, 8), seed=1) // 64 * 64  # four grey levels: structure to learn
    held_out = images[:64]

    def bpd() -> float:
        with torch.no_grad():
            elbo = model.elbo(held_out, generator=torch.Generator().manual_seed(3))
        return float(bits_per_dim(elbo.mean(), 64, levels=256))

    before = bpd()
    fit(
        model,
        images.float(),
        steps=150,
        batch_size=32,
        lr=5e-3,
        loss_fn=negative_elbo,
        progress=False,
    )
    after = bpd()
    assert after < before - 0.5


def test_bad_inputs_are_named():
    dq = VariationalDequantizer((1, 4, 4), hidden=4, n_couplings=2)
    with pytest.raises(ValueError, match="images: expected a tensor"):
        dq.sample(torch.zeros(2, 1, 5, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="images: expected integer pixel values"):
        dq.sample(torch.full((2, 1, 4, 4), 0.5))
    with pytest.raises(ValueError, match="images: expected integer pixel values"):
        dq.sample(torch.full((2, 1, 4, 4), 256))
    with pytest.raises(ValueError, match="generator"):
        dq.sample(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), generator=3)
    with pytest.raises(ValueError, match="hidden: expected a positive integer"):
        VariationalDequantizer((1, 4, 4), hidden=0)
    with pytest.raises(ValueError, match="image_shape"):
        VariationalDequantizer((1, 4))
    with pytest.raises(ValueError, match="dequantizer: expected a VariationalDequantizer"):
        DequantizedImageFlow(small_flow(), torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="flow: expected a flow with log_prob"):
        DequantizedImageFlow(torch.nn.Linear(2, 2), dq)
