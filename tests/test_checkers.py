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


# ---------------------------------------------------------------- chapters 1 and 2
# The tables of right and wrong answers are in test_checkers_ch01.py and test_checkers_ch02.py.


def nll_ref(x, mu, sigma):
    return -(-0.5 * ((x - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)).mean()


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


def test_ch04_jacobian_zeros(capsys):
    accepts(capsys, ck.check_jacobian_zeros, lambda: 22)
    rejects(capsys, ck.check_jacobian_zeros, lambda: 8, hint="upper-right block")
    rejects(capsys, ck.check_jacobian_zeros, lambda: 20, hint="identity block")
