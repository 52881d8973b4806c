"""Chapter 2 checkers (2.1–2.6): for each exercise a table of correct-but-different answers that
must pass (another formula, float32, numpy, torch.distributions, another valid direction) and
of typical wrong answers, each rejected with a hint naming that mistake (one printed line, no
traceback, no LaTeX)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _checker_runs import table_tests
from scipy import stats

import coursekit.checkers as ck
from coursekit.checkers import _common
from coursekit.checkers.ch02 import X_MAX

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F = torch.nn.functional


def test_chapter_2_exercises():
    assert _common.chapter_exercises(2) == ["2.1", "2.2", "2.3", "2.4", "2.5", "2.6"]


# ---------------------------------------------------------------- 2.1 density of −log U

NEG_LOG_RIGHT = {
    "where, z ≥ 0": lambda z: torch.where(z >= 0, torch.exp(-z), torch.zeros_like(z)),
    "a mask product, z > 0": lambda z: torch.exp(-z) * (z > 0),
    "numpy": lambda z: np.where(z.numpy() >= 0, np.exp(-np.clip(z.numpy(), 0, None)), 0.0),
    "float32": lambda z: torch.where(z >= 0, torch.exp(-z.float()), torch.zeros(len(z))),
    "Exponential(1) on the support": lambda z: torch.where(
        z >= 0,
        torch.distributions.Exponential(1.0).log_prob(z.clamp(min=0).float()).exp(),
        0.0,
    ),
}
NEG_LOG_WRONG = {
    "exp(−z) everywhere": (lambda z: torch.exp(-z), "never negative"),
    "negative": (
        lambda z: torch.where(z >= 0, -torch.exp(-z), torch.zeros_like(z)),
        "ABSOLUTE value",
    ),
    "p_U only": (lambda z: (z >= 0).double(), "first factor"),
    "exp(z)": (lambda z: torch.where(z >= 0, torch.exp(z), torch.zeros_like(z)), "sign"),
    "p_U at z": (
        lambda z: torch.exp(-z) * ((z >= 0) & (z <= 1)),
        "evaluated at f⁻¹(z) = exp(−z)",
    ),
}
test_2_1_right, test_2_1_wrong = table_tests(
    NEG_LOG_RIGHT, NEG_LOG_WRONG, ck.check_density_neg_log_uniform, "2.1"
)


# ---------------------------------------------------------------- 2.2 eq (9) with autograd


def density_1d(p_x, f_inv, z, jac=True, absolute=True, divide=False):
    z = z.detach().requires_grad_(True)
    x = f_inv(z)
    (d,) = torch.autograd.grad(x.sum(), z)
    d = d.abs() if absolute else d
    if not jac:
        return p_x(x.detach())
    return p_x(x.detach()) / d if divide else p_x(x.detach()) * d


def _density_backward(p_x, f_inv, z):
    z = z.clone().requires_grad_(True)
    f_inv(z).sum().backward()
    with torch.no_grad():
        return (p_x(f_inv(z)) * z.grad.abs()).numpy()


def _density_func(p_x, f_inv, z):
    d = torch.vmap(torch.func.grad(f_inv))(z)
    return p_x(f_inv(z)) * d.abs()


def _density_jacobian(p_x, f_inv, z):
    jac = torch.autograd.functional.jacobian(f_inv, z.float())
    return p_x(f_inv(z.float())) * jac.diagonal().abs()


def _finite_difference(p_x, f_inv, z):
    h = 1e-6
    d = (f_inv(z + h) - f_inv(z - h)) / (2 * h)
    return p_x(f_inv(z)) * d.abs()


def _density_in_place(p_x, f_inv, z):
    z.requires_grad_(True)  # allowed: undone by the checker
    x = f_inv(z)
    (d,) = torch.autograd.grad(x.sum(), z)
    z.detach_().mul_(1.0).add_(0.0)
    z.zero_()
    return p_x(x.detach()) * d.abs()


DENSITY_RIGHT = {
    "autograd.grad": density_1d,
    ".backward() on a copy, numpy": _density_backward,
    "torch.func.grad under vmap": _density_func,
    "autograd.functional.jacobian, float32": _density_jacobian,
}
DENSITY_WRONG = {
    "no Jacobian factor": (lambda *a: density_1d(*a, jac=False), "Jacobian factor"),
    "no absolute value": (lambda *a: density_1d(*a, absolute=False), "absolute value"),
    "divided": (lambda *a: density_1d(*a, divide=True), "divided"),
    "p_X at z": (
        lambda p_x, f_inv, z: p_x(z) * density_1d(lambda t: torch.ones_like(t), f_inv, z),
        "evaluated at f⁻¹(z)",
    ),
    "a finite difference": (_finite_difference, "did not come from autograd"),
    "edits z in place": (_density_in_place, "changed its input z in place"),
}
test_2_2_right, test_2_2_wrong = table_tests(
    DENSITY_RIGHT, DENSITY_WRONG, ck.check_density_1d, "2.2"
)


# ---------------------------------------------------------------- 2.3 inverse-CDF sampling

EXP_RIGHT = {
    "increasing: −log1p(−u)/rate": lambda u, r: -torch.log1p(-u) / r,
    "decreasing: −log(u)/rate (exercise 2.1)": lambda u, r: -torch.log(u) / r,
    "Exponential(rate).icdf, float32": lambda u, r: torch.distributions.Exponential(r).icdf(
        u.float()
    ),
    "numpy": lambda u, r: -np.log(1 - u.numpy()) / r,
}
EXP_WRONG = {
    "sign": (lambda u, r: torch.log(u) / r, "negative"),
    "times the rate": (lambda u, r: -torch.log(u) * r, "divide by the rate"),
    "the CDF applied": (lambda u, r: 1 - torch.exp(-r * u), "INVERSE"),
    "rate forgotten": (lambda u, r: -torch.log1p(-u), "divided by the rate"),
}
test_2_3_right, test_2_3_wrong = table_tests(
    EXP_RIGHT, EXP_WRONG, ck.check_sample_exponential, "2.3"
)


# ---------------------------------------------------------------- 2.4 the logistic by (10)

LOGISTIC_RIGHT = {
    "two logsigmoids": lambda x: F.logsigmoid(x) + F.logsigmoid(-x),
    "softplus": lambda x: -x - 2 * F.softplus(-x),
    "|x| form, numpy": lambda x: -np.abs(x.numpy()) - 2 * np.log1p(np.exp(-np.abs(x.numpy()))),
    "float32": lambda x: F.logsigmoid(x.float()) + F.logsigmoid(-x.float()),
}
LOGISTIC_WRONG = {
    "naive log(σ(1 − σ))": (
        lambda x: torch.log(torch.sigmoid(x) * (1 - torch.sigmoid(x))),
        "logsigmoid",
    ),
    "naive exp form": (lambda x: -x - 2 * torch.log1p(torch.exp(-x)), "softplus"),
    "the density": (lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x)), "return its logarithm"),
    "first term only": (lambda x: torch.zeros_like(x), "first term"),
    "sign": (lambda x: -(F.logsigmoid(x) + F.logsigmoid(-x)), "ADDED"),
    "log σ only": (F.logsigmoid, "add log(1 − σ(x))"),
}
test_2_4_right, test_2_4_wrong = table_tests(
    LOGISTIC_RIGHT, LOGISTIC_WRONG, ck.check_log_density_logistic, "2.4"
)


def test_2_4_range_needs_a_stable_formula():
    """The naive formula is right for |x| ≤ 15 (the old range) and not finite at X_MAX."""
    naive = lambda x: torch.log(torch.sigmoid(x) * (1 - torch.sigmoid(x)))
    small = torch.linspace(-15, 15, 31, dtype=torch.float64)
    assert torch.allclose(naive(small), F.logsigmoid(small) + F.logsigmoid(-small), rtol=1e-8)
    assert not torch.isfinite(naive(torch.tensor([X_MAX, -X_MAX], dtype=torch.float64))).any()
    assert X_MAX >= 800


# ---------------------------------------------------------------- 2.5 peak of p_Z

SQRT_2PI = math.sqrt(2 * math.pi)
PEAK_RIGHT = {
    "the formula": lambda: 1 / (3 * SQRT_2PI),
    "scipy at z = 1, numpy": lambda: stats.norm(1, 3).pdf(1.0),
    "float32 tensor": lambda: 1 / (3 * torch.sqrt(torch.tensor(2 * torch.pi))),
    "Normal(1, 3) at z = 1, float32": lambda: (
        torch.distributions.Normal(1.0, 3.0).log_prob(torch.tensor(1.0)).exp()
    ),
}
PEAK_WRONG = {
    "times 3": (lambda: 3 / SQRT_2PI, "|f'(x)|"),
    "peak of p_X": (lambda: 1 / SQRT_2PI, "Jacobian factor"),
    "where, not how high": (lambda: 1.0, "WHERE"),
    "variance": (lambda: 1 / (9 * SQRT_2PI), "standard deviation of Z"),
    "read off the figure": (lambda: 0.1335, "not exact"),
}
test_2_5_right, test_2_5_wrong = table_tests(PEAK_RIGHT, PEAK_WRONG, ck.check_peak_density, "2.5")


# ---------------------------------------------------------------- 2.6 the chain rule


def derivative(f, x):
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x).sum(), x)
    return g


def composed(log_p_z, f1, f2, x):
    y = f1(x)
    return log_p_z(f2(y)) + derivative(f2, y).abs().log() + derivative(f1, x).abs().log()


def _composed_loop(log_p_z, f1, f2, x):
    h, total = x.detach(), torch.zeros_like(x)
    for f in (f1, f2):
        total = total + derivative(f, h).abs().log()
        h = f(h)
    return log_p_z(h) + total


def _composed_func(log_p_z, f1, f2, x):
    d = torch.vmap(torch.func.grad(lambda t: f2(f1(t))))(x)  # (f2∘f1)' = f2'(f1(x)) f1'(x)
    return (log_p_z(f2(f1(x))) + d.abs().log()).numpy()


def _composed_float32(log_p_z, f1, f2, x):
    return composed(log_p_z, f1, f2, x.float())


def _composed_finite_difference(log_p_z, f1, f2, x):
    h = 1e-6
    d1 = (f1(x + h) - f1(x - h)) / (2 * h)
    y = f1(x)
    d2 = (f2(y + h) - f2(y - h)) / (2 * h)
    return log_p_z(f2(y)) + d1.abs().log() + d2.abs().log()


COMPOSED_RIGHT = {
    "two autograd derivatives": composed,
    "a loop over the maps": _composed_loop,
    "the composite's derivative, numpy": _composed_func,
    "float32": _composed_float32,
}
COMPOSED_WRONG = {
    "first map missing": (
        lambda lp, f1, f2, x: lp(f2(f1(x))) + derivative(f2, f1(x)).abs().log(),
        "first map",
    ),
    "second map missing": (
        lambda lp, f1, f2, x: lp(f2(f1(x))) + derivative(f1, x).abs().log(),
        "second map",
    ),
    "f2' at x": (
        lambda lp, f1, f2, x: (
            lp(f2(f1(x))) + derivative(f2, x).abs().log() + derivative(f1, x).abs().log()
        ),
        "evaluated at f1(x)",
    ),
    "no absolute value": (
        lambda lp, f1, f2, x: (
            lp(f2(f1(x))) + derivative(f2, f1(x)).abs().log() + derivative(f1, x).log()
        ),
        "NaN",
    ),
    "signs": (
        lambda lp, f1, f2, x: (
            lp(f2(f1(x))) - derivative(f2, f1(x)).abs().log() - derivative(f1, x).abs().log()
        ),
        "ADDS",
    ),
    "base density at x": (
        lambda lp, f1, f2, x: (
            lp(x) + derivative(f2, f1(x)).abs().log() + derivative(f1, x).abs().log()
        ),
        "not at x",
    ),
    "finite differences": (_composed_finite_difference, "did not come from autograd"),
    "f1' by hand, assuming f1 is linear": (
        lambda lp, f1, f2, x: (
            lp(f2(f1(x)))
            + derivative(f2, f1(x)).abs().log()
            + torch.log(((f1(x + 1.0) - f1(x)) / 1.0).abs())
        ),
        "derivative of f1 did not",
    ),
    "edits x in place": (
        lambda lp, f1, f2, x: composed(lp, f1, f2, x).detach() + 0 * x.zero_(),
        "changed its input x in place",
    ),
}
test_2_6_right, test_2_6_wrong = table_tests(
    COMPOSED_RIGHT, COMPOSED_WRONG, ck.check_log_density_composed, "2.6"
)
