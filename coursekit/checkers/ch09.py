"""Checkers for chapter 9, beyond density estimation (beyond the slides): the reverse-KL
loss, the importance-weighted estimate of log Z, a conditional coupling layer, the triangular
(Knothe–Rosenblatt) map of a correlated Gaussian, and Hutchinson's trace estimator."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from coursekit.checkers._answers import as_float, as_pair, as_tensor, close
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint
from coursekit.flows import RealNVP, standard_normal_log_prob
from coursekit.reverse_kl import Wells, importance_log_z, reverse_kl_loss

_F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_flow(seed: int = 0) -> RealNVP:
    """A float64 RealNVP(2) with 4 couplings and random, non-identity weights."""
    torch.manual_seed(seed)
    flow = RealNVP(2, n_layers=4, hidden=(16,)).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return flow


def wells() -> Wells:
    """The four wells of notebook 09 (centres (±3, ±3), width 0.5)."""
    return Wells([[-3, -3], [3, 3], [3, -3], [-3, 3]], 0.5)


@checker("9.1", "the reverse-KL loss")
def check_reverse_kl_loss(fn: Callable) -> str:
    """``fn(flow, energy, eps)`` = ``mean(log q(x) + E(x))`` with ``x = flow.inverse(eps)[0]``."""
    target = wells()
    for seed in (0, 1):
        flow = random_flow(seed)
        eps = torch.randn(512, 2, generator=_gen(seed + 5), dtype=_F64)
        got = as_float(call(fn, flow, target.energy, eps.clone()), "your loss")
        with torch.no_grad():
            want = float(reverse_kl_loss(flow, target.energy, eps))
        if close(got, want, rtol=1e-9, atol=1e-9):
            continue
        x, log_det = flow.inverse(eps)
        with torch.no_grad():
            log_n = standard_normal_log_prob(eps)
            energy = target.energy(x)
            variants = {
                "the log-det is missing: log q(x) = log N(eps; 0, I) - log|det dx/deps|": (
                    log_n + energy
                ),
                "sign of the log-det: x = f⁻¹(eps) stretches space by |det dx/deps|, so "
                "log q(x) = log N(eps; 0, I) MINUS log|det dx/deps|": log_n + log_det + energy,
                "sign of the energy: p(x) is proportional to exp(-E(x)), so -log p(x) = "
                "E(x) + log Z and the loss adds +E(x)": log_n - log_det - energy,
            }
            for hint, value in variants.items():
                if close(got, float(value.mean()), rtol=1e-9, atol=1e-9):
                    raise Hint(hint)
            if close(got, float((log_n - log_det + energy).sum()), rtol=1e-9, atol=1e-9):
                raise Hint("you summed over the batch: the loss is the Monte Carlo MEAN")
        raise Hint(
            "wrong value: x, log_det = flow.inverse(eps); log q = log N(eps; 0, I) - log_det; "
            "return the mean of log q + E(x)"
        )
    return "KL(q || p) - log Z = E_eps[log q(x) + E(x)], x = f⁻¹(eps): no samples of p needed."


@checker("9.2", "the importance-weighted estimate of log Z")
def check_iw_log_z(fn: Callable) -> str:
    """``fn(log_w)`` = ``(log mean exp(log_w), se)`` with the delta-method SE."""
    for seed, shift in ((0, -5.0), (1, 800.0), (2, -900.0)):
        log_w = 2.0 * torch.randn(400, generator=_gen(seed), dtype=_F64) + shift
        value = call(fn, log_w.clone())
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise Hint(f"return a pair (log_z, standard_error), got {type(value).__name__}")
        got, got_se = as_float(value[0], "your log Z"), as_float(value[1], "your standard error")
        want = importance_log_z(log_w)
        if not math.isfinite(got):
            raise Hint(
                "your log Z is not finite: the weights exp(log_w) overflow; use torch.logsumexp "
                "(subtract the largest log-weight before exponentiating)"
            )
        if not close(got, want.mean, rtol=1e-9, atol=1e-9):
            if close(got, float(log_w.mean()), rtol=1e-9, atol=1e-9):
                raise Hint(
                    "you averaged the log-weights: that is a lower bound (Jensen), not log Z; "
                    "log Z_hat = log of the mean of the weights"
                )
            if close(got, float(torch.logsumexp(log_w, 0)), rtol=1e-9, atol=1e-9):
                raise Hint("log of the SUM of the weights: subtract log n to get the mean")
            raise Hint("wrong log Z: log Z_hat = log((1/n) sum_i exp(log_w_i))")
        if not close(got_se, want.se, rtol=1e-6, atol=1e-12):
            if close(got_se, float(log_w.std() / math.sqrt(len(log_w))), rtol=1e-6):
                raise Hint(
                    "standard error: that is the SE of the mean of log w; the delta method "
                    "gives sd(w) / (sqrt(n) * mean(w)) for log of the mean of w"
                )
            raise Hint("wrong standard error: sd(w) / (sqrt(n) * mean(w)), w rescaled if needed")
    return "log Z_hat = log mean(w) with SE sd(w) / (sqrt(n) mean(w)), overflow-safe."


def conditional_net(seed: int = 0) -> torch.nn.Module:
    """An MLP ``[x1, c] (batch, 2) -> [s, t] (batch, 2)`` in float64, random weights."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)
    ).double()


@checker("9.3", "a conditional coupling layer")
def check_conditional_coupling(fn: Callable) -> str:
    """``fn(x, c, net)`` = ``(z, log_det)``: z1 = x1, z2 = x2·exp(s) + t, (s, t) = net([x1, c])."""
    for seed in (0, 1):
        net = conditional_net(seed)
        x = torch.randn(32, 2, generator=_gen(seed + 7), dtype=_F64)
        c = 3 * torch.rand(32, 1, generator=_gen(seed + 8), dtype=_F64)
        z, log_det = as_pair(call(fn, x.clone(), c.clone(), net))
        z = as_tensor(z, (32, 2), "your z")
        log_det = as_tensor(log_det, (32,), "your log_det")
        with torch.no_grad():
            s, t = net(torch.cat([x[:, :1], c], dim=1)).chunk(2, dim=1)
            want = torch.cat([x[:, :1], x[:, 1:] * s.exp() + t], dim=1)
            if not close(z[:, 0], x[:, 0], rtol=1e-9, atol=1e-9):
                raise Hint(
                    "z1 must be x1, unchanged: the kept half is what s and t are computed from"
                )
            if not close(z, want, rtol=1e-9, atol=1e-9):
                s2, t2 = net(torch.cat([x[:, 1:], c], dim=1)).chunk(2, dim=1)
                if close(z[:, 1:], x[:, 1:] * s2.exp() + t2, rtol=1e-9, atol=1e-9):
                    raise Hint("feed the KEPT half x1 (and c) to net, not the changed half x2")
                if close(z[:, 1:], (x[:, 1:] - t) * (-s).exp(), rtol=1e-9, atol=1e-9):
                    raise Hint("that is the inverse layer: forward is z2 = x2 * exp(s) + t")
                raise Hint("wrong z2: (s, t) = net(cat([x1, c])).chunk(2, 1); z2 = x2 * exp(s) + t")
            if close(log_det, -s[:, 0], rtol=1e-9, atol=1e-9):
                raise Hint("sign of the log-det: dz2/dx2 = exp(s), so log|det| = +s")
            if not close(log_det, s[:, 0], rtol=1e-9, atol=1e-9):
                raise Hint("wrong log-det: the Jacobian is triangular with diagonal (1, exp(s))")
    return "the context enters only through s and t: a bijection of x at every c, log|det| = sum s."


@checker("9.4", "the triangular map of a correlated Gaussian")
def check_triangular_gaussian(fn: Callable) -> str:
    """``fn(x, s1, s2, rho)`` = ``T(x)`` for ``N(0, [[s1², ρ s1 s2], [ρ s1 s2, s2²]])``."""
    for seed, (s1, s2, rho) in enumerate(((1.0, 2.0, 0.6), (0.5, 1.5, -0.8), (2.0, 1.0, 0.0))):
        x = torch.randn(64, 2, generator=_gen(seed + 20), dtype=_F64) * torch.tensor([s1, s2])
        z = as_tensor(call(fn, x.clone(), s1, s2, rho), (64, 2), "your map")
        z1 = x[:, 0] / s1
        cond_mean = rho * s2 / s1 * x[:, 0]
        cond_sd = s2 * math.sqrt(1 - rho**2)
        want = torch.stack([z1, (x[:, 1] - cond_mean) / cond_sd], dim=1)
        if close(z, want, rtol=1e-9, atol=1e-9):
            continue
        if not close(z[:, 0], z1, rtol=1e-9, atol=1e-9):
            if close(z[:, 0], (x[:, 0] - rho * s1 / s2 * x[:, 1]) / (s1 * math.sqrt(1 - rho**2))):
                raise Hint(
                    "you conditioned x1 on x2: the lower-triangular map maps x1 by its MARGINAL "
                    "CDF first, then x2 by its conditional CDF given x1"
                )
            raise Hint("z1 = Φ⁻¹(F_1(x1)): for x1 ~ N(0, s1²) that is x1 / s1")
        if close(z[:, 1], x[:, 1] / s2, rtol=1e-9, atol=1e-9):
            raise Hint(
                "z2 used the marginal of x2: it must use the CONDITIONAL law of x2 given x1, "
                "N(rho s2 / s1 x1, s2^2 (1 - rho^2))"
            )
        if close(z[:, 1], (x[:, 1] - cond_mean) / s2, rtol=1e-9, atol=1e-9):
            raise Hint("the conditional standard deviation is s2 sqrt(1 - rho^2), not s2")
        raise Hint("wrong z2: Φ⁻¹(F_2|1(x2 | x1)) with the conditional mean and sd of x2")
    return (
        "T(x) = (x1 / s1, (x2 - rho s2/s1 x1) / (s2 sqrt(1 - rho^2))): whitening by a "
        "Cholesky factor."
    )


def random_field(seed: int = 0) -> torch.nn.Module:
    """A float64 MLP R³ → R³ (a velocity field at a fixed time)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)
    ).double()


@checker("9.5", "Hutchinson's trace estimator")
def check_hutchinson(fn: Callable) -> str:
    """``fn(v, x, eps)`` = ``epsᵀ (∂v/∂x) eps`` per row; (batch,)."""
    for seed in (0, 1):
        v = random_field(seed)
        x = torch.randn(16, 3, generator=_gen(seed + 30), dtype=_F64)
        eps = torch.randn(16, 3, generator=_gen(seed + 31), dtype=_F64)
        got = as_tensor(call(fn, v, x.clone(), eps.clone()), (16,), "your estimate")
        jac = torch.stack([torch.autograd.functional.jacobian(v, xi) for xi in x])  # (16, 3, 3)
        want = torch.einsum("bi,bij,bj->b", eps, jac, eps)
        if close(got, want, rtol=1e-9, atol=1e-9):
            continue
        with torch.no_grad():
            if close(got, (eps * v(x)).sum(1), rtol=1e-9, atol=1e-9):
                raise Hint(
                    "eps . v(x) has no derivative in it: use the Jacobian, eps^T (dv/dx) eps"
                )
        if close(got, torch.diagonal(jac, dim1=1, dim2=2).sum(1), rtol=1e-9, atol=1e-9):
            raise Hint(
                "that is the exact trace: the exercise asks for the one-vector estimate "
                "eps^T (dv/dx) eps with the given eps"
            )
        if close(got.sum(), want.sum(), rtol=1e-9, atol=1e-9) or close(
            got, want.sum().expand(16), rtol=1e-9, atol=1e-9
        ):
            raise Hint("return one estimate per row (batch,), not their sum")
        raise Hint(
            "wrong value: u = eps^T (dv/dx) by one vector-Jacobian product, then sum(u * eps)"
        )
    return "eps^T (dv/dx) eps: unbiased for the trace when E[eps eps^T] = I, one backward pass."
