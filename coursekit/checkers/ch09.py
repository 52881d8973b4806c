"""Checkers for chapter 9, beyond density estimation (beyond the slides): 9.1 the reverse-KL
loss, 9.2 the importance-weighted estimate of log Z, 9.3 a conditional coupling layer. The
triangular (Knothe–Rosenblatt) map (9.4) and Hutchinson's trace estimator (9.5) are in
:mod:`coursekit.checkers.ch09_transport`.

Tolerances follow the checking policy (:func:`coursekit.checkers._answers.matches`): relative,
so a float32 constant or a numpy answer never rejects a right formula, while each typical
mistake (a sign, a missing term, a term at the wrong point) moves the answer by O(1). Each
wrong answer is matched against the typical mistakes of its exercise, in order, and gets the
hint naming the first one it equals.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from coursekit.checkers._answers import as_float, as_pair, as_tensor, matches
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint, StudentError
from coursekit.flows import RealNVP, standard_normal_log_prob
from coursekit.flows.base import LOG_2PI
from coursekit.reverse_kl import Wells, importance_log_z, reverse_kl_loss

_F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


def first_match(got: Tensor | float, variants: list[tuple[Tensor | float, str]], **kw) -> None:
    """Raise the hint of the first wrong answer ``got`` equals (:func:`matches`)."""
    for value, hint in variants:
        if matches(got, value, **kw):
            raise Hint(hint)


def random_flow(seed: int = 0) -> RealNVP:
    """A float64 RealNVP(2) with 4 couplings and random, non-identity weights."""
    torch.manual_seed(seed)
    flow = RealNVP(2, n_layers=4, hidden=(16,)).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return flow


def wells() -> Wells:
    """The four wells of notebook 09 (centres (±3, ±3), width 0.5)."""
    return Wells([[-3, -3], [3, 3], [3, -3], [-3, 3]], 0.5)


def _rkl_mistakes(flow: RealNVP, energy: Callable, eps: Tensor) -> list[tuple[float, str]]:
    x, log_det = flow.inverse(eps)
    log_n, e = standard_normal_log_prob(eps), energy(x)
    x_fwd, ld_fwd = flow(eps)
    log_q = "log q(x) = log N(eps; 0, I) - log|det dx/deps|"
    mistakes = [
        (log_n + e, f"the log-det is missing: {log_q}"),
        (
            log_n + log_det + e,
            "sign of the log-det: x = f⁻¹(eps) stretches space by |det dx/deps|, so "
            "log q(x) = log N(eps; 0, I) MINUS log|det dx/deps|",
        ),
        (
            log_n - log_det - e,
            "sign of the energy: p(x) is proportional to exp(-E(x)), so -log p(x) = "
            "E(x) + log Z and the loss adds +E(x)",
        ),
        (
            -log_n + log_det + e,
            f"sign of log q: the loss is the mean of log q(x) - log p(x); {log_q}",
        ),
        (
            standard_normal_log_prob(x) - log_det + e,
            f"the base density is evaluated at the noise eps, not at the sample x: {log_q}",
        ),
        (
            log_n - log_det + energy(eps),
            "the energy is evaluated at the sample x = f⁻¹(eps), not at eps",
        ),
        (
            log_n - log_det + e + LOG_2PI,
            "off by log(2π) = 1.838: the normalisation constant -(d/2) log(2π) of N(0, I) in "
            "d = 2 is missing",
        ),
    ]
    wrong_way = "samples of q come from the INVERSE, x = flow.inverse(eps), not flow(eps)"
    mistakes += [(log_n + s * ld_fwd + energy(x_fwd), wrong_way) for s in (1, -1)]
    return [(float(v.mean()), h) for v, h in mistakes] + [
        (
            float((log_n - log_det + e).sum()),
            "you summed over the batch: the loss is the Monte Carlo MEAN",
        )
    ]


def _grad(loss: Tensor, flow: nn.Module) -> Tensor:
    params = list(flow.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).flatten()
            for g, p in zip(grads, params, strict=True)
        ]
    )


def _check_rkl_gradient(out: Tensor, flow: RealNVP, energy: Callable, eps: Tensor) -> None:
    """A loss returned in the graph must have the loss's gradient: x = f⁻¹(eps) carries it
    into E(x) (the reparameterisation trick) and log_det into log q."""
    grad = _grad(out.reshape(()), flow)
    x, log_det = flow.inverse(eps)
    if matches(grad, _grad((standard_normal_log_prob(eps) - log_det + energy(x)).mean(), flow)):
        return
    first_match(
        grad,
        [
            (
                _grad((energy(x.detach()) - log_det).mean(), flow),
                "the value is right but x is detached inside E(x): the gradient of the loss "
                "reaches the flow THROUGH the sample x = f⁻¹(eps) (the reparameterisation trick)",
            ),
            (
                _grad(energy(x).mean(), flow),
                "the value is right but log_det is detached: log q(x) depends on the flow "
                "through log|det dx/deps|, keep it in the graph",
            ),
        ],
    )
    raise Hint(
        "the value is right but its gradient is not the loss's: keep x and log_det from "
        "flow.inverse(eps) in the graph (no .detach() or torch.no_grad)"
    )


@checker("9.1", "the reverse-KL loss")
def check_reverse_kl_loss(fn: Callable) -> str:
    """``fn(flow, energy, eps)`` = ``mean(log q(x) + E(x))`` with ``x = flow.inverse(eps)[0]``;
    a float passes on its value, a tensor in the graph must also have the loss's gradient."""
    target = wells()
    for seed in (0, 1):
        flow = random_flow(seed)
        eps = torch.randn(512, 2, generator=gen(seed + 5), dtype=_F64)
        out = call(fn, flow, target.energy, eps.clone())
        got = as_float(out, "your loss")
        with torch.no_grad():
            if not matches(got, float(reverse_kl_loss(flow, target.energy, eps)), scale=1.0):
                first_match(got, _rkl_mistakes(flow, target.energy, eps), scale=1.0)
                raise Hint(
                    "wrong value: x, log_det = flow.inverse(eps); log q = log N(eps; 0, I) - "
                    "log_det; return the mean of log q + E(x)"
                )
        if isinstance(out, Tensor) and out.requires_grad:
            _check_rkl_gradient(out, flow, target.energy, eps)
    return "KL(q || p) - log Z = E_eps[log q(x) + E(x)], x = f⁻¹(eps): no samples of p needed."


#: relative tolerance of a standard error: an error bar is read to two digits, and float32
#: log-weights near ±900 lose about 1e-5 in exp(log_w - max) (every typical mistake is O(1)).
SE_RTOL = 1e-3


def _se_matches(got: float, se: float, n: int) -> bool:
    """An SE with sd taken either way (n - 1 or n in the variance) is right."""
    return any(matches(got, s, rtol=SE_RTOL) for s in (se, se * math.sqrt((n - 1) / n)))


@checker("9.2", "the importance-weighted estimate of log Z")
def check_iw_log_z(fn: Callable) -> str:
    """``fn(log_w)`` = ``(log mean exp(log_w), se)`` with the delta-method SE (the sd with
    n - 1 or n in its variance)."""
    for seed, shift in ((0, -5.0), (1, 800.0), (2, -900.0)):
        log_w = 2.0 * torch.randn(400, generator=gen(seed), dtype=_F64) + shift
        n = len(log_w)
        value = call(fn, log_w.clone())
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise Hint(f"return a pair (log_z, standard_error), got {type(value).__name__}")
        got, got_se = as_float(value[0], "your log Z"), as_float(value[1], "your standard error")
        want = importance_log_z(log_w)
        if not math.isfinite(got):
            raise Hint(
                "your log Z is not finite: exp(log_w) overflows or underflows to 0; use "
                "torch.logsumexp (subtract the largest log-weight before exponentiating)"
            )
        if matches(got, want.se) and matches(got_se, want.mean, scale=1.0):
            raise Hint("the pair is in the wrong order: return (log_z, standard_error)")
        if not matches(got, want.mean, scale=1.0):
            first_match(
                got,
                [
                    (
                        float(log_w.mean()),
                        "you averaged the log-weights: that is a lower bound (Jensen), not "
                        "log Z; log Z_hat = log of the mean of the weights",
                    ),
                    (
                        float(torch.logsumexp(log_w, 0)),
                        "log of the SUM of the weights: subtract log n to get the mean",
                    ),
                ],
                scale=1.0,
            )
            raise Hint("wrong log Z: log Z_hat = log((1/n) sum_i exp(log_w_i))")
        if _se_matches(got_se, want.se, n):
            continue
        if not math.isfinite(got_se):
            raise Hint(
                "your standard error is not finite: the weights overflow; rescale them, "
                "w = exp(log_w - max(log_w)): the ratio sd(w) / mean(w) does not change"
            )
        w = (log_w - log_w.max()).exp()
        se_mistakes = [
            (
                float(log_w.std() / math.sqrt(n)),
                "standard error: that is the SE of the mean of log w; the delta method "
                "gives sd(w) / (sqrt(n) * mean(w)) for log of the mean of w",
            ),
            (want.se * math.sqrt(n), "divide by sqrt(n): sd(w) / (sqrt(n) * mean(w))"),
            (
                want.se**2,
                "that is the variance of log Z_hat; the standard error is its square root",
            ),
            (
                float(w.std() / math.sqrt(n)),
                "divide by the mean of the weights: the delta method for the log of a mean gives "
                "sd(w) / (sqrt(n) * mean(w)), a relative error",
            ),
        ]
        for value, hint in se_mistakes:
            if _se_matches(got_se, value, n):
                raise Hint(hint)
        raise Hint("wrong standard error: sd(w) / (sqrt(n) * mean(w)), w rescaled if needed")
    return "log Z_hat = log mean(w) with SE sd(w) / (sqrt(n) mean(w)), overflow-safe."


def conditional_net(seed: int = 0) -> nn.Module:
    """An MLP ``[x1, c] (batch, 2) -> [s, t] (batch, 2)`` in float64, random weights."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).double()


def _coupling_mistakes(x: Tensor, c: Tensor, net: nn.Module) -> list[tuple[Tensor, str]]:
    x2 = x[:, 1:]
    s, t = net(torch.cat([x[:, :1], c], dim=1)).chunk(2, dim=1)
    s2, t2 = net(torch.cat([x2, c], dim=1)).chunk(2, dim=1)
    return [
        (x2 * s2.exp() + t2, "feed the KEPT half x1 (and c) to net, not the changed half x2"),
        ((x2 - t) * (-s).exp(), "that is the inverse layer: forward is z2 = x2 * exp(s) + t"),
        (
            x2 * t.exp() + s,
            "s and t are swapped: net's output is [s, t], s the first column (the log-scale), "
            "t the second",
        ),
        (x2 * s + t, "the scale is exp(s), not s: z2 = x2 * exp(s) + t"),
    ]


@checker("9.3", "a conditional coupling layer")
def check_conditional_coupling(fn: Callable) -> str:
    """``fn(x, c, net)`` = ``(z, log_det)``: z1 = x1, z2 = x2·exp(s) + t, (s, t) = net([x1, c])."""
    for seed in (0, 1):
        net = conditional_net(seed)
        x = torch.randn(32, 2, generator=gen(seed + 7), dtype=_F64)
        c = 3 * torch.rand(32, 1, generator=gen(seed + 8), dtype=_F64)
        try:
            z, log_det = as_pair(call(fn, x.clone(), c.clone(), net))
        except StudentError as err:
            if "shapes cannot be multiplied" in str(err):
                raise Hint(
                    f"net takes [x1, c], (batch, 2): concatenate the kept half and the context, "
                    f"torch.cat([x1, c], dim=1) (your code raised {err})"
                ) from None
            raise
        z = as_tensor(z, (32, 2), "your z")
        if isinstance(log_det, Tensor) and log_det.numel() == 1:
            raise Hint(
                "log_det has one value per sample, shape (batch,): do not sum over the batch"
            )
        log_det = as_tensor(log_det, (32,), "your log_det")
        with torch.no_grad():
            s, t = net(torch.cat([x[:, :1], c], dim=1)).chunk(2, dim=1)
            want = torch.cat([x[:, :1], x[:, 1:] * s.exp() + t], dim=1)
            if not matches(z[:, 0], x[:, 0]):
                raise Hint(
                    "z1 must be x1, unchanged: the kept half is what s and t are computed from"
                )
            if not matches(z, want):
                first_match(z[:, 1:], _coupling_mistakes(x, c, net))
                raise Hint("wrong z2: (s, t) = net(cat([x1, c])).chunk(2, 1); z2 = x2 * exp(s) + t")
            first_match(
                log_det,
                [
                    (-s[:, 0], "sign of the log-det: dz2/dx2 = exp(s), so log|det| = +s"),
                    (s[:, 0].exp(), "that is the determinant exp(s); return its log, s"),
                ],
            )
            if not matches(log_det, s[:, 0]):
                raise Hint("wrong log-det: the Jacobian is triangular with diagonal (1, exp(s))")
    return "the context enters only through s and t: a bijection of x at every c, log|det| = sum s."
