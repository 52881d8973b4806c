"""Checkers for chapter 2, change of variable in 1-D (TRANSPORT DE MESURES (DIM. 1), eq. 5–10)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from scipy import stats

from coursekit.checkers._answers import as_float, as_tensor, close, fmt
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint
from coursekit.checkers._inputs import check_unchanged

_SQRT_2PI = math.sqrt(2 * math.pi)


@checker("2.1", "density of −log(U)")
def check_density_neg_log_uniform(fn: Callable[[torch.Tensor], torch.Tensor]) -> str:
    """``fn(z) = p_Z(z)`` for ``Z = −log U``, ``U ~ Uniform(0, 1)``, on a grid of z."""
    z = torch.linspace(-2.0, 6.0, 81, dtype=torch.float64)
    got = as_tensor(call(fn, z.clone()), tuple(z.shape), "your density")
    want = torch.as_tensor(stats.expon.pdf(z.numpy()))
    pos = z > 0
    if close(got, want, rtol=1e-9, atol=1e-12):
        return "p_Z(z) = exp(−z) for z ≥ 0: Z is Exponential(1), as scipy.stats.expon says."
    if bool((got < 0).any()):
        raise Hint("negative density values: eq (9) uses the ABSOLUTE value |d f⁻¹/dz|")
    if close(got[pos], want[pos], rtol=1e-9) and not close(got[~pos], want[~pos]):
        raise Hint("right for z > 0, but Z = −log U is never negative: p_Z must be 0 for z < 0")
    if close(got[pos], torch.exp(z[pos]), rtol=1e-9):
        raise Hint("sign: f⁻¹(z) = exp(−z), so the density decreases with z")
    if close(got[pos], torch.ones_like(got[pos]), rtol=1e-9):
        raise Hint("p_U(f⁻¹(z)) = 1 is only the first factor of eq (9): multiply by |d f⁻¹(z)/dz|")
    raise Hint("does not match scipy.stats.expon.pdf; find f⁻¹, then apply eq (9)")


def _cases_1d() -> list[tuple[str, Callable, Callable, torch.Tensor, torch.Tensor]]:
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
    """``fn(p_x, f_inv, z) = p_X(f⁻¹(z)) · |d f⁻¹(z)/dz|`` for three (p_X, f) pairs."""
    for name, p_x, f_inv, z, want in _cases_1d():
        got = as_tensor(call(fn, p_x, f_inv, z.clone()), tuple(z.shape), "your density")
        if close(got, want, rtol=1e-8, atol=1e-12):
            continue
        x = z.clone().requires_grad_(True)
        y = f_inv(x)
        (dinv,) = torch.autograd.grad(y.sum(), x)
        base = p_x(y.detach())
        if close(got, base, rtol=1e-8, atol=1e-12):
            raise Hint(
                f"{name}: you returned p_X(f⁻¹(z)) only — the Jacobian factor "
                "|d f⁻¹(z)/dz| of eq (9) is missing"
            )
        if close(got, -want, rtol=1e-8, atol=1e-12) or bool((got < 0).any()):
            raise Hint(
                f"{name}: negative density — f is decreasing here, so d f⁻¹/dz < 0; "
                "eq (9) takes its absolute value (eq 8)"
            )
        if close(got, base / dinv.abs(), rtol=1e-8, atol=1e-12):
            raise Hint(f"{name}: you divided by |d f⁻¹/dz| instead of multiplying by it")
        raise Hint(
            f"{name}: does not match the exact density (scipy.stats); check both factors of eq (9)"
        )
    return (
        "eq (9) matches scipy.stats for an increasing map (lognormal), a decreasing map "
        "(normal) and the logit of a uniform (logistic)."
    )


@checker("2.3", "inverse-CDF sampling of an exponential")
def check_sample_exponential(fn: Callable) -> str:
    """``fn(u, rate)`` maps uniforms to Exponential(rate) samples through the inverse CDF."""
    u = torch.rand(2_000, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    u = u.clamp(1e-12, 1 - 1e-12)
    for rate in (1.0, 2.5):
        got = as_tensor(call(fn, u.clone(), rate), tuple(u.shape), "your sampler")
        inc = -torch.log1p(-u) / rate
        dec = -torch.log(u) / rate
        if close(got, inc, rtol=1e-8) or close(got, dec, rtol=1e-8):
            continue
        if bool((got < 0).any()):
            raise Hint("negative samples: an exponential variable is ≥ 0 (check the sign)")
        if close(got, inc * rate**2, rtol=1e-8) or close(got, dec * rate**2, rtol=1e-8):
            raise Hint(
                f"with rate = {rate} the mean should be 1/rate: divide by the rate "
                "instead of multiplying"
            )
        raise Hint("not the inverse CDF: solve u = 1 − exp(−rate·x) for x")
    return (
        "inverse-CDF sampling works (u ↦ −log(1−u)/rate is increasing, u ↦ −log(u)/rate "
        "decreasing: both give Exponential(rate))."
    )


@checker("2.4", "log-density of the logistic by eq (10)")
def check_log_density_logistic(fn: Callable) -> str:
    """``fn(x) = log p_X(x)`` where ``sigmoid(X) ~ Uniform(0, 1)`` (eq. 10)."""
    x = torch.linspace(-15.0, 15.0, 121, dtype=torch.float64)
    got = as_tensor(call(fn, x.clone()), tuple(x.shape), "your log-density")
    want = torch.as_tensor(stats.logistic.logpdf(x.numpy()))
    if close(got, want, rtol=1e-8, atol=1e-10):
        return "log p_X matches scipy.stats.logistic.logpdf on [−15, 15]."
    if not bool(torch.isfinite(got).all()):
        raise Hint(
            "non-finite values at large |x|: write log σ(x) and log(1 − σ(x)) with "
            "torch.nn.functional.logsigmoid (log(1 − σ(x)) = logsigmoid(−x))"
        )
    if close(got, want.exp(), rtol=1e-8, atol=1e-12):
        raise Hint("this is the density p_X(x); return its logarithm")
    if close(got, torch.zeros_like(got), atol=1e-12):
        raise Hint("log p_U(σ(x)) = 0 is only the first term of eq (10): add log|σ'(x)|")
    if close(got, -want, rtol=1e-8):
        raise Hint("sign: the log of a derivative term is ADDED in eq (10)")
    raise Hint(
        "does not match scipy.stats.logistic.logpdf; apply eq (10) with f = sigmoid "
        "and p_Z = Uniform(0, 1)"
    )


@checker("2.5", "peak of the density of 3X + 1")
def check_peak_density(fn: Callable[[], float]) -> str:
    """``fn()`` = max_z p_Z(z) for ``Z = 3X + 1``, ``X ~ N(0, 1)``."""
    got = as_float(call(fn))
    want = 1.0 / (3.0 * _SQRT_2PI)
    if close(got, want, rtol=1e-4):
        return f"max p_Z = 1/(3√(2π)) ≈ {fmt(want)}, reached at z = 1."
    if close(got, 3.0 / _SQRT_2PI, rtol=1e-4):
        raise Hint(
            "you multiplied by |f'(x)| = 3; eq (9) uses |d f⁻¹/dz| = 1/3 (a stretched "
            "variable has a lower density)"
        )
    if close(got, 1.0 / _SQRT_2PI, rtol=1e-4):
        raise Hint("that is the peak of p_X; the Jacobian factor of eq (9) is missing")
    if close(got, 1.0):
        raise Hint("z = 1 is WHERE the peak is; the question asks for its height p_Z(1)")
    raise Hint(f"got {fmt(got)}; write p_Z with eq (9) and evaluate it at its maximum")


# --------------------------------------------------------------------------------------------
# 2.6: a composition of two maps, eq. (10) applied twice (the 1-D chain rule behind eq. 13)
# --------------------------------------------------------------------------------------------


def _std_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * z**2 - math.log(_SQRT_2PI)


def _derivative(f: Callable, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x).sum(), x)
    return grad.detach()


@checker("2.6", "log-density through two maps (chain rule)")
def check_log_density_composed(fn: Callable) -> str:
    """``fn(log_p_z, f1, f2, x) = log p_X(x)`` for ``Z = f2(f1(X))`` by eq. (10):
    ``log p_Z(f2(f1(x))) + log|f2'(f1(x))| + log|f1'(x)|``."""
    see = "see notebook 02, section 6, 'The direction used by flows: eq. (10)'"
    x = torch.linspace(-3.0, 3.0, 61, dtype=torch.float64)
    f1 = lambda t: 1.0 - 2.0 * t  # decreasing: the absolute value matters
    f2 = torch.sinh
    x_in = x.clone()
    got = as_tensor(call(fn, _std_normal_log_prob, f1, f2, x_in), tuple(x.shape), "your log p_X")
    check_unchanged(x, x_in, "x")
    y = f1(x)
    log_f1 = torch.log(_derivative(f1, x).abs())
    log_f2 = torch.log(_derivative(f2, y).abs())
    want = _std_normal_log_prob(f2(y)) + log_f2 + log_f1
    if close(got, want, rtol=1e-10, atol=1e-10):
        return "log p_X = log p_Z(f2(f1(x))) + log|f2'(f1(x))| + log|f1'(x)|: the chain rule."
    if torch.isnan(got).any():
        raise Hint(f"NaN: f1 is decreasing, so f1' < 0; take the log of |f1'| ({see})")
    if close(got, want - log_f1, rtol=1e-10, atol=1e-10):
        raise Hint(f"the factor |f1'(x)| of the first map is missing ({see})")
    if close(got, want - log_f2, rtol=1e-10, atol=1e-10):
        raise Hint(f"the factor |f2'(f1(x))| of the second map is missing ({see})")
    wrong_point = want - log_f2 + torch.log(_derivative(f2, x).abs())
    if close(got, wrong_point, rtol=1e-10, atol=1e-10):
        raise Hint(f"f2' must be evaluated at f1(x), where f2 is applied, not at x ({see})")
    if close(got, want - log_f2 - log_f1, rtol=1e-10, atol=1e-10):
        raise Hint(f"both Jacobian factors are missing: eq. (10) multiplies by |df/dx| ({see})")
    raise Hint(f"does not match log p_Z(f2(f1(x))) + log|f2'(f1(x))| + log|f1'(x)| ({see})")
