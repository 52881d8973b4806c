"""Chapter 8 checkers accept the reference answers and other right ones (another formula,
float32 results, numpy) and reject typical wrong ones with the intended hint (one printed line,
no traceback); their references agree with the library (DequantizedImageFlow,
importance_weighted_log_prob) and with autograd."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _checker_runs import accepts as _accepts
from _checker_runs import rejects as _rejects
from _checker_runs import run

import coursekit.checkers as ck
from coursekit.checkers import _common
from coursekit.checkers.ch08 import (
    SHAPE,
    elbo_reference,
    log_q_of_sigmoid_reference,
    multiscale_log_prob_reference,
    random_dequantized_flow,
)
from coursekit.checkers.ch08_importance import iw_bound_reference, iw_log_prob_reference
from coursekit.flows import (
    DequantizedImageFlow,
    importance_weighted_log_prob,
    standard_normal_log_prob,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def accepts(capsys, checker, *fns):
    return _accepts(capsys, checker, *fns, exercise="8.")


def rejects(capsys, checker, *fns, hint: str):
    return _rejects(capsys, checker, *fns, hint=hint, exercise="8.")


def test_chapter_8_has_five_exercises_and_not_done_is_reported(capsys):
    assert _common.chapter_exercises(8) == ["8.1", "8.2", "8.3", "8.4", "8.5"]

    def untouched(*args):
        raise NotImplementedError("Exercise 8.1")

    ok, out = run(capsys, ck.check_multiscale_log_prob, untouched)
    assert ok is False and out.startswith("Exercise 8.1: not done yet")
    ok, out = run(capsys, ck.check_iw_bound, lambda log_w: 1 / 0)
    assert ok is False and "ZeroDivisionError" in out


# ----------------------------------------------------------------------------- 8.1


def _ms(levels, priors, log_det, mode="ok"):
    total = log_det + standard_normal_log_prob(levels[-1])
    for z, (mean, log_scale) in zip(levels[:-1], priors, strict=True):
        eps = (z - mean) * torch.exp(-log_scale)
        ld = -log_scale.flatten(1).sum(1)
        if mode == "no_jac":
            ld = 0
        elif mode == "jac_sign":
            ld = -ld
        elif mode == "variance":
            ld = 2 * ld
        elif mode == "standard":
            eps, ld = z, 0
        total = total + standard_normal_log_prob(eps) + ld
    return total - log_det if mode == "no_log_det" else total


def _ms_normal(levels, priors, log_det):
    total = log_det + torch.distributions.Normal(0.0, 1.0).log_prob(levels[-1]).sum((1, 2, 3))
    for z, (m, s) in zip(levels[:-1], priors, strict=True):  # the factored-out levels
        total = total + torch.distributions.Normal(m, s.exp()).log_prob(z).flatten(1).sum(1)
    return total


def _ms_float32_constant(levels, priors, log_det):
    log_2pi = torch.log(torch.tensor(2 * torch.pi))
    total = log_det.clone()
    prior_list = list(priors) + [(torch.zeros_like(levels[-1]), torch.zeros_like(levels[-1]))]
    for z, (m, s) in zip(levels, prior_list, strict=True):
        per = -0.5 * ((z - m) / s.exp()) ** 2 - s - 0.5 * log_2pi
        total = total + per.sum(dim=(1, 2, 3))
    return total.numpy()


MULTISCALE_RIGHT = {
    "standardise each level": _ms,
    "torch.distributions.Normal": _ms_normal,
    "float32 log(2π), numpy": _ms_float32_constant,
}
MULTISCALE_WRONG = {
    "prior's Jacobian missing": (lambda *a: _ms(*a, mode="no_jac"), "its own log-det −Σ ℓ"),
    "its sign": (lambda *a: _ms(*a, mode="jac_sign"), "sign"),
    "log variance": (lambda *a: _ms(*a, mode="variance"), "not 2·Σ ℓ"),
    "priors ignored": (lambda *a: _ms(*a, mode="standard"), "not N(0, I) here"),
    "couplings' log-det missing": (lambda *a: _ms(*a, mode="no_log_det"), "add log_det"),
    "coarsest level forgotten": (
        lambda lv, pr, ld: _ms(lv, pr, ld) - standard_normal_log_prob(lv[-1]),
        "counts too",
    ),
}


@pytest.mark.parametrize("name", list(MULTISCALE_RIGHT))
def test_8_1_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_multiscale_log_prob, MULTISCALE_RIGHT[name])


@pytest.mark.parametrize("name", list(MULTISCALE_WRONG))
def test_8_1_wrong_answers_get_their_hint(capsys, name):
    answer, hint = MULTISCALE_WRONG[name]
    rejects(capsys, ck.check_multiscale_log_prob, answer, hint=hint)


def test_8_1_reference_is_the_density_of_the_learned_prior_by_autograd():
    z = torch.randn(3, 2, 2, 2, dtype=torch.float64)
    mean, log_scale = 0.5 * torch.randn_like(z), 0.3 * torch.randn_like(z)
    last = torch.randn(3, 2, 2, 2, dtype=torch.float64)
    log_det = torch.randn(3, dtype=torch.float64)
    got = multiscale_log_prob_reference([z, last], [(mean, log_scale)], log_det)
    gaussian = torch.distributions.Normal(mean, log_scale.exp()).log_prob(z).sum((1, 2, 3))
    want = gaussian + standard_normal_log_prob(last) + log_det
    assert torch.allclose(got, want, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- 8.2


def test_log_q_of_sigmoid_reference_is_the_change_of_variable_by_autograd():
    h = 3 * torch.randn(4, 1, 3, 3, dtype=torch.float64)
    log_q_h = torch.randn(4, dtype=torch.float64)
    hh = h.clone().requires_grad_(True)
    (du_dh,) = torch.autograd.grad(torch.sigmoid(hh).sum(), hh)  # elementwise: the diagonal
    want = log_q_h - torch.log(du_dh).flatten(1).sum(1)
    assert torch.allclose(log_q_of_sigmoid_reference(h, log_q_h), want, rtol=1e-12, atol=1e-12)


def log_q_of_sigmoid(h, log_q_h):
    return log_q_h - (F.logsigmoid(h) + F.logsigmoid(-h)).flatten(1).sum(1)


def test_log_q_of_sigmoid(capsys):
    accepts(capsys, ck.check_log_q_of_sigmoid, log_q_of_sigmoid)

    def by_abs(h, log_q_h):  # log σ'(h) = −|h| − 2 log(1 + e^−|h|), also stable
        a = h.abs()
        return log_q_h - (-a - 2 * torch.log1p(torch.exp(-a))).flatten(1).sum(1)

    accepts(capsys, ck.check_log_q_of_sigmoid, by_abs)

    def naive(h, log_q_h):
        u = torch.sigmoid(h)
        return log_q_h - torch.log(u * (1 - u)).flatten(1).sum(1)

    def naive_logs(h, log_q_h):  # right until σ(−h) underflows, near h = 745
        return log_q_h - (torch.log(torch.sigmoid(h)) + torch.log(torch.sigmoid(-h))).sum((1, 2, 3))

    rejects(capsys, ck.check_log_q_of_sigmoid, naive, hint="not finite for |h| up to 40")
    rejects(capsys, ck.check_log_q_of_sigmoid, naive_logs, hint="not finite for |h| up to 800")
    rejects(
        capsys,
        ck.check_log_q_of_sigmoid,
        lambda h, lq: 2 * lq - log_q_of_sigmoid(h, lq),
        hint="sign",
    )
    rejects(
        capsys,
        ck.check_log_q_of_sigmoid,
        lambda h, lq: log_q_of_sigmoid(h, lq) - lq,
        hint="start from log q(h)",
    )
    rejects(
        capsys,
        ck.check_log_q_of_sigmoid,
        lambda h, lq: lq - F.logsigmoid(h).flatten(1).sum(1),
        hint="both factors",
    )
    rejects(
        capsys,
        ck.check_log_q_of_sigmoid,
        lambda h, lq: lq[:, None, None, None] - F.logsigmoid(h) - F.logsigmoid(-h),
        hint="sum log σ'(h_j) over the pixels",
    )
    rejects(
        capsys,
        ck.check_log_q_of_sigmoid,
        lambda h, lq: log_q_of_sigmoid(h.clamp(-30, 30), lq),
        hint="right for moderate h, wrong for |h| up to 40",
    )
    accepts(capsys, ck.check_log_q_of_sigmoid, lambda h, lq: log_q_of_sigmoid(h, lq).float())
    accepts(capsys, ck.check_log_q_of_sigmoid, lambda h, lq: log_q_of_sigmoid(h, lq).numpy())


# ----------------------------------------------------------------------------- 8.3


def test_elbo_reference_is_the_library_bound():
    flow, dq = random_dequantized_flow(SHAPE, 3)
    images = torch.randint(0, 256, (4, *SHAPE), generator=torch.Generator().manual_seed(1))
    eps = torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        want = DequantizedImageFlow(flow, dq).elbo_given_noise(images, eps)
        got = elbo_reference(flow, dq, images, eps)
        u, _ = dq.transform(eps, images)
    assert torch.allclose(got, want, rtol=0, atol=1e-12)
    assert float((u - torch.sigmoid(eps)).abs().max()) > 1e-3  # q is not its initial σ(ε)


def elbo(flow, dequantizer, images, eps):
    u, log_q = dequantizer.transform(eps, images)
    return flow.log_prob((images + u) / 256) - log_q


def test_dequantized_elbo(capsys):
    accepts(capsys, ck.check_dequantized_elbo, elbo)
    accepts(
        capsys,
        ck.check_dequantized_elbo,
        lambda f, d, k, e: DequantizedImageFlow(f, d).elbo_given_noise(k, e),
    )

    def parts(f, d, k, e):
        u, log_q = d.transform(e, k)
        return f.log_prob((k + u) / 256), log_q

    rejects(capsys, ck.check_dequantized_elbo, lambda *a: parts(*a)[0], hint="subtract log q")
    rejects(
        capsys,
        ck.check_dequantized_elbo,
        lambda *a: parts(*a)[0] + parts(*a)[1],
        hint="sign of log q",
    )
    rejects(capsys, ck.check_dequantized_elbo, lambda *a: -elbo(*a), hint="not the loss")
    rejects(capsys, ck.check_dequantized_elbo, lambda *a: elbo(*a).mean(), hint="one bound per")
    rejects(
        capsys,
        ck.check_dequantized_elbo,
        lambda f, d, k, e: elbo(f, d, k, e) - 64 * math.log(256),
        hint="keep the bound in the scale of x",
    )
    rejects(
        capsys,
        ck.check_dequantized_elbo,
        lambda f, d, k, e: f.log_prob((k + d.transform(e, k)[0]) / 255) - d.transform(e, k)[1],
        hint="divide by 256",
    )
    rejects(
        capsys,
        ck.check_dequantized_elbo,
        lambda f, d, k, e: f.log_prob(k / 256) - d.transform(e, k)[1],
        hint="add the noise to the pixels",
    )
    rejects(
        capsys,
        ck.check_dequantized_elbo,
        lambda f, d, k, e: f.log_prob((k + torch.sigmoid(e)) / 256) - d.transform(e, k)[1],
        hint="not σ(ε)",
    )
    # x = k + u, unscaled: the flow names the interval it expects
    rejects(
        capsys,
        ck.check_dequantized_elbo,
        lambda f, d, k, e: f.log_prob(k + d.transform(e, k)[0]) - d.transform(e, k)[1],
        hint="dequantized pixels divided by 256",
    )
    accepts(capsys, ck.check_dequantized_elbo, lambda *a: elbo(*a).float())

    def trains_the_flow(f, d, k, e):  # changing the given models cannot corrupt the reference
        with torch.no_grad():
            for p in f.parameters():
                p.mul_(3)
        return elbo(f, d, k, e)

    rejects(capsys, ck.check_dequantized_elbo, trains_the_flow, hint="must not be trained")


# ----------------------------------------------------------------------------- 8.4


def test_iw_bound(capsys):
    accepts(capsys, ck.check_iw_bound, lambda lw: torch.logsumexp(lw, 1) - math.log(lw.shape[1]))

    def shifted(lw):  # the max trick by hand
        m = lw.max(dim=1, keepdim=True).values
        return m[:, 0] + torch.log(torch.exp(lw - m).mean(1))

    accepts(capsys, ck.check_iw_bound, shifted)
    rejects(
        capsys,
        ck.check_iw_bound,
        lambda lw: torch.log(torch.exp(lw).mean(1)),
        hint="not finite for log-weights around 3700",
    )
    rejects(capsys, ck.check_iw_bound, lambda lw: lw.mean(1), hint="mean of the log-weights")
    rejects(capsys, ck.check_iw_bound, lambda lw: torch.logsumexp(lw, 1), hint="the 1/K")
    rejects(
        capsys,
        ck.check_iw_bound,
        lambda lw: torch.logsumexp(lw, 1) + math.log(lw.shape[1]),
        hint="sign",
    )
    rejects(capsys, ck.check_iw_bound, lambda lw: lw.max(1).values, hint="largest log-weight")
    rejects(
        capsys,
        ck.check_iw_bound,
        lambda lw: torch.logsumexp(lw, 0) - math.log(lw.shape[0]),
        hint="combine the K = 8 draws of each row",
    )
    rejects(capsys, ck.check_iw_bound, lambda lw: lw - math.log(lw.shape[1]), hint="shape (n,)")
    accepts(capsys, ck.check_iw_bound, lambda lw: iw_bound_reference(lw).float())
    # issue 27: log K as a float32 tensor passes
    accepts(
        capsys,
        ck.check_iw_bound,
        lambda lw: torch.logsumexp(lw, 1) - torch.log(torch.tensor(lw.shape[1])),
    )

    def global_max(lw):  # issue 27: one shift for all rows
        m = lw.max()
        return m + torch.log(torch.exp(lw - m).mean(1))

    rejects(capsys, ck.check_iw_bound, global_max, hint="its own maximum")

    def sub_in_place(lw):
        lw -= math.log(lw.shape[1])
        return torch.logsumexp(lw, 1)

    rejects(capsys, ck.check_iw_bound, sub_in_place, hint="in place")


# ----------------------------------------------------------------------------- 8.5


def test_iw_log_prob_reference_is_the_library_bound_with_the_same_draws():
    """importance_weighted_log_prob draws its K noise tensors in turn from the generator."""
    flow, dq = random_dequantized_flow(SHAPE, 4)
    images = torch.randint(0, 256, (7, *SHAPE), generator=torch.Generator().manual_seed(3))
    for k in (1, 8):
        g = torch.Generator().manual_seed(5)
        eps = torch.stack(
            [torch.randn(7, *SHAPE, generator=g, dtype=torch.float64) for _ in range(k)]
        )
        with torch.no_grad():
            got = iw_log_prob_reference(flow, dq, images, eps)
        want = importance_weighted_log_prob(
            DequantizedImageFlow(flow, dq), images, k, generator=torch.Generator().manual_seed(5)
        )
        assert torch.allclose(got, want, rtol=0, atol=1e-10)


def iw_log_prob(flow, dequantizer, images, eps):
    log_w = torch.stack([elbo(flow, dequantizer, images, e) for e in eps], dim=1)
    return torch.logsumexp(log_w, dim=1) - math.log(len(eps))


def importance_weighted_log_prob_given_noise(flow, dequantizer, images, eps):
    """The library's bound, fed the checker's noise: its K draws come from a generator that
    replays ``eps`` (the same calls, in the same order, as importance_weighted_log_prob)."""
    model = DequantizedImageFlow(flow, dequantizer)
    draws = iter(eps)
    real_sample = dequantizer.sample

    def sample(images, generator=None):
        return dequantizer.transform(next(draws), images)

    dequantizer.sample = sample
    try:
        return importance_weighted_log_prob(model, images, len(eps))
    finally:
        dequantizer.sample = real_sample


def test_iw_log_prob(capsys):
    accepts(capsys, ck.check_iw_log_prob, iw_log_prob)
    accepts(
        capsys,
        ck.check_iw_log_prob,
        lambda f, d, k, e: importance_weighted_log_prob_given_noise(f, d, k, e),
    )

    def log_w(f, d, k, e, dim=1):
        return torch.stack([elbo(f, d, k, x) for x in e], dim=dim)

    rejects(capsys, ck.check_iw_log_prob, lambda *a: log_w(*a).mean(1), hint="mean of the K")
    rejects(capsys, ck.check_iw_log_prob, lambda *a: log_w(*a)[:, 0], hint="only the first")
    rejects(capsys, ck.check_iw_log_prob, lambda *a: torch.logsumexp(log_w(*a), 1), hint="the 1/K")
    rejects(capsys, ck.check_iw_log_prob, lambda *a: log_w(*a), hint="one value: shape (n,)")
    accepts(
        capsys,
        ck.check_iw_log_prob,
        lambda *a: torch.logsumexp(log_w(*a, dim=0), 0) - math.log(len(a[3])),
    )
    rejects(
        capsys,
        ck.check_iw_log_prob,
        lambda *a: torch.logsumexp(log_w(*a, dim=0), 1) - math.log(len(a[3])),
        hint="you combined the images",
    )

    def p_only(f, d, k, e):
        lp = torch.stack([f.log_prob((k + d.transform(x, k)[0]) / 256) for x in e], dim=1)
        return torch.logsumexp(lp, 1) - math.log(len(e))

    rejects(capsys, ck.check_iw_log_prob, p_only, hint="each weight is p/q")
    accepts(capsys, ck.check_iw_log_prob, lambda *a: iw_log_prob(*a).float())
    rejects(capsys, ck.check_iw_log_prob, lambda *a: iw_log_prob(*a) + 1.0, hint="wrong L_K")
