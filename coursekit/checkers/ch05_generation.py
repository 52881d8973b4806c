"""Checkers for chapter 5, generation (slides: INN – GÉNÉRATION, eq. 13–14).

5.3 sampling with a temperature; 5.4 samples and their log-density from one inverse pass.
The density and the loss (5.1, 5.2) and the KL of a reported NLL (5.5) are in
:mod:`coursekit.checkers.ch05`; exercise 5.6 (build and train) is in
:mod:`coursekit.checkers.ch05_train`. Tolerances follow the checking policy
(:func:`coursekit.checkers._answers.matches`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from coursekit.checkers._answers import as_pair, as_tensor, matches
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint
from coursekit.checkers.ch04 import random_couplings
from coursekit.flows import FlowSequence, standard_normal_log_prob
from coursekit.flows.base import LOG_2PI

# --------------------------------------------------------------------------------------------
# 5.3: sampling with a temperature
# --------------------------------------------------------------------------------------------


def _finite_samples(x: Tensor) -> Tensor:
    if not bool(torch.isfinite(x).all()):
        n_bad = int((~torch.isfinite(x)).sum())
        raise Hint(
            f"{n_bad} of your samples are NaN or infinite: draw ε with torch.randn, scale it "
            "by T and map it through inverse(z)"
        )
    return x


def _identity(z: Tensor) -> tuple[Tensor, Tensor]:
    return z, z.new_zeros(z.shape[0])


@checker("5.3", "sampling with a temperature")
def check_sample_with_temperature(fn: Callable) -> str:
    """``fn(inverse, n, dim, temperature, generator)``: ``x = f⁻¹(T·ε)``, ``ε ~ N(0, I)`` drawn
    in float32 (the dtype of the flow's weights, as the text says) with ``generator``."""
    n, dim = 20_000, 2
    for temp in (0.5, 1.0):
        out = call(fn, _identity, n, dim, temp, torch.Generator().manual_seed(11))
        if isinstance(out, tuple):
            raise Hint("inverse(z) returns (x, log_det): return only x")
        if isinstance(out, Tensor) and out.is_floating_point() and out.dtype != torch.float32:
            raise Hint(
                f"your samples are {out.dtype}: draw ε in float32 (torch's default dtype), the "
                "dtype of the flow's weights — a float64 ε makes a float32 flow fail with "
                "'mat1 and mat2 must have the same dtype'"
            )
        a = _finite_samples(as_tensor(out, (n, dim), "your sampler", numpy=False))
        b = as_tensor(
            call(fn, _identity, n, dim, temp, torch.Generator().manual_seed(11)),
            (n, dim),
            "your sampler",
            numpy=False,
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
            if abs(std - 1 / temp) < 0.03:
                raise Hint("multiply the noise by T, do not divide by it")
            raise Hint(f"with T = {temp} the latent samples should have std {temp}, got {std:.3f}")
    flow = FlowSequence(random_couplings(n_layers=2, dim=2, seed=8)).float()
    m = 4_000
    with torch.no_grad():
        x = call(fn, flow.inverse, m, 2, 0.7, torch.Generator().manual_seed(2))
        x = _finite_samples(as_tensor(x, (m, 2), "your sampler", numpy=False)).float()
        z = 0.7 * torch.randn(m, 2, generator=torch.Generator().manual_seed(2))
        fwd = flow(z)[0]
        z_back = flow(x)[0]
    if matches(x, fwd):
        raise Hint("generation uses the INVERSE f⁻¹ (noise → data), you called the forward")
    if matches(x, z):
        raise Hint("you returned the latent noise; map it through inverse(z)")
    if abs(float(z_back.std()) - 0.7) > 0.03:
        raise Hint(
            "f(x) of your samples does not look like T·ε: apply inverse(T·ε) and "
            "return its first output"
        )
    return "latent std = T, reproducible with a generator, mapped through f⁻¹."


# --------------------------------------------------------------------------------------------
# 5.4: samples and their log-density from one inverse pass
# --------------------------------------------------------------------------------------------


class InverseOnlyFlow(nn.Module):
    """A flow whose forward pass is counted (exercise 5.4 asks for none): ``inverse(z)`` gives
    ``(x, log|det ∂x/∂z|)``; ``flow(x)`` still works but is recorded in ``forward_calls``."""

    def __init__(self, flow: FlowSequence):
        super().__init__()
        self.flow = flow
        self.forward_calls = 0

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self.forward_calls += 1
        return self.flow(x)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.flow.inverse(z)

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p_X(x)`` by (14), through a (counted) forward pass."""
        z, log_det = self(x)
        return standard_normal_log_prob(z) + log_det


@checker("5.4", "samples and their log-density from one inverse pass")
def check_sample_with_log_prob(fn: Callable) -> str:
    """``fn(flow, z)`` = ``(x, log p_X(x))`` with ``(x, ld) = flow.inverse(z)`` and
    ``log p_X(x) = log N(z; 0, I) − ld`` (ld = log|det ∂x/∂z|), without a forward pass."""
    for seed, n_layers in ((9, 4), (10, 6)):
        flow = FlowSequence(random_couplings(n_layers=n_layers, dim=2, seed=seed))
        z = torch.randn(50, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        wrapped = InverseOnlyFlow(copy.deepcopy(flow))
        with torch.no_grad():
            x_out, lp_out = as_pair(call(fn, wrapped, z.clone()), "your function")
            x, ld_inv = flow.inverse(z)
            log_nz = standard_normal_log_prob(z)
            want = log_nz - ld_inv
        x_got = as_tensor(x_out, (50, 2), "your x")
        if matches(x_got, z):
            raise Hint("x is the latent noise itself: map it through flow.inverse(z)")
        if not matches(x_got, x):
            raise Hint("x should be flow.inverse(z)[0], the generated points")
        lp = as_tensor(lp_out, (50,), "your log-density")
        if matches(lp, want):
            if wrapped.forward_calls:
                raise Hint(
                    "the value is right, but you ran the flow forward again (flow(x) or "
                    "flow.log_prob(x)): the inverse pass already gives log|det ∂x/∂z|, so the "
                    "density of a sample costs nothing extra — use it"
                )
            continue
        variants = (
            (
                log_nz + ld_inv,
                "sign: inverse returns log|det ∂x/∂z|, and p_X(x) = p_Z(z)·|det ∂z/∂x| = "
                "p_Z(z)/|det ∂x/∂z|, so subtract it",
            ),
            (
                standard_normal_log_prob(x) - ld_inv,
                "the base density is evaluated at z (the noise you were given), not at x",
            ),
            (
                standard_normal_log_prob(x) + ld_inv,
                "the base density is evaluated at z (the noise you were given), not at x",
            ),
            (log_nz, "the Jacobian term is missing: subtract the inverse's log|det ∂x/∂z|"),
            (
                log_nz - ld_inv + LOG_2PI,
                "off by log(2π): the normalisation constant of N(0, I) in d = 2 is missing",
            ),
        )
        for value, hint in variants:
            if matches(lp, value):
                raise Hint(hint)
        raise Hint("log p_X(x) = log N(z; 0, I) − log|det ∂x/∂z|, with the log-det from inverse")
    return (
        "x = f⁻¹(z) and log p_X(x) = log N(z) − log|det ∂x/∂z|: a sample's density comes "
        "free with the inverse pass."
    )
