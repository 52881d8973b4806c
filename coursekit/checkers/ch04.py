"""Checkers for chapter 4, coupling layers (slides: INN – REALNVP: LAYER, INVERSE LAYER,
CALCUL DU JACOBIEN, eq. 12–13).

4.1 the forward and log-det of a coupling whose scale is softplus(ŝ) rather than exp(s) (the
derivation of (12) redone); 4.2 the inverse of a two-step coupling that changes both halves (the
order of the inverse steps); 4.3 the chain rule (13) with layers given as (map, log-det) pairs
(where each log-det is evaluated); 4.4 which coordinates a stack never transforms; 4.5 the
structural zeros of a coupling's Jacobian.

Tolerances follow the checking policy (:func:`coursekit.checkers._answers.matches`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn.functional import softplus

from coursekit.checkers._answers import as_pair, as_tensor, matches
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint
from coursekit.flows import AffineCoupling

_MASK = torch.tensor([True, False, True, False, False])


def coupling_example(seed: int = 0, batch: int = 16) -> tuple[Tensor, Tensor, Callable, Callable]:
    """``(x, mask, s_net, t_net)``: a fixed 5-D example with nonlinear, nonzero conditioners
    (s_net and t_net map the 2 kept coordinates to the 3 changed ones)."""
    g = torch.Generator().manual_seed(seed)
    w_s = torch.randn(2, 3, generator=g, dtype=torch.float64)
    w_t = torch.randn(2, 3, generator=g, dtype=torch.float64)
    b_t = torch.randn(3, generator=g, dtype=torch.float64)
    s_net = lambda x1: torch.tanh(x1 @ w_s)
    t_net = lambda x1: torch.sin(x1 @ w_t) + b_t
    x = torch.randn(batch, 5, generator=g, dtype=torch.float64)
    return x, _MASK.clone(), s_net, t_net


def _split_out(out, x: Tensor, what: str) -> tuple[Tensor, Tensor]:
    first, ld = as_pair(out, what)
    first = as_tensor(first, tuple(x.shape), f"the first output of {what}")
    if isinstance(ld, Tensor) and ld.dim() == 2 and ld.shape[0] == x.shape[0]:
        raise Hint(
            f"log_det has shape {tuple(ld.shape)}: sum over the features so that it "
            f"has shape (batch,) = ({x.shape[0]},)"
        )
    ld = as_tensor(ld, (x.shape[0],), f"the log_det of {what}")
    return first, ld


# --------------------------------------------------------------------------------------------
# 4.1: a coupling whose scale is softplus(ŝ(x1)): z2 = x2 ⊙ σ + t, log|det| = Σ log σ
# --------------------------------------------------------------------------------------------


def softplus_coupling_reference(
    x: Tensor, mask: Tensor, scale_net: Callable, t_net: Callable
) -> tuple[Tensor, Tensor]:
    """``z1 = x1``, ``z2 = x2 ⊙ σ(x1) + t(x1)`` with ``σ = softplus(scale_net(x1)) > 0``; the
    Jacobian is triangular (in kept-first order) with diagonal ``(1, …, 1, σ_1, …, σ_{d−k})``,
    so ``log|det| = Σ_j log σ_j``."""
    x1, x2 = x[:, mask], x[:, ~mask]
    sigma = softplus(scale_net(x1))
    z = x.clone()
    z[:, ~mask] = x2 * sigma + t_net(x1)
    return z, torch.log(sigma).sum(1)


@checker("4.1", "a softplus-scale coupling: forward and log-det")
def check_coupling_forward(fn: Callable) -> str:
    """``fn(x, mask, scale_net, t_net) -> (z, log_det)`` for the softplus-scale coupling
    (:func:`softplus_coupling_reference`)."""
    x, mask, scale_net, t_net = coupling_example()
    z, ld = _split_out(call(fn, x, mask, scale_net, t_net), x, "your forward")
    z_ref, ld_ref = softplus_coupling_reference(x, mask, scale_net, t_net)
    x1, x2 = x[:, mask], x[:, ~mask]
    raw, t = scale_net(x1), t_net(x1)
    sigma = softplus(raw)
    if not matches(z[:, mask], x1):
        raise Hint("the kept coordinates x1 (mask True) must pass through unchanged")
    z2 = z[:, ~mask]
    if not matches(z2, z_ref[:, ~mask]):
        if matches(z2, x2 * torch.exp(raw) + t):
            raise Hint("the scale here is σ = softplus(ŝ(x1)), not exp(ŝ(x1))")
        if matches(z2, (x2 + t) * sigma):
            raise Hint("order: scale first, then shift — z2 = x2 ⊙ σ + t")
        if matches(z2, x2 * raw + t):
            raise Hint("apply softplus to the conditioner's output: σ = softplus(ŝ(x1))")
        if matches(z2, x2 / sigma + t):
            raise Hint("the forward multiplies by σ; dividing belongs to the inverse")
        raise Hint("z2 should be x2 ⊙ softplus(ŝ(x1)) + t(x1), with ŝ and t computed from x1")
    if matches(ld, ld_ref):
        return "J's diagonal is (1, …, 1, σ): log|det| = Σ log σ; (12) is the case σ = exp(s)."
    if matches(ld, raw.sum(1)):
        raise Hint(
            "Σ ŝ is the log-det when the scale is exp(ŝ), as in (12); here the diagonal of the "
            "Jacobian holds σ_j = softplus(ŝ_j), so log|det| = Σ log σ_j"
        )
    if matches(ld, sigma.sum(1)):
        raise Hint("the log-det is the sum of the LOGS of the diagonal entries σ_j, not of σ_j")
    if matches(ld, sigma.prod(1)):
        raise Hint("you returned |det| = Π σ_j; return its log, Σ log σ_j")
    if matches(ld, -ld_ref):
        raise Hint("sign: the forward multiplies by σ, so log|det| = +Σ log σ")
    raise Hint("log_det is wrong: derive the diagonal of ∂z/∂x; its entries are 1 and σ_j")


# --------------------------------------------------------------------------------------------
# 4.2: the inverse of a two-step coupling (both halves changed, one after the other)
# --------------------------------------------------------------------------------------------


def two_step_nets(seed: int = 0) -> tuple[Callable, Callable, Callable, Callable]:
    """``(s1, t1, s2, t2)``: maps R² -> R² for the two steps of exercise 4.2."""
    g = torch.Generator().manual_seed(seed)
    w = [torch.randn(2, 2, generator=g, dtype=torch.float64) for _ in range(4)]
    return (
        lambda u: 0.8 * torch.tanh(u @ w[0]),
        lambda u: torch.sin(u @ w[1]) + 0.5,
        lambda u: 0.6 * torch.tanh(u @ w[2] - 0.3),
        lambda u: u @ w[3],
    )


def two_step_forward(
    x: Tensor, s1: Callable, t1: Callable, s2: Callable, t2: Callable
) -> tuple[Tensor, Tensor]:
    """The forward of 4.2 on x = [a, b] (batch, 4), halves a = x[:, :2], b = x[:, 2:]:
    step 1 ``b' = b ⊙ exp(s1(a)) + t1(a)``; step 2 ``a' = a ⊙ exp(s2(b')) + t2(b')``;
    ``z = [a', b']``, ``log|det ∂z/∂x| = Σ s1(a) + Σ s2(b')``."""
    a, b = x[:, :2], x[:, 2:]
    b_new = b * torch.exp(s1(a)) + t1(a)
    a_new = a * torch.exp(s2(b_new)) + t2(b_new)
    return torch.cat([a_new, b_new], 1), s1(a).sum(1) + s2(b_new).sum(1)


@checker("4.2", "the inverse of a two-step coupling")
def check_coupling_inverse(fn: Callable) -> str:
    """``fn(z, s1, t1, s2, t2) -> (x, log_det)``: the inverse of :func:`two_step_forward` and
    ``log|det ∂x/∂z|``."""
    nets = two_step_nets()
    s1, t1, s2, t2 = nets
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    z, ld_fwd = two_step_forward(x, *nets)
    x_back, ld = _split_out(call(fn, z, *nets), z, "your inverse")
    za, zb = z[:, :2], z[:, 2:]
    if not matches(x_back, x):
        # undoing step 1 first, with a = z's first half (not yet recovered)
        b_wrong = (zb - t1(za)) * torch.exp(-s1(za))
        a_wrong = (za - t2(b_wrong)) * torch.exp(-s2(b_wrong))
        if matches(x_back, torch.cat([a_wrong, b_wrong], 1)):
            raise Hint(
                "undo the LAST step first: step 2 left b' = z[:, 2:] unchanged, so s2(b') and "
                "t2(b') give a; only then can s1(a), t1(a) give b"
            )
        if matches(x_back[:, :2], x[:, :2]):
            raise Hint(
                "a is right but b is not: b = (b' − t1(a)) ⊙ exp(−s1(a)), with the recovered a"
            )
        a_shift_after = za * torch.exp(-s2(zb)) - t2(zb)
        if matches(x_back[:, :2], a_shift_after):
            raise Hint("undo the shift before the scale: a = (a' − t2(b')) ⊙ exp(−s2(b'))")
        err = float((x_back - x).abs().max())
        raise Hint(f"your inverse does not undo the forward (max error {err:.3g})")
    if matches(ld, -ld_fwd):
        return "both steps undone, the last first; log|det ∂x/∂z| = −Σ s2(b') − Σ s1(a)."
    if matches(ld, ld_fwd):
        raise Hint("sign: the inverse's log|det| is minus the forward's, −Σ s2(b') − Σ s1(a)")
    if matches(ld, -s2(zb).sum(1)) or matches(ld, -s1(x[:, :2]).sum(1)):
        raise Hint("x is right; the log-det needs BOTH steps: −Σ s2(b') − Σ s1(a)")
    if matches(ld, -s2(zb).sum(1) - s1(za).sum(1)):
        raise Hint("x is right; s1 must be evaluated at the recovered a, not at z[:, :2]")
    raise Hint("x is right but log_det is not: it is −Σ s2(b') − Σ s1(a)")


def random_couplings(n_layers: int = 4, dim: int = 4, seed: int = 0) -> list[AffineCoupling]:
    """``n_layers`` float64 coupling layers with alternating masks and random weights."""
    g = torch.Generator().manual_seed(seed)
    half = dim // 2
    layers = []
    for i in range(n_layers):
        mask = [1] * half + [0] * (dim - half) if i % 2 == 0 else [0] * half + [1] * (dim - half)
        layer = AffineCoupling(mask, hidden=(8,)).double()
        with torch.no_grad():
            for p in layer.parameters():
                p.copy_(0.7 * torch.randn(p.shape, generator=g, dtype=torch.float64))
        layers.append(layer)
    return layers


# --------------------------------------------------------------------------------------------
# 4.3: the chain rule (13), with each layer given as a (map, log-det) pair
# --------------------------------------------------------------------------------------------


def chain_layers(seed: int = 0) -> list[tuple[Callable, Callable]]:
    """Four layers of R³ as ``(forward, log_abs_det)`` pairs, ``log_abs_det(h)`` being
    ``log|det J_l(h)|`` at the layer's INPUT ``h``: an elementwise map, a coupling, a
    permutation and a linear map. Their log-dets vary from point to point (except the last two),
    so evaluating one at the wrong point changes the total."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(1, 2, generator=g, dtype=torch.float64)
    a = torch.tensor([[1.2, 0.3, 0.0], [-0.4, 0.9, 0.2], [0.1, 0.5, 1.4]], dtype=torch.float64)
    log_det_a = math.log(abs(float(torch.linalg.det(a))))
    perm = torch.tensor([2, 0, 1])

    def warp(h: Tensor) -> Tensor:  # h + 0.5 tanh(h): derivative 1 + 0.5 sech² > 0
        return h + 0.5 * torch.tanh(h)

    def warp_log_det(h: Tensor) -> Tensor:
        return torch.log1p(0.5 / torch.cosh(h) ** 2).sum(1)

    def coupling(h: Tensor) -> Tensor:  # keeps h1, changes (h2, h3)
        s = torch.tanh(h[:, :1] @ w)
        return torch.cat([h[:, :1], h[:, 1:] * torch.exp(s) + h[:, :1] ** 2], 1)

    def coupling_log_det(h: Tensor) -> Tensor:
        return torch.tanh(h[:, :1] @ w).sum(1)

    return [
        (warp, warp_log_det),
        (coupling, coupling_log_det),
        (lambda h: h[:, perm], lambda h: torch.zeros(len(h), dtype=h.dtype)),
        (lambda h: h @ a.T, lambda h: torch.full((len(h),), log_det_a, dtype=h.dtype)),
    ]


@checker("4.3", "the chain rule (13): where each log-det is evaluated")
def check_compose(fn: Callable) -> str:
    """``fn(layers, x) -> (z, log_det)`` for ``f = l_n ∘ … ∘ l_1`` with ``layers`` a list of
    (forward, log_abs_det) pairs: ``z = x_n`` and ``Σ_i log|det J_li(x_(i−1))|`` (eq. 13)."""
    layers = chain_layers()
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    z, ld = _split_out(call(fn, layers, x), x, "your composition")
    h, inputs = x, []
    for forward, _ in layers:
        inputs.append(h)
        h = forward(h)
    rev = x
    for forward, _ in reversed(layers):
        rev = forward(rev)
    if not matches(z, h):
        if matches(z, rev):
            raise Hint("wrong order: f = l_n ∘ … ∘ l_1 applies l_1 FIRST")
        raise Hint("z is not l_n(…l_1(x)): feed each layer the output of the previous one")
    terms = [log_det(inp) for (_, log_det), inp in zip(layers, inputs, strict=True)]
    want = torch.stack(terms).sum(0)
    if matches(ld, want):
        return "z and Σ_i log|det J_li(x_(i−1))|, each log-det at its layer's own input (eq 13)."
    at_x = torch.stack([log_det(x) for _, log_det in layers]).sum(0)
    outputs = [*inputs[1:], h]
    at_output = torch.stack(
        [log_det(out) for (_, log_det), out in zip(layers, outputs, strict=True)]
    ).sum(0)
    if matches(ld, at_x):
        raise Hint("each log-det must be evaluated at x_(i−1), the layer's own input, not at x")
    if matches(ld, at_output):
        raise Hint("each log-det is evaluated at the layer's INPUT x_(i−1), not at its output x_i")
    if matches(ld, torch.stack(terms).prod(0)):
        raise Hint("determinants multiply, so log-dets ADD (eq 13)")
    if any(matches(ld, want - term) for term in terms):
        raise Hint("one layer's log-det is missing: sum the terms of all n layers")
    if matches(ld, -want):
        raise Hint("sign: the forward's log-dets add with a + sign")
    raise Hint("total log-det is wrong: Σ_i log|det J_li(x_(i−1))| (eq 13)")
