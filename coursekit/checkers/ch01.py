"""Checkers for chapter 1, density estimation (slides: DENSITY ESTIMATION, eq. 1–4)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from scipy import stats

from coursekit.checkers._common import Hint, as_float, call, checker, close, fmt

_CASES = [(0.0, 1.0, 1.0, 2.0), (1.5, 0.5, -0.5, 1.0), (0.0, 3.0, 0.0, 1.0), (2.0, 1.0, 2.0, 1.0)]


def _kl(m1: float, s1: float, m2: float, s2: float) -> float:
    return math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


@checker("1.1", "KL divergence between two 1-D Gaussians")
def check_kl_gaussians(fn: Callable[[float, float, float, float], float]) -> str:
    """``fn(mu1, sigma1, mu2, sigma2) = KL(N(mu1, sigma1²) ‖ N(mu2, sigma2²))`` (eq. 1)."""
    for case in _CASES:
        got = as_float(call(fn, *case), f"fn{case}")
        want = _kl(*case)
        if close(got, want, rtol=1e-7, atol=1e-9):
            continue
        m1, s1, m2, s2 = case
        if close(got, _kl(m2, s2, m1, s1)):
            raise Hint(
                "you computed KL(q ‖ p): in eq (1) the expectation is under the FIRST "
                "distribution p = N(mu1, sigma1²); KL is not symmetric"
            )
        if close(got - want, 0.5) or close(got - want, -0.5):
            raise Hint("off by exactly 1/2: check the constant term (KL(p ‖ p) must be 0)")
        if got < 0:
            raise Hint(f"KL came out negative ({fmt(got)}) for {case}; KL is always ≥ 0")
        raise Hint(
            f"wrong value for (mu1, sigma1, mu2, sigma2) = {case}: got {fmt(got)}; "
            "write E_p[log p − log q] with both Gaussian log-densities and simplify"
        )
    return "KL matches the closed form on 4 pairs of Gaussians."


def _mc_data() -> tuple[Callable, Callable, torch.Tensor]:
    p, q = stats.norm(0.0, 1.0), stats.norm(1.0, 2.0)
    log_p = lambda x: torch.as_tensor(p.logpdf(x.detach().numpy()))
    log_q = lambda x: torch.as_tensor(q.logpdf(x.detach().numpy()))
    x = torch.randn(20_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return log_p, log_q, x


@checker("1.2", "Monte Carlo estimate of the KL divergence")
def check_monte_carlo_kl(fn: Callable) -> str:
    """``fn(log_p, log_q, x)`` with ``x ~ p``: ``mean(log_p(x) − log_q(x))`` (eq. 1)."""
    log_p, log_q, x = _mc_data()
    got = as_float(call(fn, log_p, log_q, x.clone()), "your estimate")
    want = float((log_p(x) - log_q(x)).mean())
    exact = _kl(0.0, 1.0, 1.0, 2.0)
    if close(got, want, rtol=1e-8):
        return f"Monte Carlo KL = {fmt(got)} nats with 20,000 samples; closed form {fmt(exact)}."
    if close(got, -want, rtol=1e-8):
        raise Hint("sign: eq (1) is E_p[log p(x)] − E_p[log q(x)], yours is the opposite")
    if close(got, want * len(x), rtol=1e-8):
        raise Hint(
            f"off by a factor n = {len(x)}: an expectation is estimated by the mean "
            "over the samples, not the sum"
        )
    if close(got, float((log_p(x).exp() - log_q(x).exp()).mean()), rtol=1e-8):
        raise Hint("use log-densities: log_p and log_q already return log p(x) and log q(x)")
    raise Hint(
        f"got {fmt(got)}, which is not the sample mean of log p(x) − log q(x) "
        "over the given samples x"
    )


def _gauss_data() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return 2.0 + 1.5 * torch.randn(500, generator=g, dtype=torch.float64)


@checker("1.3", "NLL of a Gaussian model")
def check_gaussian_nll(fn: Callable) -> str:
    """``fn(x, mu, sigma) = −(1/n) Σ log N(x_i; mu, sigma²)`` (eq. 4)."""
    x = _gauss_data()
    for mu, sigma in [(0.0, 1.0), (2.0, 1.5), (-1.0, 0.3)]:
        got = as_float(call(fn, x.clone(), mu, sigma), f"fn(x, {mu}, {sigma})")
        want = float(-stats.norm(mu, sigma).logpdf(x.numpy()).mean())
        if close(got, want, rtol=1e-9):
            continue
        if close(got, -want, rtol=1e-9):
            raise Hint("sign: the NLL of eq (4) is MINUS the mean log-likelihood")
        if close(got, want * len(x), rtol=1e-9):
            raise Hint(f"off by a factor n = {len(x)}: eq (4) averages over the data set")
        if close(got - want, -0.5 * math.log(2 * math.pi) - math.log(sigma), rtol=1e-9):
            raise Hint(
                "off by a constant: you dropped the normalisation log(σ√(2π)); it "
                "depends on σ, so it matters when σ is learned"
            )
        if close(got - want, -0.5 * math.log(2 * math.pi), rtol=1e-9):
            raise Hint("off by ½·log(2π): the normalisation constant is missing")
        sq = stats.norm(mu, sigma**0.5).logpdf(x.numpy()).mean()
        if close(got, float(-sq), rtol=1e-9):
            raise Hint("σ is a standard deviation, not a variance")
        raise Hint(
            f"wrong value for mu={mu}, sigma={sigma}: got {fmt(got)}; compare with "
            "scipy.stats.norm(mu, sigma).logpdf"
        )
    return "NLL matches −mean(scipy.stats.norm.logpdf) for 3 parameter values."


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
    if not close(mu, m, rtol=1e-9):
        raise Hint(f"mu = {fmt(mu)} is not the minimiser: set ∂NLL/∂mu = 0 and solve")
    if close(sigma, math.sqrt(var), rtol=1e-9):
        return f"mu = {fmt(mu)}, sigma = {fmt(sigma)} (true values 2 and 1.5, n = {n})."
    if close(sigma, math.sqrt(var * n / (n - 1)), rtol=1e-9):
        raise Hint(
            "you used the unbiased (n − 1) estimator (torch.std's default); the NLL "
            "minimiser divides by n: use unbiased=False / correction=0"
        )
    if close(sigma, var, rtol=1e-9):
        raise Hint("you returned the variance; return the standard deviation sigma")
    raise Hint(f"sigma = {fmt(sigma)} is not the minimiser: set ∂NLL/∂sigma = 0 and solve")


@checker("1.5", "grid points in 784 dimensions")
def check_grid_points(fn: Callable[[], float]) -> str:
    """``fn()`` = log10 of the number of points of a 100-per-axis grid in 784-D (MNIST)."""
    raw = call(fn)
    if isinstance(raw, int) and raw == 100**784:
        return "100^784 = 10^1568 points: normalising on a grid is hopeless in 784-D."
    got = as_float(raw)
    if close(got, 1568.0, rtol=1e-9, atol=1e-6):
        return "10^1568 points (about 10^80 atoms in the universe): a grid cannot scale."
    if close(got, 784 * 100) or close(got, math.log10(784 * 100)):
        raise Hint(
            "a grid is a Cartesian product: m points per axis in D dimensions give "
            "m·m·…·m points, not m·D"
        )
    if close(got, 4.0) or close(got, 1e4):
        raise Hint("that is the 2-D grid of the lecture; the question is about D = 784")
    if got > 1e4:
        raise Hint("return the base-10 logarithm of the number of points")
    raise Hint(
        f"got {fmt(got)}; count the points of a grid with 100 values per axis in "
        "784 dimensions, then take log10"
    )
