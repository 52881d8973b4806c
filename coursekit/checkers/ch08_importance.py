"""Checkers for chapter 8, importance-weighted bounds (beyond the slides; Burda et al., 2016):
the bound ``L_K = log (1/K) Σ_k w_k`` from log-weights, stably (8.4), and with the learned
dequantization proposal ``q`` of a tiny float64 image flow (8.5).

Self-contained: tiny float64 models with random weights
(:func:`coursekit.checkers.ch08.random_dequantized_flow`) and synthetic 8-bit images.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from coursekit.checkers._answers import as_tensor, fmt, matches
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint
from coursekit.checkers.ch08 import SHAPE, _images, _noise, elbo_reference, random_dequantized_flow


def iw_bound_reference(log_w: Tensor) -> Tensor:
    """``L_K = logsumexp_k log w_k − log K`` per row of ``log_w`` (n, K)."""
    return torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1])


@checker("8.4", "the importance-weighted bound L_K from log-weights")
def check_iw_bound(fn: Callable) -> str:
    """``fn(log_w)`` = ``log (1/K) Σ_k exp(log_w[:, k])`` per row, (n,), stable for
    log-weights around +3700 and −3000 (where ``exp`` overflows or underflows)."""
    g = torch.Generator().manual_seed(84)
    cases = (
        ("moderate", -30.0, 6, 8),
        ("large", 3700.0, 5, 32),
        ("very negative", -3000.0, 4, 7),
        ("rows at different scales", None, 4, 6),
    )
    for kind, centre, n, k in cases:
        if centre is None:  # one row near +3,700, the others far below: one shift cannot fit all
            centres = torch.tensor([3700.0, 2000.0, -3000.0, 10.0], dtype=torch.float64)
            log_w = centres[:, None] + 4.0 * torch.randn(n, k, generator=g, dtype=torch.float64)
        else:
            log_w = centre + 4.0 * torch.randn(n, k, generator=g, dtype=torch.float64)
        out = call(fn, log_w.clone())
        if isinstance(out, Tensor) and tuple(out.shape) == (k,):
            raise Hint(
                f"shape ({k},): you combined the n = {n} rows; combine the K = {k} draws of "
                "each row (dim=1) into one value per image"
            )
        if isinstance(out, Tensor) and out.shape == log_w.shape:
            raise Hint(f"combine the K = {k} log-weights of each row into one value: shape (n,)")
        got = as_tensor(out, (n,), "your L_K")
        want = iw_bound_reference(log_w)
        if matches(got, want, scale=1.0):
            continue
        if not bool(torch.isfinite(got).all()) and centre is None:
            raise Hint(
                "not finite when the rows have very different scales: you shifted every row by "
                "the same (global) maximum, so exp underflows to 0 in the rows far below it; "
                "shift each row by its own maximum (torch.logsumexp(log_w, dim=1) does)"
            )
        if not bool(torch.isfinite(got).all()):
            raise Hint(
                f"not finite for log-weights around {fmt(centre)}: exp overflows above about "
                "709 and underflows to 0 below about −745; use torch.logsumexp, which shifts by "
                "the largest log-weight before exponentiating"
            )
        if matches(got, log_w.mean(1), scale=1.0):
            raise Hint(
                "that is the mean of the log-weights: the average of K single-draw bounds, in "
                "expectation no better than K = 1 — average the weights, then take the log"
            )
        lse = torch.logsumexp(log_w, dim=1)
        if matches(got, lse, scale=1.0):
            raise Hint(f"the 1/K is missing: subtract log K = {fmt(math.log(k))}")
        if matches(got, lse + math.log(k), scale=1.0):
            raise Hint("sign: L_K = logsumexp − log K (the mean divides by K)")
        if matches(got, log_w.max(1).values, scale=1.0):
            raise Hint("the largest log-weight is not the average of the weights")
        raise Hint(f"L_K = log (1/K) Σ_k exp(log w_k) per row; wrong for {kind} log-weights")
    return "L_K = logsumexp(log w) − log K: the average of the weights, taken before the log."


def iw_log_prob_reference(flow: Any, dequantizer: Any, images: Tensor, eps: Tensor) -> Tensor:
    """``L_K`` per image with the proposal ``q``: ``eps`` (K, n, C, H, W), one ELBO draw per
    ``eps[k]``, combined by :func:`iw_bound_reference`."""
    log_w = torch.stack([elbo_reference(flow, dequantizer, images, e) for e in eps], dim=1)
    return iw_bound_reference(log_w)


@checker("8.5", "L_K with a learned proposal q")
@torch.no_grad()
def check_iw_log_prob(fn: Callable) -> str:
    """``fn(flow, dequantizer, images, eps)`` = ``L_K`` per image, (n,), for ``eps``
    (K, n, C, H, W): each weight is ``p_X((k + u)/256) / q(u | k)``; K = 1 and K = 6."""
    for k, seed in ((1, 0), (6, 1)):
        flow, dq = random_dequantized_flow(SHAPE, seed)
        n = 5
        images, eps = _images(n, seed + 50), _noise((k, n, *SHAPE), seed + 60)
        with torch.no_grad():
            log_w = torch.stack([elbo_reference(flow, dq, images, e) for e in eps], dim=1)
            out = call(fn, copy.deepcopy(flow), copy.deepcopy(dq), images.clone(), eps.clone())
        if isinstance(out, Tensor) and tuple(out.shape) in ((k, n), (n, k)):
            raise Hint(f"combine the K = {k} draws of each image into one value: shape (n,)")
        if isinstance(out, Tensor) and tuple(out.shape) == (k,) and k != n:
            raise Hint(f"shape ({k},): you combined the images; combine the K draws of each one")
        got = as_tensor(out, (n,), "your L_K")
        want = iw_bound_reference(log_w)
        if matches(got, want):
            continue
        if matches(got, log_w.mean(1)):
            raise Hint(
                "that is the mean of the K ELBOs, no tighter than K = 1 in expectation: "
                "average the weights p/q, then take the log (your iw_bound)"
            )
        if matches(got, log_w[:, 0]):
            raise Hint(f"you used only the first draw: there are K = {k} in eps (K, n, C, H, W)")
        if matches(got, torch.logsumexp(log_w, 1)):
            raise Hint(f"the 1/K is missing: subtract log K = {fmt(math.log(k))}")
        with torch.no_grad():
            log_p = torch.stack(
                [flow.log_prob((images + dq.transform(e, images)[0]) / 256) for e in eps], 1
            )
        if matches(got, iw_bound_reference(log_p)):
            raise Hint("each weight is p/q: its log is the ELBO of that draw, log p − log q")
        raise Hint(
            f"wrong L_K for K = {k}: one ELBO per draw eps[k] (shape (n,)), stacked to (n, K), "
            "then logsumexp − log K per image"
        )
    return "L_K with q: the ELBOs of K draws, combined by logsumexp − log K; K = 1 is the ELBO."
