"""Checkers for chapter 1, density estimation (slides: DENSITY ESTIMATION, eq. 1–4).

1.1 the KL divergence of two Gaussians in closed form; 1.2 its Monte Carlo estimate; 1.3 the
NLL (4) of a Gaussian, differentiable in its parameters; 1.4 its minimiser; 1.5 a Monte Carlo
normaliser in log space. The held-out exercises 1.6 and 1.7 are in
:mod:`coursekit.checkers.ch01_held_out`.

Tolerances follow the checking policy (:func:`coursekit.checkers._answers.matches`): relative,
so a float32 constant or a numpy answer never rejects a right formula, while every conceptual
error (a sign, a factor n, a missing normalisation, n − 1 for n) moves the answer by far more.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from coursekit.checkers._answers import as_float, fmt, matches
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint, StudentError

_CASES = [(0.0, 1.0, 1.0, 2.0), (1.5, 0.5, -0.5, 1.0), (0.0, 3.0, 0.0, 1.0), (2.0, 1.0, 2.0, 1.0)]


def _kl(m1: float, s1: float, m2: float, s2: float) -> float:
    return math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


def _same(got: float, want: float) -> bool:
    """``got`` equals ``want`` to float32 rounding (absolute near 0, where KL can vanish)."""
    return abs(got - want) <= 1e-5 * (abs(want) + 1e-2)


@checker("1.1", "KL divergence between two 1-D Gaussians")
def check_kl_gaussians(fn: Callable[[float, float, float, float], Any]) -> str:
    """``fn(mu1, sigma1, mu2, sigma2) = KL(N(mu1, sigma1²) ‖ N(mu2, sigma2²))`` (eq. 1)."""
    for case in _CASES:
        got = as_float(call(fn, *case), f"kl_gaussians{case}")
        want = _kl(*case)
        if _same(got, want):
            continue
        m1, s1, m2, s2 = case
        where = f"for (mu1, sigma1, mu2, sigma2) = {case}"
        if _same(got, _kl(m2, s2, m1, s1)):
            raise Hint(
                f"you computed KL(q ‖ p) {where}: in eq (1) the expectation is under the FIRST "
                "distribution p = N(mu1, sigma1²); KL is not symmetric"
            )
        if _same(abs(got - want), 0.5):
            raise Hint(f"off by exactly 1/2 {where}: check the constant term (KL(p ‖ p) = 0)")
        if _same(got, _kl(m1, s1**0.5, m2, s2**0.5)):
            raise Hint(
                f"{where}: sigma1 and sigma2 are standard deviations, not variances "
                "(the variance is sigma²)"
            )
        if _same(got, _kl(m1, s1, m1, s2)) and m1 != m2:
            raise Hint(
                f"{where}: the mean difference is missing: E_p[(x − mu2)²] = sigma1² + (mu1 − mu2)²"
            )
        if _same(got, want - math.log(s2 / s1)) or _same(got, want - 2 * math.log(s2 / s1)):
            raise Hint(
                f"{where}: the log-ratio of the normalisations, log(sigma2/sigma1), is wrong "
                "or missing"
            )
        if got < 0:
            raise Hint(f"KL came out negative ({fmt(got)}) {where}; KL is always ≥ 0")
        raise Hint(
            f"wrong value {where}: got {fmt(got)}; write E_p[log p − log q] with both Gaussian "
            "log-densities and simplify"
        )
    return "KL matches the closed form on 4 pairs of Gaussians."


def _mc_data() -> tuple[Callable, Callable, Tensor]:
    p, q = stats.norm(0.0, 1.0), stats.norm(1.0, 2.0)
    log_p = lambda x: torch.as_tensor(p.logpdf(np.asarray(torch.as_tensor(x).detach())))
    log_q = lambda x: torch.as_tensor(q.logpdf(np.asarray(torch.as_tensor(x).detach())))
    x = torch.randn(20_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return log_p, log_q, x


@checker("1.2", "Monte Carlo estimate of the KL divergence")
def check_monte_carlo_kl(fn: Callable) -> str:
    """``fn(log_p, log_q, x)`` with ``x ~ p``: ``mean(log_p(x) − log_q(x))`` (eq. 1)."""
    log_p, log_q, x = _mc_data()
    got = as_float(call(fn, log_p, log_q, x.clone()), "your estimate")
    lp, lq = log_p(x), log_q(x)
    want = float((lp - lq).mean())
    exact = _kl(0.0, 1.0, 1.0, 2.0)
    if matches(got, want):
        return f"Monte Carlo KL = {fmt(got)} nats with 20,000 samples; closed form {fmt(exact)}."
    n = len(x)
    if matches(got, -want):
        raise Hint("sign: eq (1) is E_p[log p(x)] − E_p[log q(x)], yours is the opposite")
    if matches(got, want * n):
        raise Hint(
            f"off by a factor n = {n}: an expectation is estimated by the mean over the "
            "samples, not the sum"
        )
    if matches(got, float(-lq.mean())) or matches(got, float(lq.mean())):
        raise Hint(
            "that is the cross-entropy E_p[−log q] (or its negative): by (1) the KL subtracts "
            "the entropy term E_p[−log p], so average log p(x) − log q(x)"
        )
    if matches(got, float((lp.exp() - lq.exp()).mean())) or matches(
        got, float((lp.exp() / lq.exp()).mean())
    ):
        raise Hint("use log-densities: log_p and log_q already return log p(x) and log q(x)")
    if matches(got, float(lp.mean() / lq.mean())) or matches(got, float((lp / lq).mean())):
        raise Hint("KL is a mean of a DIFFERENCE of log-densities, not of a ratio of them")
    raise Hint(
        f"got {fmt(got)}, which is not the sample mean of log p(x) − log q(x) "
        "over the given samples x"
    )


def _gauss_data() -> Tensor:
    g = torch.Generator().manual_seed(1)
    return 2.0 + 1.5 * torch.randn(500, generator=g, dtype=torch.float64)


def _nll_and_grads(x: Tensor, mu: float, sigma: float) -> tuple[float, float, float]:
    """The NLL (4) of ``x`` under N(mu, sigma²) and its derivatives in mu and sigma."""
    r = x - mu
    nll = float((0.5 * (r / sigma) ** 2).mean()) + math.log(sigma) + 0.5 * math.log(2 * math.pi)
    d_mu = -float(r.mean()) / sigma**2
    d_sigma = 1.0 / sigma - float((r**2).mean()) / sigma**3
    return nll, d_mu, d_sigma


@checker("1.3", "NLL of a Gaussian model")
def check_gaussian_nll(fn: Callable) -> str:
    """``fn(x, mu, sigma) = −(1/n) Σ log N(x_i; mu, sigma²)`` (eq. 4), with ``mu`` and ``sigma``
    0-d float64 tensors that require gradients: the answer must be a tensor through which
    autograd reaches both (the NLL is what gradient descent minimises)."""
    x = _gauss_data()
    n = len(x)
    for m, s in [(2.0, 1.5), (-1.0, 0.3), (0.0, 1.0)]:
        where = f"for mu = {m}, sigma = {s}"
        mu = torch.tensor(m, dtype=torch.float64, requires_grad=True)
        sigma = torch.tensor(s, dtype=torch.float64, requires_grad=True)
        try:
            out = call(fn, x.clone(), mu, sigma)
        except StudentError as err:
            if "requires grad" in str(err) and "numpy" in str(err):
                raise Hint(
                    "numpy (or scipy) was given mu or sigma, which require gradients: numpy "
                    "cannot follow them. Section 3 minimises this NLL by gradient descent, so "
                    "compute it with torch operations (torch.log, not np.log)"
                ) from None
            raise
        got = as_float(out, f"gaussian_nll(x, {m}, {s})")
        want, d_mu, d_sigma = _nll_and_grads(x, m, s)
        if not matches(got, want):
            if matches(got, -want):
                raise Hint(f"sign {where}: the NLL of eq (4) is MINUS the mean log-likelihood")
            if matches(got, want * n):
                raise Hint(f"off by a factor n = {n} {where}: eq (4) averages over the data set")
            if matches(got - want, -0.5 * math.log(2 * math.pi) - math.log(s)):
                raise Hint(
                    f"off by a constant {where}: you dropped the normalisation log(σ√(2π)); "
                    "it depends on σ, so it matters when σ is learned"
                )
            if matches(got - want, -0.5 * math.log(2 * math.pi)):
                raise Hint(f"off by ½·log(2π) {where}: the normalisation constant is missing")
            if matches(got - want, -math.log(s)):
                raise Hint(
                    f"off by log σ {where}: the normalisation of N(mu, σ²) is σ√(2π); its "
                    "log σ depends on σ, so it matters when σ is learned"
                )
            if matches(got, _nll_and_grads(x, m, s**0.5)[0]):
                raise Hint(f"{where}: sigma is a standard deviation, not a variance")
            raise Hint(
                f"wrong value {where}: got {fmt(got)}; write −log N(x; mu, σ²) = (x − mu)²/(2σ²) "
                "+ log σ + ½·log(2π) and average it"
            )
        if not isinstance(out, Tensor) or not out.requires_grad:
            raise Hint(
                f"the value is right but carries no gradient {where}: section 3 minimises this "
                "NLL by gradient descent, so compute it with torch operations on mu and sigma "
                "(scipy, numpy, float() or .item() cut the graph)"
            )
        grads = torch.autograd.grad(out.sum(), [mu, sigma], allow_unused=True)
        g_mu, g_sigma = (None if g is None else float(g) for g in grads)
        for name, g, w in (("mu", g_mu, d_mu), ("sigma", g_sigma, d_sigma)):
            if g is not None and matches(g, w, scale=1.0):
                continue
            if name == "sigma" and g is not None and matches(g, w - 1.0 / s, scale=1.0):
                raise Hint(
                    f"the value is right but d NLL/d sigma misses 1/σ {where}: the log σ term "
                    "was computed outside autograd (math.log(sigma), float(sigma) or "
                    "torch.tensor(sigma)); use torch.log(sigma)"
                )
            raise Hint(
                f"the value is right but autograd does not reach {name} {where} "
                f"(got d NLL/d {name} = {g if g is None else fmt(g)}, expected {fmt(w)}): "
                f"{name} was turned into a plain number (float(), math.*, .item() or numpy)"
            )
    return "the NLL matches eq (4) for 3 parameter values, and its gradient reaches mu and sigma."


@checker("1.4", "maximum-likelihood Gaussian")
def check_gaussian_mle(fn: Callable) -> str:
    """``fn(x) -> (mu, sigma)`` minimising the NLL of eq (4) for a Gaussian model."""
    x = _gauss_data()
    out = call(fn, x.clone())
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Hint(f"return a pair (mu, sigma), got {type(out).__name__}")
    mu, sigma = as_float(out[0], "mu"), as_float(out[1], "sigma")
    n = len(x)
    m = float(x.mean())
    var = float(((x - m) ** 2).mean())
    if not matches(mu, m):
        if matches(mu, float(x.median())):
            raise Hint("mu is the median; the NLL minimiser is the mean (set ∂NLL/∂mu = 0)")
        raise Hint(f"mu = {fmt(mu)} is not the minimiser: set ∂NLL/∂mu = 0 and solve")
    if matches(sigma, math.sqrt(var)):
        return f"mu = {fmt(mu)}, sigma = {fmt(sigma)} (true values 2 and 1.5, n = {n})."
    if matches(sigma, math.sqrt(var * n / (n - 1))):
        raise Hint(
            "you used the unbiased (n − 1) estimator (torch.std's default); the NLL "
            "minimiser divides by n: use correction=0 (numpy: ddof=0)"
        )
    if matches(sigma, var) or matches(sigma, var * n / (n - 1)):
        raise Hint("you returned the variance; return the standard deviation sigma")
    if matches(sigma, float((x - m).abs().mean())):
        raise Hint(
            "that is the mean absolute deviation; ∂NLL/∂sigma = 0 gives the root of the mean "
            "squared deviation"
        )
    raise Hint(f"sigma = {fmt(sigma)} is not the minimiser: set ∂NLL/∂sigma = 0 and solve")


# --------------------------------------------------------------------------------------------
# 1.5: a Monte Carlo normaliser in log space
# --------------------------------------------------------------------------------------------


def _mc_cases() -> list[tuple[str, Callable, float, float, Tensor]]:
    g = torch.Generator().manual_seed(5)
    u2 = -6.0 + 12.0 * torch.rand(4_000, 2, generator=g, dtype=torch.float64)
    u1 = -3.0 + 6.0 * torch.rand(500, 1, generator=g, dtype=torch.float64)
    u3 = 2.0 * torch.rand(100, 3, generator=g, dtype=torch.float64)
    return [
        ("a 2-D Gaussian bump on [−6, 6]²", lambda x: -0.5 * (x**2).sum(1), -6.0, 6.0, u2),
        ("g(x) = 800 − x² on [−3, 3]", lambda x: 800.0 - (x**2).sum(1), -3.0, 3.0, u1),
        ("the constant g = 0.25 on [0, 2]³", lambda x: x.new_full((len(x),), 0.25), 0.0, 2.0, u3),
    ]


@checker("1.5", "a Monte Carlo estimate of the normaliser")
def check_mc_log_normalizer(fn: Callable) -> str:
    """``fn(log_f, lo, hi, u) = log Ẑ`` with ``Ẑ = (hi − lo)^d · mean_k exp(log_f(u_k))`` for
    ``u`` (K, d) uniform in ``[lo, hi]^d``: the importance-sampling normaliser of notebook 01."""
    for name, log_f, lo, hi, u in _mc_cases():
        got = as_float(call(fn, log_f, lo, hi, u.clone()), f"your log Ẑ for {name}")
        k, d = u.shape
        g = log_f(u)
        log_volume = d * math.log(hi - lo)
        want = float(torch.logsumexp(g, 0)) - math.log(k) + log_volume
        if matches(got, want, scale=1.0):
            continue
        if not math.isfinite(got):
            raise Hint(
                f"{name}: got {got}; exp(log_f) overflowed. Work in log space: "
                "log mean exp = logsumexp − log K"
            )
        if matches(got, want - log_volume, scale=1.0):
            raise Hint(
                f"{name}: the volume of the box is missing: a uniform point has density "
                "1/(hi − lo)^d, so Ẑ = (hi − lo)^d · mean exp(log_f(u))"
            )
        if matches(got, want + math.log(k), scale=1.0):
            raise Hint(f"{name}: you summed over the K points; Ẑ uses their mean")
        if matches(got, float(g.mean()) + log_volume, scale=1.0):
            raise Hint(
                f"{name}: the mean of log f is not the log of the mean of f (Jensen); "
                "average exp(log_f), then take the log"
            )
        if matches(got, want - log_volume + math.log(hi - lo), scale=1.0):
            raise Hint(
                f"{name}: the volume of the box in d = {d} dimensions is (hi − lo)^d, not hi − lo"
            )
        if want < 700 and matches(got, math.exp(want)):
            raise Hint(f"{name}: return log Ẑ, not Ẑ")
        raise Hint(f"{name}: got {fmt(got)}, expected log Ẑ over the given points")
    return "log Ẑ = logsumexp(log f(u)) − log K + d·log(hi − lo), stable even for huge log f."
