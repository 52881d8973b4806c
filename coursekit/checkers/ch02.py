"""Checkers for chapter 2, change of variable in 1-D (TRANSPORT DE MESURES (DIM. 1), eq. 5–10).

2.1 the density of −log U by theorem (9); 2.2 theorem (9) with the derivative from autograd;
2.3 inverse-CDF sampling; 2.4 the logistic log-density by (10), stable far in the tails;
2.5 the height of a transformed density; 2.6 eq. (10) through two maps (the chain rule).

Tolerances follow the checking policy (:func:`coursekit.checkers._answers.matches`): relative,
so a float32 computation or a numpy answer never rejects a right formula, while every
conceptual error (a missing or inverted Jacobian factor, a sign, a missing absolute value)
moves the answer by O(1). Answers may be tensors or numpy arrays (2.5: any number).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from scipy import stats
from torch import Tensor

from coursekit.checkers._answers import as_float, as_tensor, fmt, matches
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint

_SQRT_2PI = math.sqrt(2 * math.pi)


def _close(got: Tensor, want: Tensor) -> bool:
    """``matches`` for arrays, with NaN/inf only where ``want`` has them."""
    return matches(got, want)


@checker("2.1", "density of −log(U)")
def check_density_neg_log_uniform(fn: Callable[[Tensor], Tensor]) -> str:
    """``fn(z) = p_Z(z)`` for ``Z = −log U``, ``U ~ Uniform(0, 1)``, on a grid of z (the value
    at z = 0 exactly, the edge of the support, is not checked)."""
    z = torch.linspace(-2.0, 6.0, 81, dtype=torch.float64)
    got = as_tensor(call(fn, z.clone()), tuple(z.shape), "your density")
    want = torch.as_tensor(stats.expon.pdf(z.numpy()))
    inside = z.abs() > 1e-9  # p_Z(0) is a convention (1 or 0): not checked
    got, want, z = got[inside], want[inside], z[inside]
    pos = z > 0
    if _close(got, want):
        return "p_Z(z) = exp(−z) for z ≥ 0: Z is Exponential(1), as scipy.stats.expon says."
    if bool((got < 0).any()):
        raise Hint("negative density values: eq (9) uses the ABSOLUTE value |d f⁻¹/dz|")
    if _close(got[pos], want[pos]):
        raise Hint("right for z > 0, but Z = −log U is never negative: p_Z must be 0 for z < 0")
    if _close(got[pos], torch.exp(z[pos])):
        raise Hint("sign: f⁻¹(z) = exp(−z), so the density decreases with z")
    if _close(got[pos], torch.ones_like(got[pos])):
        raise Hint("p_U(f⁻¹(z)) = 1 is only the first factor of eq (9): multiply by |d f⁻¹(z)/dz|")
    unit = ((z >= 0) & (z <= 1)).to(z.dtype)
    if _close(got, want * unit) or _close(got, unit):
        raise Hint(
            "p_U is evaluated at f⁻¹(z) = exp(−z), which lies in (0, 1) for every z > 0, not at z"
        )
    raise Hint("does not match scipy.stats.expon.pdf; find f⁻¹, then apply eq (9)")


class _Spy:
    """An inverse map that records whether it was ever called on a tensor that autograd
    tracks (``requires_grad``): the sign that the derivative came from autograd."""

    def __init__(self, f: Callable[[Tensor], Tensor]) -> None:
        self.f = f
        self.tracked = False

    def __call__(self, t: Tensor) -> Tensor:
        if isinstance(t, Tensor) and t.requires_grad:
            self.tracked = True
        return self.f(t)


def _cases_1d() -> list[tuple[str, Callable, Callable, Tensor, Tensor]]:
    """(name, p_x, f_inv, z, exact p_Z(z)) for eq (9) checks."""
    normal = lambda x: torch.exp(-0.5 * x**2) / _SQRT_2PI
    uniform = lambda x: ((x >= 0) & (x <= 1)).to(x.dtype)
    z_pos = torch.linspace(0.05, 6.0, 60, dtype=torch.float64)
    z_all = torch.linspace(-5.0, 5.0, 61, dtype=torch.float64)
    return [
        (
            "exp of a normal (increasing)",
            normal,
            torch.log,
            z_pos,
            torch.as_tensor(stats.lognorm(s=1.0).pdf(z_pos.numpy())),
        ),
        (
            "f(x) = 1 − 2x (decreasing)",
            normal,
            lambda z: (1.0 - z) / 2.0,
            z_all,
            torch.as_tensor(stats.norm(1.0, 2.0).pdf(z_all.numpy())),
        ),
        (
            "logit of a uniform",
            uniform,
            torch.sigmoid,
            z_all,
            torch.as_tensor(stats.logistic.pdf(z_all.numpy())),
        ),
    ]


@checker("2.2", "density of f(X) by eq (9)")
def check_density_1d(fn: Callable) -> str:
    """``fn(p_x, f_inv, z) = p_X(f⁻¹(z)) · |d f⁻¹(z)/dz|`` for three (p_X, f) pairs, with the
    derivative from autograd (``f_inv`` must be called on a tensor that requires grad)."""
    for name, p_x, f_inv, z, want in _cases_1d():
        spy = _Spy(f_inv)
        got = as_tensor(call(fn, p_x, spy, z.clone()), tuple(z.shape), "your density")
        x = z.clone().requires_grad_(True)
        y = f_inv(x)
        (dinv,) = torch.autograd.grad(y.sum(), x)
        base = p_x(y.detach())
        if _close(got, want):
            if not spy.tracked:
                raise Hint(
                    f"{name}: the values are right, but d f⁻¹/dz did not come from autograd "
                    "(f_inv was never called on a tensor that requires grad): this exercise "
                    "practises torch.autograd.grad of f_inv(z).sum(); a finite difference is "
                    "only approximate"
                )
            continue
        if _close(got, base):
            raise Hint(
                f"{name}: you returned p_X(f⁻¹(z)) only — the Jacobian factor "
                "|d f⁻¹(z)/dz| of eq (9) is missing"
            )
        if _close(got, -want) or bool((got < 0).any()):
            raise Hint(
                f"{name}: negative density — f is decreasing here, so d f⁻¹/dz < 0; "
                "eq (9) takes its absolute value (eq 8)"
            )
        if _close(got, base / dinv.abs()):
            raise Hint(f"{name}: you divided by |d f⁻¹/dz| instead of multiplying by it")
        if _close(got, dinv.abs()):
            raise Hint(f"{name}: you returned |d f⁻¹/dz| only; multiply it by p_X(f⁻¹(z))")
        if _close(got, p_x(z) * dinv.abs()):
            raise Hint(f"{name}: p_X is evaluated at f⁻¹(z), not at z")
        raise Hint(
            f"{name}: does not match the exact density (scipy.stats); check both factors of eq (9)"
        )
    return (
        "eq (9) matches scipy.stats for an increasing map (lognormal), a decreasing map "
        "(normal) and the logit of a uniform (logistic)."
    )


@checker("2.3", "inverse-CDF sampling of an exponential")
def check_sample_exponential(fn: Callable) -> str:
    """``fn(u, rate)`` maps uniforms to Exponential(rate) samples through the inverse CDF
    (increasing, −log(1 − u)/rate, or decreasing, −log(u)/rate)."""
    u = torch.rand(2_000, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    u = u.clamp(1e-12, 1 - 1e-12)
    for rate in (1.0, 2.5):
        got = as_tensor(call(fn, u.clone(), rate), tuple(u.shape), "your sampler")
        inc = -torch.log1p(-u) / rate
        dec = -torch.log(u) / rate
        if _close(got, inc) or _close(got, dec):
            continue
        if _close(got, 1 - torch.exp(-rate * u)) or _close(got, torch.exp(-rate * u)):
            raise Hint(
                "you applied the CDF F(x) = 1 − exp(−rate·x) to u; sampling needs its "
                "INVERSE F⁻¹(u): solve u = F(x) for x"
            )
        if bool((got < 0).any()):
            raise Hint("negative samples: an exponential variable is ≥ 0 (check the sign)")
        if _close(got, inc * rate**2) or _close(got, dec * rate**2):
            raise Hint(
                f"with rate = {rate} the mean should be 1/rate: divide by the rate "
                "instead of multiplying"
            )
        if _close(got, inc * rate) or _close(got, dec * rate):
            raise Hint(f"with rate = {rate} the samples must be divided by the rate")
        raise Hint("not the inverse CDF: solve u = 1 − exp(−rate·x) for x")
    return (
        "inverse-CDF sampling works (u ↦ −log(1−u)/rate is increasing, u ↦ −log(u)/rate "
        "decreasing: both give Exponential(rate))."
    )


#: 2.4 is checked on [−X_MAX, X_MAX]: far enough that log σ(x) and log(1 − σ(x)) written
#: naively overflow or round to log 0 in float64 (σ(40) is already 1.0 in float64).
X_MAX = 800.0


@checker("2.4", "log-density of the logistic by eq (10)")
def check_log_density_logistic(fn: Callable) -> str:
    """``fn(x) = log p_X(x)`` where ``sigmoid(X) ~ Uniform(0, 1)`` (eq. 10), finite and right
    for |x| up to :data:`X_MAX` in float64."""
    x = torch.linspace(-X_MAX, X_MAX, 1601, dtype=torch.float64)
    x = torch.cat([torch.linspace(-15.0, 15.0, 121, dtype=torch.float64), x])
    got = as_tensor(call(fn, x.clone()), tuple(x.shape), "your log-density")
    want = torch.as_tensor(stats.logistic.logpdf(x.numpy()))
    if _close(got, want):
        return f"log p_X matches scipy.stats.logistic.logpdf for |x| up to {X_MAX:g}."
    small = x.abs() <= 15
    if not bool(torch.isfinite(got).all()) and _close(got[small], want[small]):
        bad = float(x[~torch.isfinite(got)].abs().min())
        raise Hint(
            f"the formula is right, but it gives inf or NaN from |x| = {bad:g}: σ(x) rounds "
            "to 1 (or exp(−x) overflows), so log(1 − σ(x)) = log 0. Write log σ(x) = "
            "logsigmoid(x) = −softplus(−x) and log(1 − σ(x)) = logsigmoid(−x) "
            "(torch.nn.functional.logsigmoid / softplus)"
        )
    if _close(got[small], want[small].exp()):
        raise Hint("this is the density p_X(x); return its logarithm")
    if _close(got, torch.zeros_like(got)):
        raise Hint("log p_U(σ(x)) = 0 is only the first term of eq (10): add log|σ'(x)|")
    if _close(got[small], -want[small]):
        raise Hint("sign: the log of a derivative term is ADDED in eq (10)")
    if _close(got[small], torch.nn.functional.logsigmoid(x[small])):
        raise Hint(
            "that is log σ(x) only: σ'(x) = σ(x)(1 − σ(x)), so add log(1 − σ(x)) = logsigmoid(−x)"
        )
    if not bool(torch.isfinite(got).all()):
        raise Hint(
            "inf or NaN values: compute in log space with torch.nn.functional.logsigmoid "
            "(log σ(x) = logsigmoid(x), log(1 − σ(x)) = logsigmoid(−x))"
        )
    raise Hint(
        "does not match scipy.stats.logistic.logpdf; apply eq (10) with f = sigmoid "
        "and p_Z = Uniform(0, 1)"
    )


@checker("2.5", "peak of the density of 3X + 1")
def check_peak_density(fn: Callable[[], float]) -> str:
    """``fn()`` = max_z p_Z(z) for ``Z = 3X + 1``, ``X ~ N(0, 1)``."""
    got = as_float(call(fn))
    want = 1.0 / (3.0 * _SQRT_2PI)
    if matches(got, want):
        return f"max p_Z = 1/(3√(2π)) ≈ {fmt(want)}, reached at z = 1."
    if matches(got, 3.0 / _SQRT_2PI):
        raise Hint(
            "you multiplied by |f'(x)| = 3; eq (9) uses |d f⁻¹/dz| = 1/3 (a stretched "
            "variable has a lower density)"
        )
    if matches(got, 1.0 / _SQRT_2PI):
        raise Hint("that is the peak of p_X; the Jacobian factor of eq (9) is missing")
    if matches(got, 1.0):
        raise Hint("z = 1 is WHERE the peak is; the question asks for its height p_Z(1)")
    if matches(got, 1.0 / (9.0 * _SQRT_2PI)) or matches(got, 1.0 / (3.0 * math.sqrt(6 * math.pi))):
        raise Hint("3 is the standard deviation of Z (its variance is 9): p_Z(1) = p_X(0) · 1/3")
    if abs(got - want) < 0.01 * want:
        raise Hint(
            f"{fmt(got)} is close to the peak but not exact (read off a figure or a grid?): "
            "compute p_Z(1) with eq (9)"
        )
    raise Hint(f"got {fmt(got)}; write p_Z with eq (9) and evaluate it at its maximum")


# --------------------------------------------------------------------------------------------
# 2.6: a composition of two maps, eq. (10) applied twice (the 1-D chain rule behind eq. 13)
# --------------------------------------------------------------------------------------------


def _std_normal_log_prob(z: Tensor) -> Tensor:
    return -0.5 * z**2 - math.log(_SQRT_2PI)


def _derivative(f: Callable, x: Tensor) -> Tensor:
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x).sum(), x)
    return grad.detach()


@checker("2.6", "log-density through two maps (chain rule)")
def check_log_density_composed(fn: Callable) -> str:
    """``fn(log_p_z, f1, f2, x) = log p_X(x)`` for ``Z = f2(f1(X))`` by eq. (10):
    ``log p_Z(f2(f1(x))) + log|f2'(f1(x))| + log|f1'(x)|``, the derivatives from autograd
    (``f1`` and ``f2`` must each be called on a tensor that requires grad)."""
    x = torch.linspace(-3.0, 3.0, 61, dtype=torch.float64)
    f1 = lambda t: 1.0 - 2.0 * t  # decreasing: the absolute value matters
    f2 = torch.sinh
    spies = _Spy(f1), _Spy(f2)
    got = as_tensor(
        call(fn, _std_normal_log_prob, *spies, x.clone()), tuple(x.shape), "your log p_X"
    )
    y = f1(x)
    log_f1 = torch.log(_derivative(f1, x).abs())
    log_f2 = torch.log(_derivative(f2, y).abs())
    want = _std_normal_log_prob(f2(y)) + log_f2 + log_f1
    if _close(got, want):
        untracked = [name for name, spy in zip(("f1", "f2"), spies, strict=True) if not spy.tracked]
        if untracked:
            raise Hint(
                f"the values are right, but the derivative of {' and '.join(untracked)} did not "
                "come from autograd (never called on a tensor that requires grad): this "
                "exercise practises torch.autograd.grad; a finite difference is only approximate"
            )
        return "log p_X = log p_Z(f2(f1(x))) + log|f2'(f1(x))| + log|f1'(x)|: the chain rule."
    if bool(torch.isnan(got).any()):
        raise Hint("NaN: f1 is decreasing, so f1' < 0; take the log of |f1'|")
    if _close(got, want - log_f1):
        raise Hint("the factor |f1'(x)| of the first map is missing")
    if _close(got, want - log_f2):
        raise Hint("the factor |f2'(f1(x))| of the second map is missing")
    wrong_point = want - log_f2 + torch.log(_derivative(f2, x).abs())
    if _close(got, wrong_point):
        raise Hint("f2' must be evaluated at f1(x), where f2 is applied, not at x")
    if _close(got, want - log_f2 - log_f1):
        raise Hint("both Jacobian factors are missing: eq. (10) multiplies by |df/dx|")
    if _close(got, want - 2 * log_f2 - 2 * log_f1):
        raise Hint(
            "sign of the Jacobian terms: eq. (10) ADDS log|f'| in the direction x → z "
            "(the inverse direction would subtract them)"
        )
    if _close(got, _std_normal_log_prob(f1(f2(x))) + log_f1 + torch.log(_derivative(f2, x).abs())):
        raise Hint("order of the maps: Z = f2(f1(X)), so f1 is applied first")
    if _close(got, _std_normal_log_prob(x) + log_f2 + log_f1):
        raise Hint("p_Z is evaluated at z = f2(f1(x)), not at x")
    raise Hint("does not match log p_Z(f2(f1(x))) + log|f2'(f1(x))| + log|f1'(x)|")
