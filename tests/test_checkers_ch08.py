"""Chapter 8 checkers accept the reference answers (and other right ones) and reject typical
wrong ones with the intended hint (one printed line, no traceback); their references agree
with the library (DequantizedImageFlow, importance_weighted_log_prob) and with autograd."""

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
    iw_bound_reference,
    iw_log_prob_reference,
    log_q_of_sigmoid_reference,
    random_dequantized_flow,
    split_levels_reference,
)
from coursekit.flows import (
    DequantizedImageFlow,
    importance_weighted_log_prob,
    squeeze,
    standard_normal_log_prob,
    unsqueeze,
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

    ok, out = run(capsys, ck.check_split_levels, untouched)
    assert ok is False and out.startswith("Exercise 8.1: not done yet")
    ok, out = run(capsys, ck.check_iw_bound, lambda log_w: 1 / 0)
    assert ok is False and "ZeroDivisionError" in out


# ----------------------------------------------------------------------------- 8.1


def join_levels(levels):
    x = levels[-1]
    for factored_out in reversed(levels[:-1]):
        x = unsqueeze(torch.cat([x, factored_out], dim=1))
    return x


def test_split_levels_reference_is_a_permutation_undone_by_join():
    z = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    levels = split_levels_reference(z, 3)
    assert [tuple(v.shape[1:]) for v in levels] == [(2, 14, 14), (4, 7, 7), (4, 7, 7)]
    assert torch.equal(join_levels(levels), z)
    per_level = sum(standard_normal_log_prob(v) for v in levels)
    assert torch.allclose(per_level, standard_normal_log_prob(z), rtol=0, atol=1e-10)


def split_levels(z, n_scales, swap=False, reshape=False, keep_last=True, reverse=False):
    levels, x = [], z
    for _ in range(n_scales - 1):
        b, c, h, w = x.shape
        y = x.reshape(b, 4 * c, h // 2, w // 2) if reshape else squeeze(x)
        kept, factored_out = y.chunk(2, dim=1)
        if swap:
            kept, factored_out = factored_out, kept
        levels.append(factored_out)
        x = kept
    levels = levels + [x] if keep_last else levels
    return levels[::-1] if reverse else levels


def test_split_levels(capsys):
    accepts(capsys, ck.check_split_levels, split_levels)
    accepts(capsys, ck.check_split_levels, lambda z, n: tuple(split_levels(z, n)))
    rejects(capsys, ck.check_split_levels, lambda z, n: split_levels(z, n, swap=True),
            hint="the halves are swapped")  # fmt: skip
    rejects(capsys, ck.check_split_levels, lambda z, n: split_levels(z, n, reshape=True),
            hint="a plain reshape is not a squeeze")  # fmt: skip
    rejects(capsys, ck.check_split_levels, lambda z, n: split_levels(z, n, reverse=True),
            hint="reverse order")  # fmt: skip
    rejects(capsys, ck.check_split_levels, lambda z, n: split_levels(z, n, keep_last=False),
            hint="the part kept after the last split is a level too")  # fmt: skip
    rejects(capsys, ck.check_split_levels, lambda z, n: list(z.chunk(n, dim=1)),
            hint="expected")  # fmt: skip
    rejects(capsys, ck.check_split_levels, lambda z, n: squeeze(z), hint="list of tensors")
    rejects(capsys, ck.check_split_levels, lambda z, n: [v.float() for v in split_levels(z, n)],
            hint="float64")  # fmt: skip

    def in_place(z, n):
        levels = split_levels(z, n)
        z.mul_(2)
        return levels

    rejects(capsys, ck.check_split_levels, in_place, hint="in place")

    def last_level_negated(z, n):
        levels = split_levels(z, n)
        return levels[:-1] + [-levels[-1]]

    rejects(capsys, ck.check_split_levels, last_level_negated, hint="level 3 holds the wrong")


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
    rejects(capsys, ck.check_log_q_of_sigmoid, lambda h, lq: 2 * lq - log_q_of_sigmoid(h, lq),
            hint="sign")  # fmt: skip
    rejects(capsys, ck.check_log_q_of_sigmoid, lambda h, lq: log_q_of_sigmoid(h, lq) - lq,
            hint="start from log q(h)")  # fmt: skip
    rejects(capsys, ck.check_log_q_of_sigmoid,
            lambda h, lq: lq - F.logsigmoid(h).flatten(1).sum(1), hint="both factors")  # fmt: skip
    rejects(capsys, ck.check_log_q_of_sigmoid,
            lambda h, lq: lq[:, None, None, None] - F.logsigmoid(h) - F.logsigmoid(-h),
            hint="sum log σ'(h_j) over the pixels")  # fmt: skip
    rejects(capsys, ck.check_log_q_of_sigmoid,
            lambda h, lq: log_q_of_sigmoid(h.clamp(-30, 30), lq),
            hint="right for moderate h, wrong for |h| up to 40")  # fmt: skip
    # a right formula whose result is returned in float32 is right to float32 precision: passes
    accepts(capsys, ck.check_log_q_of_sigmoid, lambda h, lq: log_q_of_sigmoid(h, lq).float())


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
    accepts(capsys, ck.check_dequantized_elbo,
            lambda f, d, k, e: DequantizedImageFlow(f, d).elbo_given_noise(k, e))  # fmt: skip

    def parts(f, d, k, e):
        u, log_q = d.transform(e, k)
        return f.log_prob((k + u) / 256), log_q

    rejects(capsys, ck.check_dequantized_elbo, lambda *a: parts(*a)[0], hint="subtract log q")
    rejects(capsys, ck.check_dequantized_elbo, lambda *a: parts(*a)[0] + parts(*a)[1],
            hint="sign of log q")  # fmt: skip
    rejects(capsys, ck.check_dequantized_elbo, lambda *a: -elbo(*a), hint="not the loss")
    rejects(capsys, ck.check_dequantized_elbo, lambda *a: elbo(*a).mean(), hint="one bound per")
    rejects(capsys, ck.check_dequantized_elbo,
            lambda f, d, k, e: elbo(f, d, k, e) - 64 * math.log(256),
            hint="keep the bound in the scale of x")  # fmt: skip
    rejects(capsys, ck.check_dequantized_elbo,
            lambda f, d, k, e: f.log_prob((k + d.transform(e, k)[0]) / 255) - d.transform(e, k)[1],
            hint="divide by 256")  # fmt: skip
    rejects(capsys, ck.check_dequantized_elbo,
            lambda f, d, k, e: f.log_prob(k / 256) - d.transform(e, k)[1],
            hint="add the noise to the pixels")  # fmt: skip
    rejects(capsys, ck.check_dequantized_elbo,
            lambda f, d, k, e: f.log_prob((k + torch.sigmoid(e)) / 256) - d.transform(e, k)[1],
            hint="not σ(ε)")  # fmt: skip
    # x = k + u, unscaled: the flow names the interval it expects
    rejects(capsys, ck.check_dequantized_elbo,
            lambda f, d, k, e: f.log_prob(k + d.transform(e, k)[0]) - d.transform(e, k)[1],
            hint="dequantized pixels divided by 256")  # fmt: skip
    accepts(capsys, ck.check_dequantized_elbo, lambda *a: elbo(*a).float())  # float32 result

    def trains_the_flow(f, d, k, e):  # changing the given models cannot corrupt the reference
        with torch.no_grad():
            for p in f.parameters():
                p.mul_(3)
        return elbo(f, d, k, e)

    rejects(capsys, ck.check_dequantized_elbo, trains_the_flow, hint="the bound is log p_X")


# ----------------------------------------------------------------------------- 8.4


def test_iw_bound(capsys):
    accepts(capsys, ck.check_iw_bound, lambda lw: torch.logsumexp(lw, 1) - math.log(lw.shape[1]))

    def shifted(lw):  # the max trick by hand
        m = lw.max(dim=1, keepdim=True).values
        return m[:, 0] + torch.log(torch.exp(lw - m).mean(1))

    accepts(capsys, ck.check_iw_bound, shifted)
    rejects(capsys, ck.check_iw_bound, lambda lw: torch.log(torch.exp(lw).mean(1)),
            hint="not finite for log-weights around 3700")  # fmt: skip
    rejects(capsys, ck.check_iw_bound, lambda lw: lw.mean(1), hint="mean of the log-weights")
    rejects(capsys, ck.check_iw_bound, lambda lw: torch.logsumexp(lw, 1), hint="the 1/K")
    rejects(capsys, ck.check_iw_bound,
            lambda lw: torch.logsumexp(lw, 1) + math.log(lw.shape[1]), hint="sign")  # fmt: skip
    rejects(capsys, ck.check_iw_bound, lambda lw: lw.max(1).values, hint="largest log-weight")
    rejects(capsys, ck.check_iw_bound,
            lambda lw: torch.logsumexp(lw, 0) - math.log(lw.shape[0]),
            hint="combine the K = 8 draws of each row")  # fmt: skip
    rejects(capsys, ck.check_iw_bound, lambda lw: lw - math.log(lw.shape[1]), hint="shape (n,)")
    accepts(capsys, ck.check_iw_bound, lambda lw: iw_bound_reference(lw).float())  # float32 result

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
        eps = torch.stack([torch.randn(7, *SHAPE, generator=g, dtype=torch.float64)
                           for _ in range(k)])  # fmt: skip
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
    accepts(capsys, ck.check_iw_log_prob,
            lambda f, d, k, e: importance_weighted_log_prob_given_noise(f, d, k, e))  # fmt: skip

    def log_w(f, d, k, e, dim=1):
        return torch.stack([elbo(f, d, k, x) for x in e], dim=dim)

    rejects(capsys, ck.check_iw_log_prob, lambda *a: log_w(*a).mean(1), hint="mean of the K")
    rejects(capsys, ck.check_iw_log_prob, lambda *a: log_w(*a)[:, 0], hint="only the first")
    rejects(capsys, ck.check_iw_log_prob, lambda *a: torch.logsumexp(log_w(*a), 1),
            hint="the 1/K")  # fmt: skip
    rejects(capsys, ck.check_iw_log_prob, lambda *a: log_w(*a), hint="one value: shape (n,)")
    accepts(capsys, ck.check_iw_log_prob,
            lambda *a: torch.logsumexp(log_w(*a, dim=0), 0) - math.log(len(a[3])))  # fmt: skip
    rejects(capsys, ck.check_iw_log_prob,
            lambda *a: torch.logsumexp(log_w(*a, dim=0), 1) - math.log(len(a[3])),
            hint="you combined the images")  # fmt: skip

    def p_only(f, d, k, e):
        lp = torch.stack([f.log_prob((k + d.transform(x, k)[0]) / 256) for x in e], dim=1)
        return torch.logsumexp(lp, 1) - math.log(len(e))

    rejects(capsys, ck.check_iw_log_prob, p_only, hint="each weight is p/q")
    accepts(capsys, ck.check_iw_log_prob, lambda *a: iw_log_prob(*a).float())  # float32 result
    rejects(capsys, ck.check_iw_log_prob, lambda *a: iw_log_prob(*a) + 1.0, hint="wrong L_K")
