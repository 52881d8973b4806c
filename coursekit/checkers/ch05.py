"""Checkers for chapter 5, RealNVP on toy data (slides: INN – ENTRAÎNEMENT, GÉNÉRATION,
EXEMPLE (4 modes), eq. 14)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import Tensor

from coursekit.checkers._common import (
    Hint,
    as_float,
    as_tensor,
    call,
    checker,
    close,
    fmt,
)
from coursekit.checkers.ch04 import random_couplings
from coursekit.datasets import four_modes
from coursekit.flows import FlowSequence, standard_normal_log_prob

#: the test NLL (nats) reported for a RealNVP on the 4-mode data in exercise 5.5
REPORTED_NLL = 3.05


@checker("5.1", "log p_X(x) from z and the log-det (eq 14)")
def check_flow_log_prob(fn: Callable) -> str:
    """``fn(z, log_det) = log N(z; 0, I) + log_det``; z (batch, d), log_det (batch,)."""
    g = torch.Generator().manual_seed(0)
    for d in (2, 5):
        z = torch.randn(20, d, generator=g, dtype=torch.float64)
        ld = torch.randn(20, generator=g, dtype=torch.float64)
        out = call(fn, z.clone(), ld.clone())
        if isinstance(out, Tensor) and out.shape == (20, d):
            raise Hint("sum log N(z_j; 0, 1) over the d features: return shape (batch,)")
        got = as_tensor(out, (20,), "your log-density")
        want = standard_normal_log_prob(z) + ld
        if close(got, want, rtol=1e-9, atol=1e-10):
            continue
        if close(got, want - ld, rtol=1e-9, atol=1e-10):
            raise Hint("forgot the Jacobian term: add log_det (eq 14)")
        if close(got, want - 2 * ld, rtol=1e-9, atol=1e-10):
            raise Hint("sign of the log-det: log p_X(x) = log p_Z(f(x)) + log|det J_f(x)|")
        off = 0.5 * d * math.log(2 * math.pi)
        if close(got - want, torch.full_like(got, off), rtol=1e-9):
            raise Hint(
                f"off by (d/2)·log(2π) = {off:.4f} for d = {d}: the normalisation "
                "constant of N(0, I) is missing"
            )
        raise Hint(f"wrong value for d = {d}: log N(z; 0, I) = −½‖z‖² − (d/2)·log(2π)")
    return "log p_X = log N(f(x); 0, I) + log|det J_f(x)| for d = 2 and d = 5."


def _nll_flow() -> tuple[FlowSequence, Tensor]:
    flow = FlowSequence(random_couplings(n_layers=4, dim=2, seed=3))
    x = four_modes().sample(256, generator=torch.Generator().manual_seed(4))
    return flow, x


@checker("5.2", "the NLL loss of eq (14)")
def check_nll_loss(fn: Callable) -> str:
    """``fn(flow, x)``: ``−mean_i [log N(f(x_i)) + log|det J_f(x_i)|]``, differentiable."""
    flow, x = _nll_flow()
    out = call(fn, copy.deepcopy(flow), x.clone())
    if isinstance(out, float):
        raise Hint(
            "return a tensor connected to the graph (no .item()), so that "
            "loss.backward() can train the flow"
        )
    got = as_float(out, "your loss")
    if isinstance(out, Tensor) and not out.requires_grad:
        raise Hint(
            "the loss is detached from the flow's parameters (torch.no_grad or "
            ".detach()?): loss.backward() could not train it"
        )
    with torch.no_grad():
        z, ld = flow(x)
    lp = standard_normal_log_prob(z) + ld
    want = float(-lp.mean())
    if close(got, want, rtol=1e-9):
        return "−mean[log N(f(x); 0, I) + log|det J_f(x)|], differentiable (eq 14)."
    if close(got, -want, rtol=1e-9):
        raise Hint("sign: the loss is the NEGATIVE mean log-likelihood")
    if close(got, want * len(x), rtol=1e-9):
        raise Hint(f"off by a factor {len(x)}: average over the batch, do not sum")
    if close(got, float(-standard_normal_log_prob(z).mean()), rtol=1e-9):
        raise Hint("the log-det term of eq (14) is missing")
    if close(got, float(-(standard_normal_log_prob(z) - ld).mean()), rtol=1e-9):
        raise Hint("sign of the log-det: log p_X = log p_Z(f(x)) + log|det J_f(x)|")
    raise Hint(
        f"got {fmt(got)}; the flow's forward returns (z, log_det): combine them by "
        "eq (14) and average"
    )


def _finite_samples(x: Tensor) -> Tensor:
    if not bool(torch.isfinite(x).all()):
        n_bad = int((~torch.isfinite(x)).sum())
        raise Hint(
            f"{n_bad} of your samples are NaN or infinite: draw ε with torch.randn, scale it "
            "by T and map it through inverse(z)"
        )
    return x


@checker("5.3", "sampling with a temperature")
def check_sample_with_temperature(fn: Callable) -> str:
    """``fn(inverse, n, dim, temperature, generator)``: ``x = f⁻¹(T·ε)``, ``ε ~ N(0, I)``."""
    identity = lambda z: (z, z.new_zeros(z.shape[0]))
    n, dim = 20_000, 2
    for temp in (0.5, 1.0):
        a = call(fn, identity, n, dim, temp, torch.Generator().manual_seed(11))
        if isinstance(a, tuple):
            raise Hint("inverse(z) returns (x, log_det): return only x")
        a = _finite_samples(as_tensor(a, (n, dim), "your sampler", exact=False))
        b = as_tensor(
            call(fn, identity, n, dim, temp, torch.Generator().manual_seed(11)),
            (n, dim),
            "your sampler",
            exact=False,
        )
        if not torch.equal(a, b):
            raise Hint(
                "two calls with equally seeded generators differ: draw the noise "
                "with torch.randn(..., generator=generator)"
            )
        std = float(a.std())
        if abs(std - temp) > 0.03:
            if abs(std - temp**2) < 0.03 and temp != 1.0:
                raise Hint(
                    "the temperature scales the standard deviation, z = T·ε (variance "
                    "T²), not the variance"
                )
            if abs(std - 1.0) < 0.03:
                raise Hint("the temperature is ignored: multiply the noise by T")
            raise Hint(f"with T = {temp} the latent samples should have std {temp}, got {std:.3f}")
    flow = FlowSequence(random_couplings(n_layers=2, dim=2, seed=8)).float()
    m = 4_000
    with torch.no_grad():
        x = call(fn, flow.inverse, m, 2, 0.7, torch.Generator().manual_seed(2))
        x = _finite_samples(as_tensor(x, (m, 2), "your sampler", exact=False)).float()
        z = 0.7 * torch.randn(m, 2, generator=torch.Generator().manual_seed(2))
        fwd = flow(z)[0]
        z_back = flow(x)[0]
    if close(x, fwd, rtol=1e-5, atol=1e-6):
        raise Hint("generation uses the INVERSE f⁻¹ (noise → data), you called the forward")
    if close(x, z, rtol=1e-6, atol=1e-7):
        raise Hint("you returned the latent noise; map it through inverse(z)")
    if abs(float(z_back.std()) - 0.7) > 0.03:
        raise Hint(
            "f(x) of your samples does not look like T·ε: apply inverse(T·ε) and "
            "return its first output"
        )
    return "latent std = T, reproducible with a generator, mapped through f⁻¹."


@checker("5.4", "generation step by step")
def check_inverse_trajectory(fn: Callable) -> str:
    """``fn(layers, z)`` = ``[z, l_n⁻¹(z), …, x = l_1⁻¹(…l_n⁻¹(z))]`` (slide GÉNÉRATION)."""
    layers = random_couplings(n_layers=4, dim=2, seed=9)
    z = torch.randn(10, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        out = call(fn, copy.deepcopy(layers), z.clone())
        want = [z]
        for layer in reversed(layers):
            want.append(layer.inverse(want[-1])[0])
        wrong_order = [z]
        for layer in layers:
            wrong_order.append(layer.inverse(wrong_order[-1])[0])
    if not isinstance(out, (list, tuple)):
        raise Hint(f"return a list of tensors, got {type(out).__name__}")
    if len(out) != len(layers) + 1:
        raise Hint(f"expected {len(layers) + 1} tensors (z, then one per layer), got {len(out)}")
    steps = [as_tensor(s, tuple(z.shape), f"step {i} of your list") for i, s in enumerate(out)]
    if not close(steps[0], z, atol=1e-12):
        raise Hint("the list should start with z itself")
    if all(close(a, b, rtol=1e-9, atol=1e-10) for a, b in zip(steps, want, strict=True)):
        return "x_new = l_1⁻¹ ∘ … ∘ l_n⁻¹(z), every intermediate step right."
    if all(close(a, b, rtol=1e-9, atol=1e-10) for a, b in zip(steps, wrong_order, strict=True)):
        raise Hint(
            "wrong order: generation undoes the LAST layer first, l_n⁻¹, then l_{n−1}⁻¹, …, l_1⁻¹"
        )
    with torch.no_grad():
        fwd = layers[-1](z)[0]
    if close(steps[1], fwd, rtol=1e-9, atol=1e-10):
        raise Hint("use layer.inverse(z)[0], not layer(z) (the forward direction)")
    raise Hint("the steps are wrong: apply layer.inverse to the previous step, last layer first")


def _entropy_4modes() -> float:
    target = four_modes()
    x = target.sample(400_000, generator=torch.Generator().manual_seed(12))
    return float(-target.log_prob(x).mean())


@checker("5.5", "KL from a reported NLL")
def check_kl_from_nll(fn: Callable[[], float]) -> str:
    """``fn()`` = KL(p ‖ p_θ) in nats when the model's NLL on p is ``REPORTED_NLL``."""
    got = as_float(call(fn))
    h = _entropy_4modes()
    want = REPORTED_NLL - h
    if abs(got - want) < 0.01:
        return (
            f"KL = NLL − H(p) = {REPORTED_NLL} − {h:.3f} ≈ {want:.3f} nats: the NLL can "
            "never go below the entropy H(p)."
        )
    if abs(got + want) < 0.01:
        raise Hint("sign: by eq (1), KL = E_p[log p] − E_p[log p_θ] = NLL − H(p) ≥ 0")
    if abs(got - REPORTED_NLL) < 1e-9:
        raise Hint(
            "the NLL is only the second term of eq (1): subtract the entropy "
            "H(p) = −E_p[log p(x)] of the 4-mode data"
        )
    raise Hint(
        f"got {fmt(got)}; estimate E_p[log p(x)] with four_modes().log_prob on many "
        "samples (or in closed form) and use eq (1)"
    )
