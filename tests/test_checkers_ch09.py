"""Chapter 9 checkers: for each exercise a table of correct-but-different answers that must
pass (another formula, float32 constants, torch distributions, numpy or scipy, another valid
order) and of typical wrong answers, each rejected with a hint naming that mistake (one
printed line, no traceback); bad returns (strings, wrong shapes, None) get a hint too."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _checker_runs import accepts, rejects, run

import coursekit.checkers as ck
from coursekit.checkers import _common
from coursekit.checkers.ch09_transport import CountingField, random_field
from coursekit.flows import standard_normal_log_prob

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MVN = torch.distributions.MultivariateNormal
Normal = torch.distributions.Normal


def test_chapter_9_has_five_exercises_and_not_done_is_reported(capsys):
    assert _common.chapter_exercises(9) == ["9.1", "9.2", "9.3", "9.4", "9.5"]

    def untouched(*args):
        raise NotImplementedError("Exercise 9.1")

    ok, out = run(capsys, ck.check_reverse_kl_loss, untouched)
    assert ok is False and out.startswith("Exercise 9.1: not done yet") and "notebook 09" in out
    ok, out = run(capsys, ck.check_iw_log_z, lambda log_w: 1 / 0)
    assert ok is False and "ZeroDivisionError" in out and "notebook 09" in out


# ---------------------------------------------------------------- 9.1 the reverse-KL loss


def rkl(flow, energy, eps, mode="ok"):
    x, log_det = flow.inverse(eps)
    log_n = standard_normal_log_prob(eps)
    log_q = {
        "no_ld": log_n,
        "plus_ld": log_n + log_det,
        "minus_log_q": -(log_n - log_det),
        "base_at_x": standard_normal_log_prob(x) - log_det,
        "no_const": -0.5 * (eps**2).sum(1) - log_det,
    }.get(mode, log_n - log_det)
    e = {
        "minus_e": -energy(x),
        "e_at_eps": energy(eps),
        "detach_x": energy(x.detach()),
    }.get(mode, energy(x))
    if mode == "detach_ld":
        log_q = log_n - log_det.detach()
    if mode == "forward":
        x_fwd, ld_fwd = flow(eps)
        log_q, e = log_n - ld_fwd, energy(x_fwd)
    return (log_q + e).sum() if mode == "sum" else (log_q + e).mean()


def rkl_float32_constant(flow, energy, eps):
    x, log_det = flow.inverse(eps)
    log_2pi = torch.log(torch.tensor(2 * torch.pi))  # a float32 constant
    return (-0.5 * (eps**2).sum(1) - log_2pi - log_det + energy(x)).mean()


def rkl_mvn(flow, energy, eps):
    x, log_det = flow.inverse(eps)
    return (MVN(torch.zeros(2), torch.eye(2)).log_prob(eps) - log_det + energy(x)).mean()


def rkl_log_prob(flow, energy, eps):
    x = flow.inverse(eps)[0]
    return (flow.log_prob(x) + energy(x)).mean()


def rkl_numpy(flow, energy, eps):
    with torch.no_grad():
        x, log_det = flow.inverse(eps)
        e, ld, a = energy(x).numpy(), log_det.numpy(), eps.numpy()
    return np.mean(-0.5 * (a**2).sum(1) - np.log(2 * np.pi) - ld + e)


RKL_RIGHT = {
    "the reference": rkl,
    "flow.log_prob(x), a second pass": rkl_log_prob,
    ".item(), a Python float": lambda f, e, eps: rkl(f, e, eps).item(),
    "float32 log(2π) constant": rkl_float32_constant,
    "MultivariateNormal(zeros(2), eye(2)), float32": rkl_mvn,
    "numpy": rkl_numpy,
    "computed under torch.no_grad, a value": lambda *a: torch.no_grad()(rkl)(*a),
}
RKL_WRONG = {
    "log-det missing": (lambda *a: rkl(*a, mode="no_ld"), "the log-det is missing"),
    "sign of the log-det": (lambda *a: rkl(*a, mode="plus_ld"), "sign of the log-det"),
    "sign of the energy": (lambda *a: rkl(*a, mode="minus_e"), "sign of the energy"),
    "sign of log q": (lambda *a: rkl(*a, mode="minus_log_q"), "sign of log q"),
    "summed over the batch": (lambda *a: rkl(*a, mode="sum"), "summed over the batch"),
    "base density at x": (lambda *a: rkl(*a, mode="base_at_x"), "not at the sample x"),
    "energy at eps": (lambda *a: rkl(*a, mode="e_at_eps"), "energy is evaluated at the sample"),
    "forward instead of inverse": (lambda *a: rkl(*a, mode="forward"), "INVERSE"),
    "no normalisation": (lambda *a: rkl(*a, mode="no_const"), "normalisation constant"),
    "x detached in the energy": (lambda *a: rkl(*a, mode="detach_x"), "reparameterisation"),
    "log-det detached": (lambda *a: rkl(*a, mode="detach_ld"), "log_det is detached"),
    "a string": (lambda f, e, eps: "0.3", "not a string"),
    "a vector": (lambda f, e, eps: torch.zeros(3), "single number"),
    "None": (lambda f, e, eps: None, "should be a number"),
}


@pytest.mark.parametrize("name", RKL_RIGHT)
def test_9_1_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_reverse_kl_loss, RKL_RIGHT[name], exercise="9.1")


@pytest.mark.parametrize("name", RKL_WRONG)
def test_9_1_wrong_answers_get_their_hint(capsys, name):
    fn, hint = RKL_WRONG[name]
    rejects(capsys, ck.check_reverse_kl_loss, fn, hint=hint, exercise="9.1")


# ---------------------------------------------------------------- 9.2 importance-weighted log Z


def iw(log_w):
    n = log_w.numel()
    w = (log_w - log_w.max()).exp()
    return torch.logsumexp(log_w, 0) - math.log(n), w.std() / (math.sqrt(n) * w.mean())


def iw_numpy(log_w, ddof=1):
    a = log_w.numpy()
    m = a.max()
    w = np.exp(a - m)
    return float(m + np.log(w.mean())), float(w.std(ddof=ddof) / (np.sqrt(len(a)) * w.mean()))


def iw_scipy(log_w):
    from scipy.special import logsumexp

    a = log_w.numpy()
    log_z = logsumexp(a) - math.log(len(a))
    w = torch.exp(log_w - log_z)  # weights divided by their mean: SE = sd / sqrt(n)
    return log_z, float(w.std() / math.sqrt(len(a)))


def iw_float32(log_w):
    lw = log_w.float()
    w = torch.exp(lw - lw.max())
    return torch.logsumexp(lw, 0) - math.log(len(lw)), w.std() / (len(lw) ** 0.5 * w.mean())


def iw_wrong_se(log_w, mode):
    n = log_w.numel()
    w = (log_w - log_w.max()).exp()
    se = {
        "log_w": log_w.std() / math.sqrt(n),
        "no_sqrt_n": w.std() / w.mean(),
        "variance": w.var() / (n * w.mean() ** 2),
        "no_mean": w.std() / math.sqrt(n),
        "overflow": log_w.exp().std() / (math.sqrt(n) * log_w.exp().mean()),
    }[mode]
    return iw(log_w)[0], se


def iw_in_place(log_w):
    m = float(log_w.max())
    log_w -= m  # changes the caller's tensor
    w = log_w.exp()
    return m + float(w.mean().log()), float(w.std() / (math.sqrt(len(w)) * w.mean()))


IW_RIGHT = {
    "the reference": iw,
    "numpy, sd with n - 1": iw_numpy,
    "numpy's default sd (n in the variance)": lambda lw: iw_numpy(lw, ddof=0),
    "scipy logsumexp, weights over their mean": iw_scipy,
    "float32": iw_float32,
    "a list": lambda lw: list(iw(lw)),
}
IW_WRONG = {
    "mean of the log-weights": (lambda lw: (lw.mean(), iw(lw)[1]), "lower bound"),
    "log of the sum": (lambda lw: (torch.logsumexp(lw, 0), iw(lw)[1]), "subtract log n"),
    "exp overflows": (lambda lw: (lw.exp().mean().log(), iw(lw)[1]), "overflow"),
    "SE of log w": (lambda lw: iw_wrong_se(lw, "log_w"), "delta method"),
    "SE without sqrt(n)": (lambda lw: iw_wrong_se(lw, "no_sqrt_n"), "divide by sqrt(n)"),
    "variance for SE": (lambda lw: iw_wrong_se(lw, "variance"), "its square root"),
    "SE not relative": (lambda lw: iw_wrong_se(lw, "no_mean"), "divide by the mean"),
    "SE overflows": (lambda lw: iw_wrong_se(lw, "overflow"), "standard error is not finite"),
    "pair swapped": (lambda lw: iw(lw)[::-1], "wrong order"),
    "log Z alone": (lambda lw: iw(lw)[0], "return a pair"),
    "strings": (lambda lw: ("a", "b"), "not a string"),
    "log_w shifted in place": (iw_in_place, "changed its input log_w in place"),
}


@pytest.mark.parametrize("name", IW_RIGHT)
def test_9_2_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_iw_log_z, IW_RIGHT[name], exercise="9.2")


@pytest.mark.parametrize("name", IW_WRONG)
def test_9_2_wrong_answers_get_their_hint(capsys, name):
    fn, hint = IW_WRONG[name]
    rejects(capsys, ck.check_iw_log_z, fn, hint=hint, exercise="9.2")


# ---------------------------------------------------------------- 9.3 conditional coupling


def coupling(x, c, net, wrong=""):
    x1, x2 = x[:, :1], x[:, 1:]
    s, t = net(torch.cat([x2 if wrong == "x2" else x1, c], dim=1)).chunk(2, dim=1)
    if wrong == "swap":
        s, t = t, s
    z2 = {
        "inverse": (x2 - t) * (-s).exp(),
        "scale_s": x2 * s + t,
    }.get(wrong, x2 * s.exp() + t)
    log_det = {"sign": -s[:, 0], "det": s[:, 0].exp(), "batch_sum": s.sum()}.get(wrong, s[:, 0])
    return torch.cat([x1, z2], dim=1), log_det


def coupling_by_index(x, c, net):
    st = net(torch.hstack([x[:, [0]], c]))
    z = x.clone()
    z[:, 1] = x[:, 1] * torch.exp(st[:, 0]) + st[:, 1]
    return z, st[:, 0]


def coupling_mask_form(x, c, net):
    b = torch.tensor([1.0, 0.0], dtype=x.dtype)  # b ⊙ x + (1 − b) ⊙ (x ⊙ exp(s) + t)
    s, t = net(torch.cat([(b * x)[:, :1], c], 1)).split(1, dim=1)
    return b * x + (1 - b) * (x * s.exp() + t), ((1 - b) * s).sum(1)


def coupling_numpy(x, c, net):
    with torch.no_grad():
        z, log_det = coupling(x, c, net)
    return z.numpy(), log_det.numpy()


def coupling_in_place(x, c, net):
    s, t = net(torch.cat([x[:, :1], c], 1)).chunk(2, dim=1)
    x[:, 1:] = x[:, 1:] * s.exp() + t  # writes into the caller's x
    return x, s[:, 0]


COUPLING_RIGHT = {
    "the reference": coupling,
    "index assignment on a copy": coupling_by_index,
    "RealNVP mask form, split, sum": coupling_mask_form,
    "numpy arrays": coupling_numpy,
    "a list": lambda x, c, net: list(coupling(x, c, net)),
}
COUPLING_WRONG = {
    "net fed x2": (lambda x, c, n: coupling(x, c, n, "x2"), "feed the KEPT half"),
    "inverse formula": (lambda x, c, n: coupling(x, c, n, "inverse"), "the inverse layer"),
    "sign of the log-det": (lambda x, c, n: coupling(x, c, n, "sign"), "sign of the log-det"),
    "s and t swapped": (lambda x, c, n: coupling(x, c, n, "swap"), "swapped"),
    "scale s, not exp(s)": (lambda x, c, n: coupling(x, c, n, "scale_s"), "the scale is exp(s)"),
    "det, not log-det": (lambda x, c, n: coupling(x, c, n, "det"), "return its log"),
    "log-det summed over the batch": (
        lambda x, c, n: coupling(x, c, n, "batch_sum"),
        "do not sum over the batch",
    ),
    "context forgotten": (
        lambda x, c, n: torch.cat([x[:, :1], x[:, 1:] * n(x[:, :1]).exp()], 1),
        "torch.cat([x1, c], dim=1)",
    ),
    "z1 changed": (lambda x, c, n: (x * 2, torch.zeros(32)), "z1 must be x1"),
    "z alone": (lambda x, c, n: coupling(x, c, n)[0], "pair"),
    "wrong shapes": (lambda x, c, n: (x[:3], x[:3, 0]), "shape"),
    "x edited in place": (coupling_in_place, "changed its input x in place"),
    "float32 input to a float64 net": (
        lambda x, c, n: coupling(x.float(), c.float(), n),
        "must have the same dtype",
    ),
}


@pytest.mark.parametrize("name", COUPLING_RIGHT)
def test_9_3_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_conditional_coupling, COUPLING_RIGHT[name], exercise="9.3")


@pytest.mark.parametrize("name", COUPLING_WRONG)
def test_9_3_wrong_answers_get_their_hint(capsys, name):
    fn, hint = COUPLING_WRONG[name]
    rejects(capsys, ck.check_conditional_coupling, fn, hint=hint, exercise="9.3")


# ---------------------------------------------------------------- 9.4 the triangular map


def tri(x, s1, s2, rho, mode="ok"):
    z1 = x[:, 0] / (s1**2 if mode == "z1_var" else s1)
    mean = rho * s2 / s1 * x[:, 0]
    sd = s2 * math.sqrt(1 - rho**2)
    z2 = {
        "marginal": x[:, 1] / s2,
        "no_sqrt": (x[:, 1] - mean) / s2,
        "variance": (x[:, 1] - mean) / sd**2,
        "plus_mean": (x[:, 1] + mean) / sd,
    }.get(mode, (x[:, 1] - mean) / sd)
    return torch.stack([z1, z2], dim=1)


def tri_cholesky(x, s1, s2, rho):
    cov = torch.tensor([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]], dtype=x.dtype)
    chol = torch.linalg.cholesky(cov)
    return torch.linalg.solve_triangular(chol, x.T, upper=False).T


def tri_inverse_factor(x, s1, s2, rho):
    chol = np.linalg.cholesky(np.array([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]]))
    return x.numpy() @ np.linalg.inv(chol).T


def tri_cdf(x, s1, s2, rho):
    normal = Normal(torch.tensor(0.0, dtype=x.dtype), 1.0)
    u1 = normal.cdf(x[:, 0] / s1)
    mean = rho * s2 / s1 * x[:, 0]
    u2 = normal.cdf((x[:, 1] - mean) / (s2 * math.sqrt(1 - rho**2)))
    return torch.stack([normal.icdf(u1), normal.icdf(u2)], dim=1)


def tri_scipy(x, s1, s2, rho):
    from scipy.stats import norm

    a = x.numpy()
    u1 = norm(0, s1).cdf(a[:, 0])
    u2 = norm(rho * s2 / s1 * a[:, 0], s2 * np.sqrt(1 - rho**2)).cdf(a[:, 1])
    return np.stack([norm.ppf(u1), norm.ppf(u2)], axis=1)


def tri_symmetric(x, s1, s2, rho):
    cov = torch.tensor([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]], dtype=x.dtype)
    evals, evecs = torch.linalg.eigh(cov)
    return x @ (evecs @ torch.diag(evals**-0.5) @ evecs.T)


def tri_cdf_values(x, s1, s2, rho):
    return Normal(0.0, 1.0).cdf(tri(x, s1, s2, rho))


def tri_in_place(x, s1, s2, rho):
    x[:, 1] -= rho * s2 / s1 * x[:, 0]
    x[:, 1] /= s2 * math.sqrt(1 - rho**2)
    x[:, 0] /= s1
    return x


TRI_RIGHT = {
    "the reference": tri,
    "Cholesky factor, triangular solve": tri_cholesky,
    "inverse Cholesky factor, numpy": tri_inverse_factor,
    "CDF then inverse CDF": tri_cdf,
    "scipy.stats.norm": tri_scipy,
    "float32": lambda x, s1, s2, r: tri(x, s1, s2, r).float(),
}
TRI_WRONG = {
    "marginal of x2": (lambda *a: tri(*a, mode="marginal"), "CONDITIONAL law"),
    "sd without sqrt(1 - rho^2)": (
        lambda *a: tri(*a, mode="no_sqrt"),
        "conditional standard deviation",
    ),
    "divided by the variance": (lambda *a: tri(*a, mode="variance"), "not the variance"),
    "sign of the conditional mean": (lambda *a: tri(*a, mode="plus_mean"), "sign of the"),
    "z1 divided by the variance": (lambda *a: tri(*a, mode="z1_var"), "z1 divides"),
    "x1 conditioned on x2": (lambda x, s1, s2, r: tri(x.flip(1), s2, s1, r).flip(1), "MARGINAL"),
    "symmetric whitening": (tri_symmetric, "not triangular"),
    "CDF values": (tri_cdf_values, "apply Φ⁻¹"),
    "wrong shape": (lambda x, s1, s2, r: tri(x, s1, s2, r)[:, 0], "shape"),
    "x standardised in place": (tri_in_place, "changed its input x in place"),
}


@pytest.mark.parametrize("name", TRI_RIGHT)
def test_9_4_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_triangular_gaussian, TRI_RIGHT[name], exercise="9.4")


@pytest.mark.parametrize("name", TRI_WRONG)
def test_9_4_wrong_answers_get_their_hint(capsys, name):
    fn, hint = TRI_WRONG[name]
    rejects(capsys, ck.check_triangular_gaussian, fn, hint=hint, exercise="9.4")


# ---------------------------------------------------------------- 9.5 Hutchinson's estimator


def hutch_vjp(v, x, eps, ones=False):
    x = x.requires_grad_(True)
    (u,) = torch.autograd.grad(v(x), x, grad_outputs=torch.ones_like(eps) if ones else eps)
    return (u * eps).sum(1)


def hutch_jvp(v, x, eps):
    _, jv = torch.func.jvp(v, (x,), (eps,))
    return (eps * jv).sum(1)


def hutch_func_vjp(v, x, eps):
    _, pull = torch.func.vjp(v, x)
    return (pull(eps)[0] * eps).sum(-1)


def hutch_vmap_rows(v, x, eps):
    def one(xi, ei):
        _, pull = torch.func.vjp(v, xi)
        return (pull(ei)[0] * ei).sum()

    return torch.func.vmap(one)(x, eps)


def hutch_row_loop(v, x, eps):
    out = []
    for xi, ei in zip(x, eps, strict=True):
        xi = xi[None].detach().requires_grad_(True)
        (u,) = torch.autograd.grad(v(xi), xi, grad_outputs=ei[None])
        out.append(float((u * ei).sum()))
    return np.array(out)


def jac_rows(v, x):
    return torch.stack([torch.autograd.functional.jacobian(v, xi) for xi in x])


def jac_output_loop(v, x):
    x = x.detach().requires_grad_(True)
    out = v(x)
    rows = [torch.autograd.grad(out[:, i].sum(), x, retain_graph=True)[0] for i in range(3)]
    return torch.stack(rows, 1)


def jac_batch(v, x, vectorize=False):
    jac = torch.autograd.functional.jacobian(v, x, vectorize=vectorize)  # (16, 3, 16, 3)
    return torch.stack([jac[b, :, b, :] for b in range(len(x))])


def quadratic(jac, eps):
    return torch.einsum("bi,bij,bj->b", eps, jac, eps)


HUTCH_RIGHT = {
    "one VJP with autograd.grad": hutch_vjp,
    "one JVP with torch.func.jvp": hutch_jvp,
    "torch.autograd.functional.jvp": lambda v, x, e: (
        e * torch.autograd.functional.jvp(v, x, e)[1]
    ).sum(1),
    "torch.func.vjp": hutch_func_vjp,
    "torch.autograd.functional.vjp": lambda v, x, e: (
        torch.autograd.functional.vjp(v, x, e)[1] * e
    ).sum(1),
    "vmap of a VJP per row": hutch_vmap_rows,
    "vmap of torch.func.grad per row": lambda v, x, e: (
        torch.func.vmap(torch.func.grad(lambda xi, ei: (v(xi) * ei).sum()))(x, e) * e
    ).sum(1),
    "a loop of one VJP per row, numpy": hutch_row_loop,
}
HUTCH_WRONG = {
    "no derivative": (lambda v, x, e: (e * v(x)).sum(1).detach(), "no derivative"),
    "the exact trace": (
        lambda v, x, e: torch.diagonal(jac_rows(v, x), dim1=1, dim2=2).sum(1),
        "exact trace",
    ),
    "column sums (grad_outputs of ones)": (
        lambda v, x, e: hutch_vjp(v, x, e, ones=True),
        "grad_outputs must be eps",
    ),
    "u summed without eps": (
        lambda v, x, e: torch.autograd.grad(v(x.requires_grad_(True)), x, e)[0].sum(1),
        "multiply u",
    ),
    "summed over the batch": (
        lambda v, x, e: hutch_vjp(v, x, e).sum().expand(16),
        "one estimate per row",
    ),
    "full Jacobian, row by row": (
        lambda v, x, e: quadratic(jac_rows(v, x), e),
        "48 backward passes through v for 16 evaluation",
    ),
    "full Jacobian, a loop over outputs": (
        lambda v, x, e: quadratic(jac_output_loop(v, x), e),
        "3 backward passes through v for 1 evaluation",
    ),
    "full Jacobian of the batch": (lambda v, x, e: quadratic(jac_batch(v, x), e), "full Jacobian"),
    "full Jacobian, vectorised": (
        lambda v, x, e: quadratic(jac_batch(v, x, vectorize=True), e),
        "a vectorised Jacobian",
    ),
    "full Jacobian, vmap of jacrev": (
        lambda v, x, e: quadratic(torch.func.vmap(torch.func.jacrev(v))(x), e),
        "a vectorised Jacobian",
    ),
    "wrong shape": (lambda v, x, e: hutch_vjp(v, x, e)[:3], "shape"),
    "None": (lambda v, x, e: None, "torch.Tensor"),
}


@pytest.mark.parametrize("name", HUTCH_RIGHT)
def test_9_5_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_hutchinson, HUTCH_RIGHT[name], exercise="9.5")


@pytest.mark.parametrize("name", HUTCH_WRONG)
def test_9_5_wrong_answers_get_their_hint(capsys, name):
    fn, hint = HUTCH_WRONG[name]
    rejects(capsys, ck.check_hutchinson, fn, hint=hint, exercise="9.5")


def test_9_5_counting_field_counts_backward_passes_not_evaluations():
    v = CountingField(random_field(0))
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    out = v(x)
    for i in range(3):
        torch.autograd.grad(out[:, i].sum(), x, retain_graph=True)
    assert (v.calls, v.backward, v.full) == (1, 3, False)
    assert torch.equal(out, random_field(0)(x))
