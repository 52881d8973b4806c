"""Every exercise checker accepts the reference solution and rejects typical wrong answers
with the intended hint (printed, one line, no traceback)."""

from __future__ import annotations

import math

import pytest
import torch
from _checker_runs import accepts, rejects, run

import coursekit.checkers as ck
from coursekit.checkers import _common

F = torch.nn.functional


# ---------------------------------------------------------------- common machinery


def test_not_done_and_student_exceptions(capsys):
    def untouched(*args):
        raise NotImplementedError("Exercise 1.1: KL between two Gaussians")

    ok, out = run(capsys, ck.check_kl_gaussians, untouched)
    assert ok is False and out.startswith("Exercise 1.1: not done yet — ")

    def broken(*args):
        return [1, 2][5]

    ok, out = run(capsys, ck.check_kl_gaussians, broken)
    assert ok is False and "your code raised IndexError: list index out of range" in out
    ok, out = run(capsys, ck.check_kl_gaussians, 3.0)
    assert ok is False and "expected a function" in out
    assert _common.RESULTS["1.1"] is False


def test_progress_and_assert_all_passed(capsys):
    for e in _common.chapter_exercises(1):
        _common.RESULTS[e], _common.STATUS[e] = True, "passed"
    ck.assert_all_passed(1)
    ck.check_gaussian_nll(lambda x, mu, sigma: -nll_ref(x, mu, sigma))
    with pytest.raises(AssertionError, match="1.3"):
        ck.assert_all_passed(1)

    def untouched(*args):
        raise NotImplementedError("Exercise 1.4: maximum-likelihood Gaussian")

    ck.check_gaussian_mle(untouched)
    capsys.readouterr()
    ck.show_progress(1)
    out = capsys.readouterr().out
    n = len(_common.chapter_exercises(1))
    assert f"Chapter 1: {n - 2}/{n} exercises passed." in out
    assert "❌ 1.3 NLL of a Gaussian model (wrong)" in out
    assert "… 1.4 maximum-likelihood Gaussian (not done)" in out


def test_every_chapter_has_four_to_seven_exercises():
    for chapter in range(1, 9):
        assert 4 <= len(_common.chapter_exercises(chapter)) <= 7
    assert len(_common.EXERCISES) >= 24


# ---------------------------------------------------------------- chapter 1


def kl_ref(m1, s1, m2, s2):
    return math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


def test_ch01_kl_gaussians(capsys):
    accepts(capsys, ck.check_kl_gaussians, kl_ref)
    rejects(
        capsys,
        ck.check_kl_gaussians,
        lambda m1, s1, m2, s2: kl_ref(m2, s2, m1, s1),
        hint="KL(q ‖ p)",
    )
    rejects(capsys, ck.check_kl_gaussians, lambda *a: kl_ref(*a) + 0.5, hint="exactly 1/2")


def test_ch01_monte_carlo_kl(capsys):
    accepts(capsys, ck.check_monte_carlo_kl, lambda lp, lq, x: (lp(x) - lq(x)).mean())
    rejects(capsys, ck.check_monte_carlo_kl, lambda lp, lq, x: (lq(x) - lp(x)).mean(), hint="sign")
    rejects(
        capsys, ck.check_monte_carlo_kl, lambda lp, lq, x: (lp(x) - lq(x)).sum(), hint="factor n"
    )


def nll_ref(x, mu, sigma):
    return -(-0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)).mean()


def test_ch01_gaussian_nll(capsys):
    accepts(capsys, ck.check_gaussian_nll, nll_ref)
    rejects(capsys, ck.check_gaussian_nll, lambda x, m, s: -nll_ref(x, m, s), hint="sign")
    rejects(
        capsys,
        ck.check_gaussian_nll,
        lambda x, m, s: (0.5 * ((x - m) / s) ** 2).mean(),
        hint="normalisation",
    )
    rejects(
        capsys, ck.check_gaussian_nll, lambda x, m, s: nll_ref(x, m, s) * len(x), hint="factor n"
    )


def test_ch01_gaussian_mle(capsys):
    accepts(capsys, ck.check_gaussian_mle, lambda x: (x.mean(), x.std(correction=0)))
    rejects(capsys, ck.check_gaussian_mle, lambda x: (x.mean(), x.std()), hint="(n − 1)")
    rejects(
        capsys, ck.check_gaussian_mle, lambda x: (x.mean(), x.var(correction=0)), hint="variance"
    )


def test_ch02_density_neg_log_uniform(capsys):
    good = lambda z: torch.where(z >= 0, torch.exp(-z), torch.zeros_like(z))
    accepts(capsys, ck.check_density_neg_log_uniform, good)
    rejects(
        capsys, ck.check_density_neg_log_uniform, lambda z: torch.exp(-z), hint="never negative"
    )
    rejects(
        capsys,
        ck.check_density_neg_log_uniform,
        lambda z: torch.where(z >= 0, -torch.exp(-z), torch.zeros_like(z)),
        hint="ABSOLUTE value",
    )
    rejects(
        capsys, ck.check_density_neg_log_uniform, lambda z: (z >= 0).double(), hint="first factor"
    )


def _density_1d(p_x, f_inv, z, jac=True, absolute=True, divide=False):
    z = z.detach().requires_grad_(True)
    x = f_inv(z)
    (d,) = torch.autograd.grad(x.sum(), z)
    d = d.abs() if absolute else d
    if not jac:
        return p_x(x.detach())
    return p_x(x.detach()) / d if divide else p_x(x.detach()) * d


def test_ch02_density_1d(capsys):
    accepts(capsys, ck.check_density_1d, _density_1d)
    rejects(
        capsys, ck.check_density_1d, lambda *a: _density_1d(*a, jac=False), hint="Jacobian factor"
    )
    rejects(
        capsys,
        ck.check_density_1d,
        lambda *a: _density_1d(*a, absolute=False),
        hint="absolute value",
    )
    rejects(capsys, ck.check_density_1d, lambda *a: _density_1d(*a, divide=True), hint="divided")


def test_ch02_sample_exponential(capsys):
    accepts(capsys, ck.check_sample_exponential, lambda u, r: -torch.log1p(-u) / r)
    accepts(capsys, ck.check_sample_exponential, lambda u, r: -torch.log(u) / r)
    rejects(capsys, ck.check_sample_exponential, lambda u, r: torch.log(u) / r, hint="negative")
    rejects(
        capsys,
        ck.check_sample_exponential,
        lambda u, r: -torch.log(u) * r,
        hint="divide by the rate",
    )


def test_ch02_log_density_logistic(capsys):
    accepts(capsys, ck.check_log_density_logistic, lambda x: F.logsigmoid(x) + F.logsigmoid(-x))
    rejects(
        capsys,
        ck.check_log_density_logistic,
        lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x)),
        hint="return its logarithm",
    )
    rejects(capsys, ck.check_log_density_logistic, lambda x: torch.zeros_like(x), hint="first term")


def test_ch02_peak_density(capsys):
    accepts(capsys, ck.check_peak_density, lambda: 1 / (3 * math.sqrt(2 * math.pi)))
    rejects(capsys, ck.check_peak_density, lambda: 3 / math.sqrt(2 * math.pi), hint="|f'(x)|")
    rejects(
        capsys, ck.check_peak_density, lambda: 1 / math.sqrt(2 * math.pi), hint="Jacobian factor"
    )


# ---------------------------------------------------------------- chapter 3


def _jac_rows(f, x):
    return torch.stack(
        [torch.autograd.functional.jacobian(lambda v: f(v.unsqueeze(0)).squeeze(0), xb) for xb in x]
    )


def test_ch03_log_abs_det_jacobian(capsys):
    accepts(
        capsys,
        ck.check_log_abs_det_jacobian,
        lambda f, x: torch.linalg.slogdet(_jac_rows(f, x)).logabsdet,
    )
    rejects(
        capsys,
        ck.check_log_abs_det_jacobian,
        lambda f, x: torch.log(torch.linalg.det(_jac_rows(f, x))),
        hint="take |det| before the log",
    )
    rejects(
        capsys,
        ck.check_log_abs_det_jacobian,
        lambda f, x: _jac_rows(f, x),
        hint="Jacobian matrices",
    )


def _lin(a, b, z, sign=-1.0, factor=1.0):
    d = z.shape[1]
    x = torch.linalg.solve(a, (z - b).T).T
    lp = -0.5 * (x**2).sum(1) - 0.5 * d * math.log(2 * math.pi)
    return lp + sign * factor * torch.linalg.slogdet(a).logabsdet


def test_ch03_log_density_linear(capsys):
    accepts(capsys, ck.check_log_density_linear, _lin)
    rejects(
        capsys,
        ck.check_log_density_linear,
        lambda a, b, z: _lin(a, b, z, sign=1.0),
        hint="instead of dividing",
    )
    rejects(
        capsys,
        ck.check_log_density_linear,
        lambda a, b, z: _lin(a, b, z, factor=0.0),
        hint="Jacobian term",
    )


def test_ch03_polar_density(capsys):
    good = lambda r, t: r * torch.exp(-0.5 * r**2) / (2 * math.pi) + 0 * t
    accepts(capsys, ck.check_polar_density, good)
    rejects(capsys, ck.check_polar_density, lambda r, t: good(r, t) / r, hint="= r")
    rejects(capsys, ck.check_polar_density, lambda r, t: good(r, t) / r**2, hint="divided by r")


def _integrate(density, lo, hi, n, area=True):
    h = (hi - lo) / n
    axis = lo + h * (torch.arange(n, dtype=torch.float64) + 0.5)
    xx, yy = torch.meshgrid(axis, axis, indexing="xy")
    total = float(density(torch.stack([xx.flatten(), yy.flatten()], 1)).sum())
    return total * h * h if area else total


def test_ch03_integrate_grid(capsys):
    accepts(capsys, ck.check_integrate_grid, _integrate)
    rejects(
        capsys, ck.check_integrate_grid, lambda *a: _integrate(*a, area=False), hint="cell area"
    )
    rejects(
        capsys,
        ck.check_integrate_grid,
        lambda d, lo, hi, n: _integrate(d, lo - 1.0, hi + 1.0, n),
        hint="cell centres",
    )


# ---------------------------------------------------------------- chapter 4


def _fwd(x, mask, s_net, t_net, mode="ok"):
    x1, x2 = x[:, mask], x[:, ~mask]
    s, t = s_net(x1), t_net(x1)
    z = x.clone()
    z[:, ~mask] = (x2 + t) * torch.exp(s) if mode == "order" else x2 * torch.exp(s) + t
    if mode == "sign":
        return z, -s.sum(1)
    if mode == "nosum":
        return z, s
    if mode == "exp":
        return z, torch.exp(s).sum(1)
    return z, s.sum(1)


def test_ch04_coupling_forward(capsys):
    accepts(capsys, ck.check_coupling_forward, _fwd)
    rejects(
        capsys,
        ck.check_coupling_forward,
        lambda *a: _fwd(*a, mode="sign"),
        hint="wrong sign of the log-det",
    )
    rejects(
        capsys,
        ck.check_coupling_forward,
        lambda *a: _fwd(*a, mode="nosum"),
        hint="sum over the features",
    )
    rejects(
        capsys, ck.check_coupling_forward, lambda *a: _fwd(*a, mode="order"), hint="scale first"
    )
    rejects(capsys, ck.check_coupling_forward, lambda *a: _fwd(*a, mode="exp"), hint="not Σ exp")


def _inv(z, mask, s_net, t_net, mode="ok"):
    z1, z2 = z[:, mask], z[:, ~mask]
    s, t = s_net(z1), t_net(z1)
    x = z.clone()
    x[:, ~mask] = z2 * torch.exp(-s) - t if mode == "order" else (z2 - t) * torch.exp(-s)
    return x, (s.sum(1) if mode == "sign" else -s.sum(1))


def test_ch04_coupling_inverse(capsys):
    accepts(capsys, ck.check_coupling_inverse, _inv)
    rejects(
        capsys,
        ck.check_coupling_inverse,
        lambda *a: _inv(*a, mode="order"),
        hint="inverse does not undo forward",
    )
    rejects(
        capsys,
        ck.check_coupling_inverse,
        lambda *a: _inv(*a, mode="sign"),
        hint="wrong sign of the log-det",
    )
    rejects(
        capsys,
        ck.check_coupling_inverse,
        lambda z, m, s, t: (z, z.new_zeros(len(z))),
        hint="inverse does not undo forward",
    )


def _compose(layers, x, mode="ok"):
    ld = x.new_zeros(x.shape[0])
    h = x
    for layer in reversed(layers) if mode == "reversed" else layers:
        h_new, d = layer(h)
        ld = ld + (layer(x)[1] if mode == "at_x" else d)
        h = h_new
    return h, ld


def test_ch04_compose(capsys):
    accepts(capsys, ck.check_compose, _compose)
    rejects(capsys, ck.check_compose, lambda *a: _compose(*a, mode="reversed"), hint="wrong order")
    rejects(capsys, ck.check_compose, lambda *a: _compose(*a, mode="at_x"), hint="x_(i−1)")


def test_ch04_jacobian_zeros(capsys):
    accepts(capsys, ck.check_jacobian_zeros, lambda: 22)
    rejects(capsys, ck.check_jacobian_zeros, lambda: 8, hint="upper-right block")
    rejects(capsys, ck.check_jacobian_zeros, lambda: 20, hint="identity block")
