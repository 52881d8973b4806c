"""The checkers of exercises 1.5–1.7, 2.6, 3.4 and 3.6: each accepts the reference
solution, rejects typical wrong answers with the intended hint, rejects a solution that
modifies its input in place, and never raises (one printed line, no traceback)."""

from __future__ import annotations

import math

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
        ck.check_nll_with_se,
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


# ---------------------------------------------------------------- 1.5 Monte Carlo normaliser


def mc_log_z(log_f, lo, hi, u):
    k, d = u.shape
    return float(torch.logsumexp(log_f(u), 0) - math.log(k) + d * math.log(hi - lo))


def test_ch01_mc_log_normalizer(capsys):
    accepts(capsys, ck.check_mc_log_normalizer, mc_log_z)
    rejects(
        capsys,
        ck.check_mc_log_normalizer,
        lambda f, lo, hi, u: mc_log_z(f, lo, hi, u) - u.shape[1] * math.log(hi - lo),
        hint="volume of the box",
    )
    rejects(
        capsys,
        ck.check_mc_log_normalizer,
        lambda f, lo, hi, u: float(torch.logsumexp(f(u), 0)) + u.shape[1] * math.log(hi - lo),
        hint="summed",
    )
    rejects(
        capsys,
        ck.check_mc_log_normalizer,
        lambda f, lo, hi, u: float(f(u).mean()) + u.shape[1] * math.log(hi - lo),
        hint="Jensen",
    )
    naive = lambda f, lo, hi, u: math.log(float(f(u).exp().mean()) * (hi - lo) ** u.shape[1])
    rejects(
        capsys,
        ck.check_mc_log_normalizer,
        lambda *a: _no_overflow_error(naive, *a),
        hint="overflow",
    )

    def mutates(f, lo, hi, u):
        u.mul_(1.0)
        u[0, 0] = 0.0
        return mc_log_z(f, lo, hi, u)

    rejects(capsys, ck.check_mc_log_normalizer, mutates, hint="in place")


def _no_overflow_error(fn, *args):
    try:
        return fn(*args)
    except (OverflowError, ValueError):
        return float("inf")


# ---------------------------------------------------------------- 1.6 NLL ± SE


def nll_se(log_prob, x):
    terms = -log_prob(x)
    return float(terms.mean()), float(terms.std() / math.sqrt(len(x)))


def test_ch01_nll_with_se(capsys):
    accepts(capsys, ck.check_nll_with_se, nll_se)
    accepts(
        capsys,
        ck.check_nll_with_se,
        lambda lp, x: (float(-lp(x).mean()), float(lp(x).std(correction=0) / math.sqrt(len(x)))),
    )
    rejects(
        capsys,
        ck.check_nll_with_se,
        lambda lp, x: (-nll_se(lp, x)[0], nll_se(lp, x)[1]),
        hint="sign",
    )
    rejects(
        capsys,
        ck.check_nll_with_se,
        lambda lp, x: (nll_se(lp, x)[0], float(lp(x).std())),
        hint="divides it by √n",
    )
    rejects(
        capsys,
        ck.check_nll_with_se,
        lambda lp, x: (nll_se(lp, x)[0], nll_se(lp, x)[1] ** 2),
        hint="square root",
    )
    rejects(capsys, ck.check_nll_with_se, lambda lp, x: nll_se(lp, x)[0], hint="pair")

    def mutates(lp, x):
        x -= x.mean()
        return nll_se(lp, x)

    rejects(capsys, ck.check_nll_with_se, mutates, hint="in place")


# ---------------------------------------------------------------- 1.7 early stopping


def early_stop(values, patience):
    best = 0
    for i, v in enumerate(values):
        if v < values[best]:
            best = i
        if i - best >= patience:
            return i, best
    return len(values) - 1, best


def test_ch01_early_stopping(capsys):
    accepts(capsys, ck.check_early_stopping, early_stop)
    accepts(
        capsys,
        ck.check_early_stopping,
        lambda v, p: tuple(torch.tensor(early_stop(v, p))),  # tensors of indices are fine
    )
    rejects(
        capsys,
        ck.check_early_stopping,
        lambda v, p: (len(v) - 1, min(range(len(v)), key=v.__getitem__)),
        hint="WHOLE curve",
    )

    def off_by_one(values, patience):
        return early_stop(values, patience - 1)  # stops one evaluation early

    rejects(capsys, ck.check_early_stopping, off_by_one, hint="one off")

    def ties_improve(values, patience):
        best = 0
        for i, v in enumerate(values):
            if v <= values[best]:
                best = i
            if i - best >= patience:
                return i, best
        return len(values) - 1, best

    rejects(capsys, ck.check_early_stopping, ties_improve, hint="equal value")

    def mutates(values, patience):
        values.sort()
        return early_stop(values, patience)

    rejects(capsys, ck.check_early_stopping, mutates, hint="in place")


# ---------------------------------------------------------------- 2.6 chain rule in 1-D


def derivative(f, x):
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x).sum(), x)
    return g


def composed(log_p_z, f1, f2, x):
    y = f1(x)
    return log_p_z(f2(y)) + derivative(f2, y).abs().log() + derivative(f1, x).abs().log()


def test_ch02_log_density_composed(capsys):
    accepts(capsys, ck.check_log_density_composed, composed)
    rejects(
        capsys,
        ck.check_log_density_composed,
        lambda lp, f1, f2, x: lp(f2(f1(x))) + derivative(f2, f1(x)).abs().log(),
        hint="first map",
    )
    rejects(
        capsys,
        ck.check_log_density_composed,
        lambda lp, f1, f2, x: lp(f2(f1(x))) + derivative(f1, x).abs().log(),
        hint="second map",
    )
    rejects(
        capsys,
        ck.check_log_density_composed,
        lambda lp, f1, f2, x: (
            lp(f2(f1(x))) + derivative(f2, x).abs().log() + derivative(f1, x).abs().log()
        ),
        hint="evaluated at f1(x)",
    )
    rejects(
        capsys,
        ck.check_log_density_composed,
        lambda lp, f1, f2, x: (
            lp(f2(f1(x))) + derivative(f2, f1(x)).abs().log() + derivative(f1, x).log()
        ),
        hint="NaN",
    )

    def mutates(lp, f1, f2, x):
        out = composed(lp, f1, f2, x)
        x.zero_()
        return out

    rejects(capsys, ck.check_log_density_composed, mutates, hint="in place")


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
