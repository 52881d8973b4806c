"""Chapter 9 checkers accept the reference answers and other right ones written differently,
reject typical wrong ones with the hint naming the mistake (one printed line, no traceback),
and answer bad returns (strings, wrong shapes, None) with a hint."""

from __future__ import annotations

import math

import pytest
import torch
from _checker_runs import accepts as _accepts
from _checker_runs import rejects as _rejects
from _checker_runs import run

import coursekit.checkers as ck
from coursekit.checkers import _common
from coursekit.flows import standard_normal_log_prob

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def accepts(capsys, checker, *fns):
    return _accepts(capsys, checker, *fns, exercise="9.")


def rejects(capsys, checker, *fns, hint: str):
    return _rejects(capsys, checker, *fns, hint=hint, exercise="9.")


def test_chapter_9_has_five_exercises_and_not_done_is_reported(capsys):
    assert _common.chapter_exercises(9) == ["9.1", "9.2", "9.3", "9.4", "9.5"]

    def untouched(*args):
        raise NotImplementedError("Exercise 9.1")

    ok, out = run(capsys, ck.check_reverse_kl_loss, untouched)
    assert ok is False and out.startswith("Exercise 9.1: not done yet")
    ok, out = run(capsys, ck.check_iw_log_z, lambda log_w: 1 / 0)
    assert ok is False and "ZeroDivisionError" in out


# ----------------------------------------------------------------------------- 9.1


def rkl(flow, energy, eps, log_det_sign=-1, energy_sign=1, reduce="mean", use_log_prob=False):
    x, log_det = flow.inverse(eps)
    if use_log_prob:
        log_q = flow.log_prob(x)
    else:
        log_q = standard_normal_log_prob(eps) + log_det_sign * log_det
    value = log_q + energy_sign * energy(x)
    return value.mean() if reduce == "mean" else value.sum()


def test_reverse_kl_loss(capsys):
    accepts(capsys, ck.check_reverse_kl_loss, rkl)
    accepts(capsys, ck.check_reverse_kl_loss, lambda f, e, eps: rkl(f, e, eps, use_log_prob=True))
    accepts(capsys, ck.check_reverse_kl_loss, lambda f, e, eps: rkl(f, e, eps).item())
    rejects(capsys, ck.check_reverse_kl_loss, lambda f, e, eps: rkl(f, e, eps, log_det_sign=0),
            hint="the log-det is missing")  # fmt: skip
    rejects(capsys, ck.check_reverse_kl_loss, lambda f, e, eps: rkl(f, e, eps, log_det_sign=1),
            hint="sign of the log-det")  # fmt: skip
    rejects(capsys, ck.check_reverse_kl_loss, lambda f, e, eps: rkl(f, e, eps, energy_sign=-1),
            hint="sign of the energy")  # fmt: skip
    rejects(capsys, ck.check_reverse_kl_loss, lambda f, e, eps: rkl(f, e, eps, reduce="sum"),
            hint="summed over the batch")  # fmt: skip
    rejects(capsys, ck.check_reverse_kl_loss, lambda f, e, eps: "0.3", hint="not a string")
    rejects(capsys, ck.check_reverse_kl_loss, lambda f, e, eps: torch.zeros(3), hint="single")
    rejects(capsys, ck.check_reverse_kl_loss, lambda f, e, eps: None, hint="should be a number")


# ----------------------------------------------------------------------------- 9.2


def iw(log_w):
    n = log_w.numel()
    w = (log_w - log_w.max()).exp()
    return torch.logsumexp(log_w, 0) - math.log(n), w.std() / (math.sqrt(n) * w.mean())


def iw_numpy(log_w):
    import numpy as np

    a = log_w.numpy()
    m = a.max()
    w = np.exp(a - m)
    return float(m + np.log(w.mean())), float(w.std(ddof=1) / (np.sqrt(len(a)) * w.mean()))


def iw_scipy(log_w):
    from scipy.special import logsumexp

    a = log_w.numpy()
    log_z = logsumexp(a) - math.log(len(a))
    w = torch.exp(log_w - log_z)  # weights divided by their mean: SE = sd / sqrt(n)
    return log_z, float(w.std() / math.sqrt(len(a)))


def test_iw_log_z(capsys):
    accepts(capsys, ck.check_iw_log_z, iw)
    accepts(capsys, ck.check_iw_log_z, iw_numpy)
    accepts(capsys, ck.check_iw_log_z, iw_scipy)
    accepts(capsys, ck.check_iw_log_z, lambda lw: list(iw(lw)))
    rejects(capsys, ck.check_iw_log_z, lambda lw: (lw.mean(), iw(lw)[1]),
            hint="lower bound")  # fmt: skip
    rejects(capsys, ck.check_iw_log_z, lambda lw: (torch.logsumexp(lw, 0), iw(lw)[1]),
            hint="subtract log n")  # fmt: skip
    rejects(capsys, ck.check_iw_log_z, lambda lw: (lw.exp().mean().log(), iw(lw)[1]),
            hint="overflow")  # fmt: skip
    rejects(capsys, ck.check_iw_log_z, lambda lw: (iw(lw)[0], lw.std() / math.sqrt(lw.numel())),
            hint="delta method")  # fmt: skip
    rejects(capsys, ck.check_iw_log_z, lambda lw: iw(lw)[0], hint="return a pair")
    rejects(capsys, ck.check_iw_log_z, lambda lw: ("a", "b"), hint="not a string")


# ----------------------------------------------------------------------------- 9.3


def coupling(x, c, net, wrong=""):
    x1, x2 = x[:, :1], x[:, 1:]
    s, t = net(torch.cat([x2 if wrong == "x2" else x1, c], dim=1)).chunk(2, dim=1)
    z2 = (x2 - t) * (-s).exp() if wrong == "inverse" else x2 * s.exp() + t
    log_det = -s[:, 0] if wrong == "sign" else s[:, 0]
    return torch.cat([x1, z2], dim=1), log_det


def coupling_by_index(x, c, net):
    st = net(torch.hstack([x[:, [0]], c]))
    z = x.clone()
    z[:, 1] = x[:, 1] * torch.exp(st[:, 0]) + st[:, 1]
    return z, st[:, 0]


def test_conditional_coupling(capsys):
    accepts(capsys, ck.check_conditional_coupling, coupling)
    accepts(capsys, ck.check_conditional_coupling, coupling_by_index)
    accepts(capsys, ck.check_conditional_coupling,
            lambda x, c, net: tuple(coupling(x, c, net)))  # fmt: skip
    rejects(capsys, ck.check_conditional_coupling, lambda x, c, n: coupling(x, c, n, "x2"),
            hint="feed the KEPT half")  # fmt: skip
    rejects(capsys, ck.check_conditional_coupling, lambda x, c, n: coupling(x, c, n, "inverse"),
            hint="the inverse layer")  # fmt: skip
    rejects(capsys, ck.check_conditional_coupling, lambda x, c, n: coupling(x, c, n, "sign"),
            hint="sign of the log-det")  # fmt: skip
    rejects(capsys, ck.check_conditional_coupling, lambda x, c, n: (x * 2, torch.zeros(32)),
            hint="z1 must be x1")  # fmt: skip
    rejects(capsys, ck.check_conditional_coupling, lambda x, c, n: coupling(x, c, n)[0],
            hint="pair")  # fmt: skip
    rejects(capsys, ck.check_conditional_coupling, lambda x, c, n: (x[:3], x[:3, 0]),
            hint="shape")  # fmt: skip


# ----------------------------------------------------------------------------- 9.4


def tri(x, s1, s2, rho):
    z1 = x[:, 0] / s1
    z2 = (x[:, 1] - rho * s2 / s1 * x[:, 0]) / (s2 * math.sqrt(1 - rho**2))
    return torch.stack([z1, z2], dim=1)


def tri_cholesky(x, s1, s2, rho):
    cov = torch.tensor([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]], dtype=x.dtype)
    chol = torch.linalg.cholesky(cov)
    return torch.linalg.solve_triangular(chol, x.T, upper=False).T


def tri_cdf(x, s1, s2, rho):
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=x.dtype), 1.0)
    u1 = normal.cdf(x[:, 0] / s1)
    mean = rho * s2 / s1 * x[:, 0]
    u2 = normal.cdf((x[:, 1] - mean) / (s2 * math.sqrt(1 - rho**2)))
    return torch.stack([normal.icdf(u1), normal.icdf(u2)], dim=1)


def test_triangular_gaussian(capsys):
    accepts(capsys, ck.check_triangular_gaussian, tri)
    accepts(capsys, ck.check_triangular_gaussian, tri_cholesky)
    accepts(capsys, ck.check_triangular_gaussian, tri_cdf)
    rejects(capsys, ck.check_triangular_gaussian,
            lambda x, s1, s2, r: x / torch.tensor([s1, s2]), hint="CONDITIONAL law")  # fmt: skip

    def no_sqrt(x, s1, s2, rho):
        return torch.stack([x[:, 0] / s1, (x[:, 1] - rho * s2 / s1 * x[:, 0]) / s2], dim=1)

    rejects(capsys, ck.check_triangular_gaussian, no_sqrt, hint="conditional standard deviation")

    def upper(x, s1, s2, rho):
        return tri(x.flip(1), s2, s1, rho).flip(1)

    rejects(capsys, ck.check_triangular_gaussian, upper, hint="MARGINAL")
    # a right map returned in float32 is right to float32 precision: passes
    accepts(capsys, ck.check_triangular_gaussian, lambda x, s1, s2, r: tri(x, s1, s2, r).float())
    # numpy is accepted wherever the text does not fix the type (the checking policy)
    accepts(capsys, ck.check_triangular_gaussian, lambda x, s1, s2, r: tri(x, s1, s2, r).numpy())


# ----------------------------------------------------------------------------- 9.5


def hutch_vjp(v, x, eps):
    x = x.requires_grad_(True)
    (u,) = torch.autograd.grad(v(x), x, grad_outputs=eps)
    return (u * eps).sum(1)


def hutch_jvp(v, x, eps):
    _, jv = torch.func.jvp(v, (x,), (eps,))
    return (eps * jv).sum(1)


def hutch_full(v, x, eps):
    jac = torch.stack([torch.autograd.functional.jacobian(v, xi) for xi in x])
    return torch.einsum("bi,bij,bj->b", eps, jac, eps)


def test_hutchinson(capsys):
    accepts(capsys, ck.check_hutchinson, hutch_vjp)
    accepts(capsys, ck.check_hutchinson, hutch_jvp)
    accepts(capsys, ck.check_hutchinson, hutch_full)
    rejects(capsys, ck.check_hutchinson, lambda v, x, e: (e * v(x)).sum(1).detach(),
            hint="no derivative")  # fmt: skip

    def exact(v, x, eps):
        jac = torch.stack([torch.autograd.functional.jacobian(v, xi) for xi in x])
        return torch.diagonal(jac, dim1=1, dim2=2).sum(1)

    rejects(capsys, ck.check_hutchinson, exact, hint="exact trace")
    rejects(capsys, ck.check_hutchinson, lambda v, x, e: hutch_vjp(v, x, e).sum().expand(16),
            hint="one estimate per row")  # fmt: skip
    rejects(capsys, ck.check_hutchinson, lambda v, x, e: hutch_vjp(v, x, e)[:3], hint="shape")
    rejects(capsys, ck.check_hutchinson, lambda v, x, e: None, hint="torch.Tensor")
