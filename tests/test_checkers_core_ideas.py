"""The checkers of exercises 3.4 and 3.6 (1.5–1.7 and 2.6 are tested in test_checkers_ch01.py
and test_checkers_ch02.py): each accepts the reference solution, rejects typical wrong answers
with the intended hint, rejects a solution that modifies its input in place, and never raises
(one printed line, no traceback)."""

from __future__ import annotations

import pytest
import torch
from _checker_runs import accepts, rejects, run

import coursekit.checkers as ck

NONSENSE = [
    lambda *a: None,
    lambda *a: "a string",
    lambda *a: (1, 2, 3),
    lambda *a: torch.zeros(2, 2),
    lambda *a: float("nan"),
    lambda *a: 1 / 0,
]


@pytest.mark.parametrize(
    "checker",
    [
        ck.check_mc_log_normalizer,
        ck.check_paired_comparison,
        ck.check_early_stopping,
        ck.check_log_density_composed,
        ck.check_triangular_log_det,
        ck.check_transform_with_log_prob,
        ck.check_conv1x1,
        ck.check_stack_log_prob,
    ],
)
def test_checkers_never_raise(capsys, checker):
    for answer in NONSENSE:
        ok, out = run(capsys, checker, answer)
        assert ok is False and out.startswith("❌ Exercise")

    def untouched(*args):
        raise NotImplementedError("not yet")

    ok, out = run(capsys, checker, untouched)
    assert ok is False and "not done yet" in out


# ---------------------------------------------------------------- 3.4 triangular log-det


def diag_log_det(f, x):
    x = x.detach().clone().requires_grad_(True)
    z = f(x)
    total = x.new_zeros(len(x))
    for i in range(x.shape[1]):
        (g,) = torch.autograd.grad(z[:, i].sum(), x, retain_graph=True)
        total = total + g[:, i].abs().log()
    return total.detach()


def full_jacobian(f, x):
    return torch.func.vmap(torch.func.jacrev(lambda t: f(t[None])[0]))(x)


def test_ch03_triangular_log_det(capsys):
    accepts(capsys, ck.check_triangular_log_det, diag_log_det)
    rejects(
        capsys,
        ck.check_triangular_log_det,
        lambda f, x: torch.log(full_jacobian(f, x).abs().clamp_min(1e-300)).sum((1, 2)),
        hint="only the diagonal",
    )
    rejects(
        capsys,
        ck.check_triangular_log_det,
        lambda f, x: torch.linalg.det(full_jacobian(f, x)).abs(),
        hint="LOG",
    )

    def no_abs(f, x):
        j = full_jacobian(f, x)
        return torch.diagonal(j, dim1=1, dim2=2).log().sum(1)

    rejects(capsys, ck.check_triangular_log_det, no_abs, hint="absolute value")

    def mutates(f, x):
        out = diag_log_det(f, x)
        x.add_(1.0)
        return out

    rejects(capsys, ck.check_triangular_log_det, mutates, hint="in place")


# ---------------------------------------------------------------- 3.6 samples and density


def push(f, log_p_x, x):
    z = f(x)
    log_det = torch.linalg.slogdet(full_jacobian(f, x))[1]
    return z, log_p_x(x) - log_det


def test_ch03_transform_with_log_prob(capsys):
    accepts(capsys, ck.check_transform_with_log_prob, push)

    def plus(f, lp, x):
        z, out = push(f, lp, x)
        return z, 2 * lp(x) - out

    rejects(capsys, ck.check_transform_with_log_prob, plus, hint="sign of the log-det")
    rejects(
        capsys, ck.check_transform_with_log_prob, lambda f, lp, x: (f(x), lp(x)), hint="missing"
    )
    rejects(
        capsys, ck.check_transform_with_log_prob, lambda f, lp, x: (f(x), lp(f(x))), hint="input x"
    )
    rejects(
        capsys, ck.check_transform_with_log_prob, lambda f, lp, x: push(f, lp, x)[1], hint="pair"
    )

    def mutates(f, lp, x):
        out = push(f, lp, x.clone())
        x.mul_(2.0)
        return out

    rejects(capsys, ck.check_transform_with_log_prob, mutates, hint="in place")
