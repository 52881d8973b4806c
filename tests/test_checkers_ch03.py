"""Chapter 3 checkers (3.1–3.6): for each exercise a table of correct-but-different answers
that must pass (another formula, float32 constants, numpy, another valid order) and of typical
wrong answers, each rejected with a hint naming that mistake (one printed line, no traceback,
no LaTeX)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _checker_runs import rejects, table_tests
from scipy import stats

import coursekit.checkers as ck
from coursekit import changevar
from coursekit.checkers import _common

pytestmark = pytest.mark.usefixtures("one_torch_thread")

jacrev, vmap = torch.func.jacrev, torch.func.vmap


def test_chapter_3_exercises():
    assert _common.chapter_exercises(3) == ["3.1", "3.2", "3.3", "3.4", "3.5", "3.6"]


def _jac(f, x):
    return vmap(jacrev(lambda t: f(t[None])[0]))(x)


# ---------------------------------------------------------------- 3.1 log|det J| by autograd


def _ld_loop(f, x):
    rows = []
    for xb in x:
        jac = torch.autograd.functional.jacobian(lambda v: f(v[None])[0], xb)
        rows.append(torch.linalg.slogdet(jac).logabsdet)
    return torch.stack(rows)


def _ld_rows_by_backward(f, x):
    x = x.detach().clone().requires_grad_(True)
    out = f(x)
    rows = [torch.autograd.grad(out[:, i].sum(), x, retain_graph=True)[0] for i in range(2)]
    jac = torch.stack(rows, 1)  # (n, d, d): row i is the gradient of output i
    return torch.log(torch.abs(torch.det(jac))).detach()


def _ld_numpy_float32(f, x):
    jac = _jac(f, x).float().numpy()
    return np.linalg.slogdet(jac)[1]


LD_RIGHT = {
    "autograd.functional.jacobian in a loop + slogdet": _ld_loop,
    "vmap(jacrev) + slogdet": lambda f, x: torch.linalg.slogdet(_jac(f, x)).logabsdet,
    "one backward pass per output, log|det|": _ld_rows_by_backward,
    "numpy slogdet of a float32 Jacobian": _ld_numpy_float32,
    "the transposed Jacobian (same det)": lambda f, x: (
        torch.linalg.slogdet(_jac(f, x).transpose(1, 2)).logabsdet
    ),
    "coursekit.changevar": changevar.log_abs_det_jacobian,
}


def _ld_column_sums(f, x):
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x).sum(), x)
    return g.abs().log().sum(1)


LD_WRONG = {
    "log det without abs (NaN for det < 0)": (
        lambda f, x: torch.logdet(_jac(f, x)),
        "det J can be negative",
    ),
    "|det J| instead of its log": (
        lambda f, x: torch.linalg.det(_jac(f, x)).abs(),
        "return its logarithm",
    ),
    "log det(J Jᵀ)": (
        lambda f, x: torch.logdet(_jac(f, x) @ _jac(f, x).transpose(1, 2)),
        "det(J Jᵀ) = det(J)²",
    ),
    "grad of the sum (column sums)": (_ld_column_sums, "column sums of J"),
    "the Jacobian matrices themselves": (lambda f, x: _jac(f, x), "Jacobian matrices"),
}


test_3_1_right, test_3_1_wrong = table_tests(
    LD_RIGHT, LD_WRONG, ck.check_log_abs_det_jacobian, "3.1"
)


# ---------------------------------------------------------------- 3.2 a linear map of a Gaussian


def _lin(a, b, z, mode="ok"):
    d = z.shape[1]
    if mode == "A applied":
        x = (z - b) @ a.T
    elif mode == "no b":
        x = torch.linalg.solve(a, z.T).T
    elif mode == "row convention":
        x = (z - b) @ torch.linalg.inv(a)
    else:
        x = torch.linalg.solve(a, (z - b).T).T
    log_px = -0.5 * (x**2).sum(1) - 0.5 * d * math.log(2 * math.pi)
    logdet = torch.linalg.slogdet(a).logabsdet
    if mode == "no abs":
        return log_px - torch.log(torch.det(a))
    if mode == "times det":
        return log_px + logdet
    if mode == "no jacobian":
        return log_px
    if mode == "no constant":
        return -0.5 * (x**2).sum(1) - logdet
    return log_px - logdet


def _lin_float32_constant(a, b, z):
    x = torch.linalg.solve(a, (z - b).T).T
    log_2pi = torch.log(torch.tensor(2 * torch.pi))  # float32
    return -0.5 * (x**2).sum(1) - 0.5 * z.shape[1] * log_2pi - 0.5 * torch.logdet(a @ a.T)


def _lin_mvn(a, b, z):
    return torch.distributions.MultivariateNormal(b, covariance_matrix=a @ a.T).log_prob(z)


def _lin_scipy(a, b, z):
    return stats.multivariate_normal(b.numpy(), (a @ a.T).numpy()).logpdf(z.numpy())


def _lin_inverse_rows(a, b, z):
    x = (z - b) @ torch.linalg.inv(a).T
    normal = torch.distributions.Normal(0.0, 1.0)
    return normal.log_prob(x).sum(1) + torch.log(torch.abs(torch.det(torch.linalg.inv(a))))


LIN_RIGHT = {
    "solve + slogdet": _lin,
    "float32 log 2π, ½ log det(A Aᵀ)": _lin_float32_constant,
    "MultivariateNormal(b, A Aᵀ)": _lin_mvn,
    "scipy, numpy result": _lin_scipy,
    "(z − b) @ A⁻ᵀ, float32 Normal, log|det A⁻¹|": _lin_inverse_rows,
}
LIN_WRONG = {
    "log det A without abs": (lambda *a: _lin(*a, mode="no abs"), "|det A|"),
    "multiplied by |det A|": (lambda *a: _lin(*a, mode="times det"), "2·log|det A|"),
    "Jacobian term missing": (lambda *a: _lin(*a, mode="no jacobian"), "term of eq (11)"),
    "A applied instead of A⁻¹": (lambda *a: _lin(*a, mode="A applied"), "applied A"),
    "b not subtracted": (lambda *a: _lin(*a, mode="no b"), "subtract b"),
    "(z − b) @ A⁻¹ with rows": (lambda *a: _lin(*a, mode="row convention"), "A⁻ᵀ"),
    "normalisation missing": (lambda *a: _lin(*a, mode="no constant"), "normalisation"),
}


test_3_2_right, test_3_2_wrong = table_tests(
    LIN_RIGHT, LIN_WRONG, ck.check_log_density_linear, "3.2"
)


def test_3_2_tests_a_negative_determinant():
    assert float(torch.linalg.det(torch.tensor(ck.ch03.A_NEGATIVE_DET))) < 0


# ---------------------------------------------------------------- 3.3 polar coordinates


def _polar(r, theta):
    return r * torch.exp(-0.5 * r**2) / (2 * math.pi) + 0 * theta


def _polar_autograd(r, theta):
    """eq (11) with the Jacobian of (r, θ) ↦ (r cos θ, r sin θ) by autograd."""
    inv = lambda p: torch.stack([p[:, 0] * torch.cos(p[:, 1]), p[:, 0] * torch.sin(p[:, 1])], 1)
    pts = torch.stack([r, theta], 1)
    log_det = torch.linalg.slogdet(_jac(inv, pts)).logabsdet
    x = inv(pts)
    return torch.exp(-0.5 * (x**2).sum(1) - math.log(2 * math.pi) + log_det)


POLAR_RIGHT = {
    "closed form": _polar,
    "float32 π": lambda r, t: r * torch.exp(-(r**2) / 2) / (2 * torch.tensor(torch.pi)),
    "scipy Rayleigh × uniform, numpy": lambda r, t: (
        stats.rayleigh.pdf(r.numpy()) * stats.uniform(0, 2 * np.pi).pdf(t.numpy())
    ),
    "eq (11) with an autograd Jacobian": _polar_autograd,
}
POLAR_WRONG = {
    "Jacobian factor missing": (lambda r, t: _polar(r, t) / r, "= r"),
    "divided by r": (lambda r, t: _polar(r, t) / r**2, "divided by r"),
    "no 1/(2π)": (lambda r, t: _polar(r, t) * 2 * math.pi, "factor 2π"),
    "exp(−r) base": (lambda r, t: r * torch.exp(-r) / (2 * math.pi), "Rayleigh"),
}


test_3_3_right, test_3_3_wrong = table_tests(
    POLAR_RIGHT, POLAR_WRONG, ck.check_polar_density, "3.3"
)


# ---------------------------------------------------------------- 3.4 triangular log-det


def _diag_loop(f, x):
    x = x.detach().clone().requires_grad_(True)
    z = f(x)
    total = 0
    for i in range(x.shape[1]):
        (g,) = torch.autograd.grad(z[:, i].sum(), x, retain_graph=True)
        total = total + g[:, i].abs().log()
    return total.detach()


def _diag_of_full_jacobian(f, x):
    return torch.diagonal(_jac(f, x), dim1=1, dim2=2).abs().log().sum(1)


def _diag_jvp(f, x):
    """One forward-mode pass per input direction e_i, keeping entry i."""
    d = x.shape[1]
    out = []
    for i in range(d):
        e = torch.zeros_like(x)
        e[:, i] = 1.0
        _, tangent = torch.func.jvp(f, (x,), (e,))
        out.append(tangent[:, i])
    return torch.stack(out, 1).abs().log().sum(1)


TRI_RIGHT = {
    "one backward pass per output": _diag_loop,
    "diagonal of the full Jacobian": _diag_of_full_jacobian,
    "forward mode, one jvp per coordinate": _diag_jvp,
    "slogdet of the Jacobian, float32 numpy": lambda f, x: np.linalg.slogdet(
        _jac(f, x).float().numpy()
    )[1],
}
TRI_WRONG = {
    "grad of the sum (column sums)": (_ld_column_sums, "column sums of J"),
    "jvp with ones (row sums)": (
        lambda f, x: torch.func.jvp(f, (x,), (torch.ones_like(x),))[1].abs().log().sum(1),
        "row sums",
    ),
    "no absolute value": (
        lambda f, x: torch.diagonal(_jac(f, x), dim1=1, dim2=2).log().sum(1),
        "absolute value",
    ),
    "every entry": (
        lambda f, x: _jac(f, x).abs().clamp_min(1e-300).log().sum((1, 2)),
        "only the diagonal",
    ),
    "the determinant, not its log": (
        lambda f, x: torch.linalg.det(_jac(f, x)).abs(),
        "LOG of |det J|",
    ),
}


test_3_4_right, test_3_4_wrong = table_tests(
    TRI_RIGHT, TRI_WRONG, ck.check_triangular_log_det, "3.4"
)


def test_3_4_in_place_edit_of_x_is_caught(capsys):
    def mutates(f, x):
        out = _diag_loop(f, x)
        x.mul_(2)
        return out

    rejects(capsys, ck.check_triangular_log_det, mutates, hint="in place", exercise="3.4")


# ---------------------------------------------------------------- 3.5 integrating on a grid


def _grid(density, lo, hi, n, mode="ok"):
    h = (hi - lo) / n
    start = lo if mode == "corners" else lo + h / 2
    axis = start + h * torch.arange(n, dtype=torch.float64)
    xx, yy = torch.meshgrid(axis, axis, indexing="ij")
    values = density(torch.stack([xx.flatten(), yy.flatten()], 1))
    factor = {"ok": h * h, "corners": h * h, "width": h, "sum": 1.0}[mode]
    return float(values.sum() * factor)


def _grid_linspace_float32(density, lo, hi, n):
    h = (hi - lo) / n
    axis = torch.linspace(lo + h / 2, hi - h / 2, n)  # float32
    xx, yy = torch.meshgrid(axis, axis, indexing="xy")
    return density(torch.stack([xx.ravel(), yy.ravel()], 1)).mean() * (hi - lo) ** 2


def _grid_numpy(density, lo, hi, n):
    h = (hi - lo) / n
    axis = lo + h * (np.arange(n) + 0.5)
    pts = np.array([(a, b) for a in axis for b in axis])
    return np.sum(density(torch.from_numpy(pts)).numpy()) * h**2


GRID_RIGHT = {
    "meshgrid ij": _grid,
    "float32 linspace, mean × area, tensor": _grid_linspace_float32,
    "numpy points": _grid_numpy,
}
GRID_WRONG = {
    "summed values": (lambda *a: _grid(*a, mode="sum"), "cell area"),
    "area h instead of h²": (lambda *a: _grid(*a, mode="width"), "a cell's width"),
    "cell corners, not centres": (lambda *a: _grid(*a, mode="corners"), "cell centres"),
    "divided by the area": (
        lambda d, lo, hi, n: _grid(d, lo, hi, n) / ((hi - lo) / n) ** 4,
        "divide",
    ),
}


test_3_5_right, test_3_5_wrong = table_tests(GRID_RIGHT, GRID_WRONG, ck.check_integrate_grid, "3.5")


# ---------------------------------------------------------------- 3.6 push samples and density


def _push(f, log_p_x, x):
    return f(x), log_p_x(x) - changevar.log_abs_det_jacobian(f, x)


def _push_jacrev(f, log_p_x, x):
    return f(x), log_p_x(x) - torch.linalg.slogdet(_jac(f, x)).logabsdet


def _push_numpy(f, log_p_x, x):
    z = f(x)
    return z.numpy(), (log_p_x(x) - torch.linalg.slogdet(_jac(f, x)).logabsdet).numpy()


def _push_float32(f, log_p_x, x):
    z, lp = _push_jacrev(f, log_p_x, x)
    return z.float(), lp.float()


PUSH_RIGHT = {
    "coursekit.changevar": _push,
    "vmap(jacrev)": _push_jacrev,
    "numpy arrays": _push_numpy,
    "float32 results": _push_float32,
}
PUSH_WRONG = {
    "sign of the log-det": (
        lambda f, lp, x: (f(x), lp(x) + changevar.log_abs_det_jacobian(f, x)),
        "sign of the log-det",
    ),
    "Jacobian term missing": (lambda f, lp, x: (f(x), lp(x)), "missing"),
    "log p_X at z": (lambda f, lp, x: (f(x), lp(f(x))), "input x"),
    "log-det at z": (
        lambda f, lp, x: (f(x), lp(x) - changevar.log_abs_det_jacobian(f, f(x))),
        "taken at z",
    ),
    "only log p_Z returned": (lambda f, lp, x: _push(f, lp, x)[1], "pair"),
}


test_3_6_right, test_3_6_wrong = table_tests(
    PUSH_RIGHT, PUSH_WRONG, ck.check_transform_with_log_prob, "3.6"
)


@pytest.mark.parametrize(
    "checker, answer",
    [(ck.check_log_abs_det_jacobian, _ld_loop), (ck.check_transform_with_log_prob, _push)],
)
def test_chapter_3_in_place_edits_are_caught(capsys, checker, answer):
    def mutates(*args):
        out = answer(*args)
        args[-1].add_(1.0)  # x, the last argument of both
        return out

    rejects(capsys, checker, mutates, hint="in place")
