"""Checkers for chapter 1, density estimation (slides: DENSITY ESTIMATION, eq. 1–4).

1.1 the KL divergence of two Gaussians in closed form; 1.2 its Monte Carlo estimate; 1.3 the
NLL (4) of a Gaussian, differentiable in its parameters; 1.4 its minimiser; 1.5 a Monte Carlo
normaliser in log space; 1.6 two models compared on the same held-out points (the paired
standard error); 1.7 early stopping on a held-out curve.

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


# --------------------------------------------------------------------------------------------
# 1.6: two models on the same held-out points: the paired standard error
# --------------------------------------------------------------------------------------------


def paired_cases() -> list[tuple[str, Tensor, Tensor]]:
    """(name, log p_A(x_i), log p_B(x_i)) on the same n held-out points: a large per-point
    spread shared by both models (some points are hard for every model) and a small
    model-specific part, so the unpaired standard error is many times the paired one."""
    g = torch.Generator().manual_seed(16)
    out = []
    for name, n, shift, noise in (
        ("A better by a little", 400, 0.04, 0.1),
        ("B better by a little", 900, -0.03, 0.15),
        ("no real difference", 600, 0.004, 0.2),
    ):
        hard = 1.5 * torch.randn(n, generator=g, dtype=torch.float64) ** 2
        a = -2.8 - hard + noise * torch.randn(n, generator=g, dtype=torch.float64)
        b = -2.8 - hard - shift + noise * torch.randn(n, generator=g, dtype=torch.float64)
        out.append((name, a, b))
    return out


def paired_reference(log_p_a: Tensor, log_p_b: Tensor) -> tuple[float, float, str]:
    """``(diff, se, verdict)``: ``diff = mean(log p_A − log p_B)`` (nats, > 0: A better), its
    paired standard error ``std(d_i)/√n`` (n − 1 in the std), and ``"A"`` if diff > 2·se,
    ``"B"`` if diff < −2·se, else ``"neither"``."""
    d = log_p_a - log_p_b
    diff, se = float(d.mean()), float(d.std() / math.sqrt(len(d)))
    verdict = "A" if diff > 2 * se else "B" if diff < -2 * se else "neither"
    return diff, se, verdict


def _verdict(value: Any) -> str:
    if not isinstance(value, str):
        raise Hint(f"the verdict should be the string 'A', 'B' or 'neither', got {value!r}")
    verdict = value.strip().strip("'\"").lower()
    choices = {"a": "A", "b": "B", "neither": "neither"}
    if verdict not in choices:
        raise Hint(f"the verdict should be 'A', 'B' or 'neither', got {value!r}")
    return choices[verdict]


@checker("1.6", "which model is better? the paired standard error")
def check_paired_comparison(fn: Callable) -> str:
    """``fn(log_p_a, log_p_b) -> (diff, se, verdict)`` = :func:`paired_reference` for the
    per-point held-out log-likelihoods of two models on the same points (tensors (n,))."""
    ratios = []
    for name, a, b in paired_cases():
        out = call(fn, a.clone(), b.clone())
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise Hint(f"return a triple (diff, se, verdict), got {type(out).__name__}")
        diff, se = as_float(out[0], "diff"), as_float(out[1], "se")
        want_diff, want_se, want_verdict = paired_reference(a, b)
        n, d = len(a), a - b
        case = f"({name}, n = {n})"
        if not matches(diff, want_diff):
            if matches(diff, -want_diff):
                raise Hint(
                    f"sign of diff {case}: diff = mean(log p_A − log p_B), positive when A "
                    "gives the points a higher likelihood (an NLL difference has the other sign)"
                )
            if matches(diff, want_diff * n):
                raise Hint(f"diff {case} is a mean over the n points, not a sum")
            raise Hint(f"diff = {fmt(diff)} {case} is not mean(log p_A(x_i) − log p_B(x_i))")
        se_by = {c: float(d.std(correction=c)) / math.sqrt(n) for c in (0, 1)}
        if not any(matches(se, s) for s in se_by.values()):
            var_a, var_b = (float(v.var(correction=1)) / n for v in (a, b))
            var_a0, var_b0 = (float(v.var(correction=0)) / n for v in (a, b))
            unpaired = [
                math.sqrt(var_a + var_b),
                math.sqrt(var_a0 + var_b0),
                math.sqrt(var_a) + math.sqrt(var_b),
                math.sqrt(var_a0) + math.sqrt(var_b0),
            ]
            if any(matches(se, u) for u in unpaired):
                raise Hint(
                    f"se = {fmt(se)} {case} treats the two models' terms as independent (the "
                    "unpaired standard error): they are scored on the SAME points, whose "
                    "difficulty is shared; take the standard error of the per-point "
                    "differences d_i = log p_A(x_i) − log p_B(x_i)"
                )
            if any(matches(se, u) for u in (var_a, var_b, var_a0, var_b0)) or any(
                matches(se, math.sqrt(u)) for u in (var_a, var_b, var_a0, var_b0)
            ):
                raise Hint(
                    f"se {case} is one model's own standard error (or its square); the "
                    "comparison needs the standard error of the differences d_i"
                )
            if any(matches(se, s * math.sqrt(n)) for s in se_by.values()):
                raise Hint(
                    f"se {case} is the spread of the differences d_i; the standard error of "
                    "their mean divides it by √n"
                )
            if any(matches(se, s**2) for s in se_by.values()):
                raise Hint(f"se {case} is the variance of the mean; take its square root")
            if any(matches(se, s / math.sqrt(n)) for s in se_by.values()):
                raise Hint(f"se {case}: the standard error divides the std by √n, not by n")
            raise Hint(f"se = {fmt(se)} {case} is not the standard error of the mean difference")
        verdict = _verdict(out[2])
        if verdict != want_verdict:
            z = want_diff / want_se
            if want_verdict == "neither":
                raise Hint(
                    f"verdict {verdict!r} {case}: the difference is only {abs(z):.1f} standard "
                    "errors from 0, within 2 of them: the data cannot rank the models "
                    "('neither')"
                )
            if verdict == "neither":
                raise Hint(
                    f"verdict 'neither' {case}: with the paired standard error the difference "
                    f"is {abs(z):.1f} standard errors from 0, so the models can be ranked"
                )
            raise Hint(
                f"verdict {verdict!r} {case}: diff > 0 means A gives the held-out points the "
                "higher log-likelihood, so A is the better model (and B when diff < 0)"
            )
        unpaired_se = math.sqrt(float(a.var()) / n + float(b.var()) / n)
        ratios.append(unpaired_se / want_se)
    return (
        f"paired standard errors {min(ratios):.0f}–{max(ratios):.0f} times smaller than the "
        "unpaired ones: comparing on the same points cancels the points' shared difficulty."
    )


# --------------------------------------------------------------------------------------------
# 1.7: early stopping
# --------------------------------------------------------------------------------------------


def early_stop_reference(
    values: list[float], patience: int, ties_improve: bool = False, from_previous: bool = False
) -> tuple[int, int]:
    """``(stop, best)`` of early stopping; the two flags give two typical wrong rules (an
    equal value counted as an improvement; non-improvements counted against the previous
    value instead of the best one)."""
    best, waited = 0, 0
    for i, v in enumerate(values):
        if i > 0:
            better = v <= values[best] if ties_improve else v < values[best]
            if better:
                best = i
            if from_previous:
                waited = 0 if v < values[i - 1] else waited + 1
        if (waited if from_previous else i - best) >= patience:
            return i, best
    return len(values) - 1, best


#: (held_out, patience): a stop after a late minimum, a patience that outlasts the curve, a
#: curve that never stops (still improving), ties, a noisy rise, and a dip after the stop.
EARLY_CASES: list[tuple[list[float], int]] = [
    ([5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 2.0], 3),
    ([5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 2.0], 5),
    ([4.0, 3.5, 3.1, 2.9, 2.8], 2),
    ([3.0, 2.0, 2.0, 2.0, 2.0, 1.0], 2),
    ([2.9, 2.88, 2.87, 2.9, 2.95, 3.0, 3.1, 3.05, 3.2], 4),
    ([3.0, 2.5, 2.7, 2.6, 2.8, 2.9, 3.0, 3.1, 2.4, 2.3], 4),
    ([3.0, 2.6, 2.7, 2.8, 2.9, 2.95, 2.97, 2.99, 2.0], 4),
]


def _early_rules(values: list[float], patience: int) -> list[tuple[tuple[int, int], str]]:
    """(stop, best) of typical wrong rules on one curve, each with its hint."""
    n = len(values)
    stop, best = early_stop_reference(values, patience)
    argmin = min(range(n), key=values.__getitem__)
    last_min = max(i for i in range(n) if values[i] == values[argmin])
    return [
        (
            early_stop_reference(values, patience, ties_improve=True),
            "an equal value is not an improvement: keep the earlier best (compare with <, not <=)",
        ),
        (
            early_stop_reference(values, patience, from_previous=True),
            "count the evaluations since the BEST value so far, not since the last decrease: "
            "a value below the previous one but above the best is no improvement",
        ),
        (
            early_stop_reference(values, patience + 1),
            "you stop one evaluation late: stop at the first i with i − best == patience "
            "(not > patience)",
        ),
        (
            early_stop_reference(values, max(patience - 1, 0)),
            "you stop one evaluation early: stop at the first i with i − best == patience "
            "(patience evaluations after best, not patience − 1)",
        ),
        (
            (stop, argmin),
            "best is the minimum of the WHOLE curve; early stopping cannot look at "
            "evaluations after the stop: keep the best seen up to the stop",
        ),
        (
            (n - 1, argmin),
            "you scanned the whole curve and returned its minimum: early stopping stops "
            "at the first i with i − best == patience and keeps the best seen up to there",
        ),
        (
            (n - 1, last_min),
            "you scanned the whole curve and returned its minimum: early stopping stops "
            "at the first i with i − best == patience and keeps the best seen up to there",
        ),
        (
            (stop + 1, best + 1),
            "indices start at 0: held_out[0] is evaluation 0 (you returned counts, 1-based)",
        ),
    ]


@checker("1.7", "early stopping on the held-out NLL")
def check_early_stopping(fn: Callable) -> str:
    """``fn(held_out, patience) -> (stop, best)``: walk the held-out NLL values in order, keep
    the index ``best`` of the lowest so far (a tie is not an improvement), and stop at the first
    ``i`` with ``i − best == patience``; without such ``i``, ``stop`` is the last index."""
    answers: list[tuple[float, float]] = []
    for values, patience in EARLY_CASES:
        case = f"held_out = {values}, patience = {patience}"
        out = call(fn, list(values), patience)
        never_fires = early_stop_reference(values, patience)[0] == len(values) - 1
        if out is None and never_fires:
            raise Hint(
                f"{case}: your function returned None; here the stop rule never fires, so "
                "after the loop return (last index, best)"
            )
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Hint(f"return a pair (stop, best) of indices, got {type(out).__name__}")
        if out[0] is None or out[1] is None:
            raise Hint(
                f"{case}: got {tuple(out)!r}; stop and best are always indices (when the rule "
                "never fires, stop is the last index)"
            )
        answers.append((as_float(out[0], "stop"), as_float(out[1], "best")))
    wants = [early_stop_reference(v, p) for v, p in EARLY_CASES]
    if answers == wants:
        return "stops once the held-out NLL has not improved for `patience` evaluations."
    # a wrong rule reproduced on every curve names the mistake; otherwise the first curve
    # that goes wrong is diagnosed on its own
    rules = [_early_rules(v, p) for v, p in EARLY_CASES]
    curves = [v for v, _ in EARLY_CASES]
    if all(got[1] == v[want[1]] for got, want, v in zip(answers, wants, curves, strict=True)):
        return _fail("best is a VALUE of the curve, held_out[best]; return the index best")
    for stop, best in answers:
        if stop != int(stop) or best != int(best):
            return _fail(f"stop and best are indices (whole numbers), got ({stop:g}, {best:g})")
    for k, (_, hint) in enumerate(rules[0]):
        if all(r[k][0] == got for r, got in zip(rules, answers, strict=True)):
            return _fail(hint)
    i = next(i for i, (got, want) in enumerate(zip(answers, wants, strict=True)) if got != want)
    values, patience = EARLY_CASES[i]
    (stop, best), (want_stop, want_best) = (int(a) for a in answers[i]), wants[i]
    case = f"held_out = {values}, patience = {patience}"
    if want_stop == len(values) - 1 and stop != want_stop and best == want_best:
        raise Hint(
            f"{case}: the stop rule never fires on this curve, so stop is the LAST index, "
            f"len(held_out) − 1 = {want_stop}; got {stop}"
        )
    for wrong, hint in rules[i]:
        if (stop, best) == wrong:
            raise Hint(f"{case}: {hint}")
    if best == want_best:
        raise Hint(
            f"{case}: best = {best} is right but stop = {stop} is not: stop at the first i "
            f"with i − best == patience (here {want_stop})"
        )
    raise Hint(f"{case}: got (stop, best) = ({stop}, {best})")


def _fail(hint: str) -> str:
    raise Hint(hint)
