"""Checkers for chapter 5, RealNVP on toy data (slides: INN – REALNVP, ENTRAÎNEMENT,
EXEMPLE (4 modes), eq. 13–14).

5.1 the density (14) of a two-layer stack, by hand; 5.2 the training loss of a flow that
sees standardised data, in the data's own units; 5.5 a reported NLL turned into a KL.
Generation (5.3, 5.4) is in :mod:`coursekit.checkers.ch05_generation`, exercise 5.6 (build
and train) in :mod:`coursekit.checkers.ch05_train`.

Tolerances follow the checking policy (:func:`coursekit.checkers._answers.matches`): relative,
so a float32 constant such as ``torch.log(torch.tensor(2 * torch.pi))`` or a float32
``MultivariateNormal`` never rejects a right formula, while every conceptual error (a missing
log-det, a sign, a term evaluated at the wrong point) moves the answer by O(1).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from coursekit.checkers._answers import as_float, as_tensor, fmt, matches
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint
from coursekit.checkers.ch04 import random_couplings
from coursekit.datasets import four_modes
from coursekit.flows import FlowSequence, standard_normal_log_prob
from coursekit.flows.base import LOG_2PI

#: the test NLL (nats) reported for a RealNVP on the 4-mode data in exercise 5.5
REPORTED_NLL = 3.05


# --------------------------------------------------------------------------------------------
# 5.1: log p_X of a two-layer stack by (14)
# --------------------------------------------------------------------------------------------

#: the conditioners of the stacks used by 5.1: (s1, t1, s2, t2), each R -> R elementwise.
STACKS: tuple[tuple[Callable[[Tensor], Tensor], ...], ...] = (
    (
        lambda u: 0.5 * torch.tanh(u),
        lambda u: 0.25 * u**2 - 0.3,
        lambda u: 0.3 * torch.sin(2 * u) + 0.2,
        lambda u: 0.5 * u,
    ),
    (
        lambda u: 0.1 * u - 0.4,
        lambda u: torch.cos(u),
        lambda u: 0.6 * torch.tanh(u - 0.5),
        lambda u: 0.7 - u / 3,
    ),
)


def stack_log_prob_reference(
    x: Tensor, s1: Callable, t1: Callable, s2: Callable, t2: Callable
) -> Tensor:
    """``log p_X(x)`` (batch,) of ``f = l_2 ∘ l_1`` on R²: ``l_1`` keeps x₁ and changes x₂,
    ``h₂ = x₂·exp(s1(x₁)) + t1(x₁)``; ``l_2`` keeps h₂ and changes the first coordinate,
    ``z₁ = x₁·exp(s2(h₂)) + t2(h₂)``, ``z₂ = h₂``. By (13)–(14):
    ``log N(z; 0, I) + s1(x₁) + s2(h₂)``."""
    x1, x2 = x[:, 0], x[:, 1]
    h2 = x2 * torch.exp(s1(x1)) + t1(x1)
    z1 = x1 * torch.exp(s2(h2)) + t2(h2)
    z = torch.stack([z1, h2], dim=1)
    return standard_normal_log_prob(z) + s1(x1) + s2(h2)


def _stack_variants(x: Tensor, s1: Callable, t1: Callable, s2: Callable, t2: Callable) -> dict:
    """Typical wrong answers of 5.1, each with its hint."""
    x1, x2 = x[:, 0], x[:, 1]
    h2 = x2 * torch.exp(s1(x1)) + t1(x1)
    z1 = x1 * torch.exp(s2(h2)) + t2(h2)
    base = standard_normal_log_prob(torch.stack([z1, h2], 1))
    # layer 2 evaluated at the input x2 instead of the intermediate h2
    z1_at_x = x1 * torch.exp(s2(x2)) + t2(x2)
    at_x = standard_normal_log_prob(torch.stack([z1_at_x, h2], 1)) + s1(x1) + s2(x2)
    # the inverse formulas used in place of the forward ones
    h2_inv = (x2 - t1(x1)) * torch.exp(-s1(x1))
    z1_inv = (x1 - t2(h2_inv)) * torch.exp(-s2(h2_inv))
    inverse = standard_normal_log_prob(torch.stack([z1_inv, h2_inv], 1))
    return {
        "at_x": (
            at_x,
            "layer 2 is evaluated at its own input: s2 and t2 take h2 = x2·exp(s1(x1)) + "
            "t1(x1), the output of layer 1, not x2 (by (13) each layer's Jacobian is taken at "
            "the point that layer receives)",
        ),
        "no_ld2": (
            base + s1(x1),
            "the log-det of layer 2 is missing: the log-dets of the layers add, s1(x1) + "
            "s2(h2) (eq 13)",
        ),
        "no_ld1": (
            base + s2(h2),
            "the log-det of layer 1 is missing: the log-dets of the layers add, s1(x1) + "
            "s2(h2) (eq 13)",
        ),
        "no_ld": (base, "the Jacobian term of (14) is missing: add s1(x1) + s2(h2)"),
        "sign": (
            base - s1(x1) - s2(h2),
            "sign of the log-dets: log p_X(x) = log p_Z(f(x)) + log|det J_f(x)|, and each "
            "forward layer has log|det| = +s",
        ),
        "inverse": (
            inverse - s1(x1) - s2(h2_inv),
            "wrong direction: f maps data to noise with the forward formulas, "
            "x2·exp(s) + t, not the inverse ones (z2 − t)·exp(−s)",
        ),
        "base_at_x": (
            standard_normal_log_prob(x) + s1(x1) + s2(h2),
            "the base density is evaluated at z = f(x), not at x",
        ),
        "no_const": (
            base + s1(x1) + s2(h2) + LOG_2PI,
            "off by log(2π) = 1.838: the normalisation constant −(d/2)·log(2π) of N(0, I) "
            "in d = 2 is missing",
        ),
    }


@checker("5.1", "log p_X of a two-layer stack by (14)")
def check_stack_log_prob(fn: Callable) -> str:
    """``fn(x, s1, t1, s2, t2)`` = :func:`stack_log_prob_reference`, shape (batch,); x (batch, 2)
    float64, the four conditioners elementwise functions of a 1-D tensor."""
    g = torch.Generator().manual_seed(51)
    for i, funcs in enumerate(STACKS):
        x = 1.5 * torch.randn(40, 2, generator=g, dtype=torch.float64)
        out = call(fn, x.clone(), *funcs)
        if isinstance(out, (tuple, list)) and len(out) == 2:
            raise Hint("return only log p_X(x), shape (batch,), not a pair")
        if isinstance(out, Tensor) and tuple(out.shape) == (40, 2):
            raise Hint("sum the log-density over the 2 coordinates: return shape (batch,)")
        got = as_tensor(out, (40,), "your log-density")
        with torch.no_grad():
            want = stack_log_prob_reference(x, *funcs)
            if matches(got, want):
                continue
            for variant, hint in _stack_variants(x, *funcs).values():
                if matches(got, variant):
                    raise Hint(hint)
        raise Hint(
            f"wrong value for stack {i + 1}: push x through layer 1, then layer 2 (at the "
            "output of layer 1), add log N(z; 0, I) and both log-dets s1(x1) + s2(h2)"
        )
    return (
        "log p_X(x) = log N(z; 0, I) + s1(x1) + s2(h2): each layer's log-det at the point it "
        "receives (13), added to the base density (14)."
    )


# --------------------------------------------------------------------------------------------
# 5.2: the NLL of a flow trained on standardised data, in the data's units
# --------------------------------------------------------------------------------------------


def _standardised_case(seed: int = 3) -> tuple[FlowSequence, Tensor, Tensor, Tensor]:
    flow = FlowSequence(random_couplings(n_layers=4, dim=2, seed=seed))
    x = four_modes().sample(256, generator=torch.Generator().manual_seed(seed + 1))
    mean = torch.tensor([0.3, -0.2], dtype=torch.float64)
    std = torch.tensor([2.0, 1.5], dtype=torch.float64)
    return flow, x, mean, std


def standardised_nll_reference(flow: nn.Module, x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``−mean_i log p_X(x_i)`` for ``p_X`` = the flow on ``u = (x − mean)/std``:
    ``log p_X(x) = log N(f(u)) + log|det J_f(u)| − Σ_j log std_j`` (the standardisation is a
    bijection with ``log|det| = −Σ_j log std_j``, eq. 11/13)."""
    z, log_det = flow((x - mean) / std)
    return -(standard_normal_log_prob(z) + log_det - torch.log(std).sum()).mean()


def _grads(loss: Tensor, params: list[Tensor]) -> Tensor:
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).detach().double().flatten()
            for g, p in zip(grads, params, strict=True)
        ]
    )


@checker("5.2", "the NLL of a flow on standardised data, in the data's units")
def check_standardised_nll(fn: Callable) -> str:
    """``fn(flow, x, mean, std)`` = :func:`standardised_nll_reference`: a 0-d tensor whose
    gradient with respect to the flow's parameters is the reference's."""
    flow, x, mean, std = _standardised_case()
    student_flow = copy.deepcopy(flow)
    out = call(fn, student_flow, x.clone(), mean.clone(), std.clone())
    if isinstance(out, (float, int)) or (not isinstance(out, Tensor) and hasattr(out, "dtype")):
        raise Hint(
            "return a tensor connected to the graph (no .item(), no numpy), so that "
            "loss.backward() can train the flow"
        )
    if not isinstance(out, Tensor):
        raise Hint(f"return the loss as a 0-d tensor, got {type(out).__name__}")
    if out.numel() != 1:
        raise Hint(
            f"return one number, the mean over the batch; got a tensor of shape {tuple(out.shape)}"
        )
    if not out.requires_grad:
        raise Hint(
            "the loss is detached from the flow's parameters (torch.no_grad, .detach(), or a "
            "new tensor built from numbers): loss.backward() could not train the flow"
        )
    got = as_float(out, "your loss")
    log_std = float(torch.log(std).sum())
    with torch.no_grad():
        u = (x - mean) / std
        z, ld = flow(u)
        lp_u = standard_normal_log_prob(z) + ld
        want = float(-(lp_u - log_std).mean())
        z_raw, ld_raw = flow(x)
        z_back, ld_back = flow(x * std + mean)
    wrong_values = (
        (
            want - log_std,
            f"this is the NLL of the standardised data u, not of x: u = (x − mean)/std is a "
            f"bijection too, with log|det| = −Σ_j log std_j = {-log_std:.3f}; add it to "
            "log p (eq 11/13). It does not change the gradient, but it changes every NLL you "
            "report and compare with H(p)",
        ),
        (
            want - 2 * log_std,
            "sign of the standardisation's log-det: u = (x − mean)/std shrinks lengths when "
            "std > 1, so log p_X(x) = log p_U(u) − Σ_j log std_j",
        ),
        (-want, "sign: the loss is the NEGATIVE mean log-likelihood"),
        (want * len(x), f"the loss sums over the batch ({len(x)} points): average it (.mean())"),
        (
            float(-(standard_normal_log_prob(z_raw) + ld_raw).mean()) + log_std,
            "the flow was trained on standardised data: feed it u = (x − mean)/std, not x",
        ),
        (
            float(-(standard_normal_log_prob(z_raw) + ld_raw).mean()),
            "the flow was trained on standardised data: feed it u = (x − mean)/std, not x",
        ),
        (
            float(-(standard_normal_log_prob(z_back) + ld_back).mean()) + log_std,
            "standardising divides: u = (x − mean)/std, not x·std + mean",
        ),
        (
            float(-standard_normal_log_prob(z).mean()) + log_std,
            "the flow's log-det term of (14) is missing",
        ),
        (
            float(-(standard_normal_log_prob(z) - ld).mean()) + log_std,
            "sign of the flow's log-det: log p_U(u) = log p_Z(f(u)) + log|det J_f(u)|",
        ),
    )
    if not matches(got, want):
        for value, hint in wrong_values:
            if matches(got, value):
                raise Hint(hint)
        raise Hint(
            f"got {fmt(got)}: standardise, u = (x − mean)/std; (z, log_det) = flow(u); "
            "log p_X(x) = log N(z; 0, I) + log_det + (the standardisation's log-det); "
            "the loss is minus its mean"
        )
    params = [p for p in student_flow.parameters() if p.requires_grad]
    grad = _grads(out, params)
    twin = copy.deepcopy(flow)
    twin_params = [p for p in twin.parameters() if p.requires_grad]
    z_t, ld_t = twin((x - mean) / std)
    want_grad = _grads(-(standard_normal_log_prob(z_t) + ld_t).mean(), twin_params)
    if matches(grad, want_grad, rtol=1e-5):
        return (
            "−mean[log N(f(u)) + log|det J_f(u)| − Σ log std], u = (x − mean)/std: the data's "
            "units, and the gradient of the flow's NLL."
        )
    only_base = _grads(-standard_normal_log_prob(z_t).mean(), twin_params)
    only_ld = _grads(-ld_t.mean(), twin_params)
    if matches(grad, only_base, rtol=1e-5):
        raise Hint(
            "the value is right but the log-det term is detached (no gradient flows through "
            "log_det): the flow could not learn to spread its volume; keep log_det in the graph"
        )
    if matches(grad, only_ld, rtol=1e-5):
        raise Hint(
            "the value is right but z is detached (no gradient flows through log N(z)): keep "
            "z = flow(u)[0] in the graph, only then can the flow move the data towards N(0, I)"
        )
    raise Hint(
        "the value is right but its gradient is not the NLL's: both z and log_det must stay "
        "in the graph (no .detach(), .item() or torch.no_grad on either)"
    )


# --------------------------------------------------------------------------------------------
# 5.5: from a reported NLL to the KL
# --------------------------------------------------------------------------------------------


def _entropy_4modes() -> float:
    target = four_modes()
    x = target.sample(400_000, generator=torch.Generator().manual_seed(12))
    return float(-target.log_prob(x).mean())


@checker("5.5", "KL from a reported NLL")
def check_kl_from_nll(fn: Callable[[], Any]) -> str:
    """``fn()`` = KL(p ‖ p_θ) in nats when the model's NLL on p is ``REPORTED_NLL``."""
    got = as_float(call(fn))
    h = _entropy_4modes()
    want = REPORTED_NLL - h
    if abs(got - want) < 0.01:
        return (
            f"KL = NLL − H(p) = {REPORTED_NLL} − {h:.3f} ≈ {want:.3f} nats: the NLL can "
            "never go below the entropy H(p)."
        )
    if abs(got + want) < 0.01:
        raise Hint("sign: by eq (1), KL = E_p[log p] − E_p[log p_θ] = NLL − H(p) ≥ 0")
    if abs(got - REPORTED_NLL) < 1e-6:
        raise Hint(
            "the NLL is only the second term of eq (1): subtract the entropy "
            "H(p) = −E_p[log p(x)] of the 4-mode data"
        )
    if abs(got - (REPORTED_NLL + h)) < 0.01:
        raise Hint(
            "KL = NLL − H(p): you added the entropy H(p) = −E_p[log p] instead of subtracting it"
        )
    raise Hint(
        f"got {fmt(got)}; estimate E_p[log p(x)] with four_modes().log_prob on many "
        "samples (or in closed form) and use eq (1)"
    )
