"""Checkers for chapter 1, density estimation (slides: DENSITY ESTIMATION, eq. 1–4)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from scipy import stats

from coursekit.checkers._answers import as_float, close, fmt
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint
from coursekit.checkers._inputs import check_unchanged

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


# --------------------------------------------------------------------------------------------
# 1.5–1.7: a Monte Carlo normaliser, the held-out NLL with its standard error, early stopping
# --------------------------------------------------------------------------------------------

_SEE_B = "see notebook 01, section 4, '(b) An affordable normaliser'"


def _mc_cases() -> list[tuple[str, Callable, float, float, torch.Tensor]]:
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
        u_in = u.clone()
        got = as_float(call(fn, log_f, lo, hi, u_in), f"your log Ẑ for {name}")
        check_unchanged(u, u_in, "u")
        k, d = u.shape
        g = log_f(u)
        log_volume = d * math.log(hi - lo)
        want = float(torch.logsumexp(g, 0)) - math.log(k) + log_volume
        if close(got, want, rtol=1e-10, atol=1e-10):
            continue
        if not math.isfinite(got):
            raise Hint(
                f"{name}: got {got}; exp(log_f) overflowed. Work in log space: "
                f"log mean exp = logsumexp − log K ({_SEE_B})"
            )
        if close(got, want - log_volume, rtol=1e-10, atol=1e-10):
            raise Hint(
                f"{name}: the volume of the box is missing: a uniform point has density "
                f"1/(hi − lo)^d, so Ẑ = (hi − lo)^d · mean exp(log_f(u)) ({_SEE_B})"
            )
        if close(got, want + math.log(k), rtol=1e-10, atol=1e-10):
            raise Hint(f"{name}: you summed over the K points; Ẑ uses their mean ({_SEE_B})")
        if close(got, float(g.mean()) + log_volume, rtol=1e-10, atol=1e-10):
            raise Hint(
                f"{name}: the mean of log f is not the log of the mean of f (Jensen); "
                f"average exp(log_f), then take the log ({_SEE_B})"
            )
        if want < 700 and close(got, math.exp(want), rtol=1e-8):
            raise Hint(f"{name}: return log Ẑ, not Ẑ")
        raise Hint(f"{name}: got {fmt(got)}, expected log Ẑ over the given points ({_SEE_B})")
    return "log Ẑ = logsumexp(log f(u)) − log K + d·log(hi − lo), stable even for huge log f."


def _held_out() -> tuple[Callable, torch.Tensor]:
    x = torch.randn(40, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    model = stats.norm(0.3, 1.2)
    return (lambda t: torch.as_tensor(model.logpdf(t.detach().numpy()))), x


@checker("1.6", "held-out NLL with its standard error")
def check_nll_with_se(fn: Callable) -> str:
    """``fn(log_prob, x) -> (nll, se)``: the NLL (4) on held-out points ``x`` and the standard
    error of that mean, ``std(−log p(x_i)) / √n``."""
    log_prob, x = _held_out()
    x_in = x.clone()
    out = call(fn, log_prob, x_in)
    check_unchanged(x, x_in, "x")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Hint(f"return a pair (nll, se), got {type(out).__name__}")
    nll, se = as_float(out[0], "nll"), as_float(out[1], "se")
    terms = -log_prob(x)
    n = len(x)
    want = float(terms.mean())
    see = "see notebook 01, section 4, 'How close is each model?'"
    if not close(nll, want, rtol=1e-10):
        if close(nll, -want, rtol=1e-10):
            raise Hint(f"sign: the NLL is MINUS the mean log-density ({see})")
        if close(nll, want * n, rtol=1e-10):
            raise Hint(f"the NLL (4) is a mean over the n points, not a sum ({see})")
        raise Hint(f"nll = {fmt(nll)} is not −mean(log_prob(x)) ({see})")
    sample_std = [float(terms.std(correction=c)) for c in (1, 0)]
    if any(close(se, s / math.sqrt(n), rtol=1e-10) for s in sample_std):
        return f"NLL = {fmt(nll)} ± {fmt(se)} nats on {n} held-out points."
    if any(close(se, s, rtol=1e-10) for s in sample_std):
        raise Hint(f"that is the spread of the terms; the standard error divides it by √n ({see})")
    if any(close(se, s**2 / n, rtol=1e-10) for s in sample_std):
        raise Hint(f"that is the variance of the mean; take its square root ({see})")
    raise Hint(f"se = {fmt(se)} is not std(−log p(x_i))/√n ({see})")


def _early_stop_reference(values: list[float], patience: int) -> tuple[int, int]:
    best = 0
    for i, v in enumerate(values):
        if v < values[best]:
            best = i
        if i - best >= patience:
            return i, best
    return len(values) - 1, best


_EARLY_CASES = [
    ([5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 2.0], 3),
    ([5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 2.0], 5),
    ([4.0, 3.5, 3.1, 2.9, 2.8], 2),
    ([3.0, 2.0, 2.0, 2.0, 2.0, 1.0], 2),
    ([2.9, 2.88, 2.87, 2.9, 2.95, 3.0, 3.1, 3.05, 3.2], 4),
]


@checker("1.7", "early stopping on the held-out NLL")
def check_early_stopping(fn: Callable) -> str:
    """``fn(held_out, patience) -> (stop, best)``: walk the held-out NLL values in order, keep
    the index ``best`` of the lowest so far (a tie is not an improvement), and stop at the first
    ``i`` with ``i − best == patience``; without such ``i``, ``stop`` is the last index."""
    see = "see notebook 01, section 5, 'Equation (3) on a finite data set'"
    for values, patience in _EARLY_CASES:
        values_in = list(values)
        out = call(fn, values_in, patience)
        check_unchanged(list(values), values_in, "held_out")
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Hint(f"return a pair (stop, best) of indices, got {type(out).__name__}")
        stop, best = as_float(out[0], "stop"), as_float(out[1], "best")
        want_stop, want_best = _early_stop_reference(values, patience)
        if (stop, best) == (want_stop, want_best):
            continue
        case = f"held_out = {values}, patience = {patience}"
        ties = [i for i in range(1, len(values)) if values[i] == values[i - 1]]
        if ties and best > want_best:
            raise Hint(f"{case}: an equal value is not an improvement: keep the earlier best")
        if best == min(range(len(values)), key=values.__getitem__) and best != want_best:
            raise Hint(
                f"{case}: best = {best:g} is the minimum of the WHOLE curve; early stopping "
                f"cannot look at evaluations after it stopped ({see})"
            )
        if abs(stop - want_stop) == 1 and best == want_best:
            raise Hint(
                f"{case}: stop = {stop:g}, one off: stop at the first i with "
                f"i − best == patience ({see})"
            )
        raise Hint(f"{case}: got (stop, best) = ({stop:g}, {best:g}) ({see})")
    return "stops once the held-out NLL has not improved for `patience` evaluations."
