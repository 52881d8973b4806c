"""Checkers for chapter 8, image flows (beyond the slides): the levels of a multi-scale latent,
the density of the dequantization noise ``u = σ(h)``, the variational-dequantization bound
(ELBO) of an image, and the importance-weighted bound ``L_K`` from log-weights and with a
learned proposal ``q``.

Self-contained: tiny float64 models with random weights (:func:`random_dequantized_flow`) and
synthetic 8-bit images, never the MNIST files or the pretrained model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from coursekit.checkers._common import Hint, as_tensor, call, checker, close, fmt
from coursekit.checkers._inputs import check_unchanged
from coursekit.checkers.ch06 import synthetic_images
from coursekit.flows import ImageRealNVP, VariationalDequantizer, squeeze
from coursekit.flows.base import standard_normal_log_prob

#: the image shape of the checkers' tiny models
SHAPE = (1, 8, 8)


def _randomised(module: torch.nn.Module, seed: int, scale: float) -> torch.nn.Module:
    """Every parameter redrawn (the zero-initialised last layers too), in float64."""
    module = module.double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return module.eval()


def random_dequantized_flow(
    image_shape: Sequence[int] = SHAPE, seed: int = 0
) -> tuple[ImageRealNVP, VariationalDequantizer]:
    """A tiny float64 image flow and a variational dequantizer ``q(u | k)`` for images of
    ``image_shape`` (height and width even), both with random, non-identity weights."""
    flow = ImageRealNVP(
        image_shape=tuple(image_shape),
        n_scales=2,
        hidden=4,
        n_blocks=1,
        n_checker=1,
        n_channel=1,
        n_final=1,
    )
    dequantizer = VariationalDequantizer(
        tuple(image_shape), hidden=4, n_couplings=2, context_channels=2
    )
    return _randomised(flow, 2 * seed + 5, 0.05), _randomised(dequantizer, 2 * seed + 6, 0.1)


# --------------------------------------------------------------------------------------------
# 8.1: the levels of a multi-scale latent
# --------------------------------------------------------------------------------------------


def split_levels_reference(z: Tensor, n_scales: int) -> list[Tensor]:
    """``[z_1, …, z_L]``: squeeze, keep the first half of the channels, factor out the
    second half, ``n_scales − 1`` times; the last kept part is the coarsest level."""
    return _split_variant(z, n_scales)


def _split_variant(z: Tensor, n_scales: int, swap: bool = False, reshape: bool = False) -> list:
    """The layout of :func:`split_levels_reference`, or a typical wrong one: the halves
    swapped (``swap``), or a plain reshape instead of the squeeze (``reshape``)."""
    levels, x = [], z
    for _ in range(n_scales - 1):
        b, c, h, w = x.shape
        y = x.reshape(b, 4 * c, h // 2, w // 2) if reshape else squeeze(x)
        kept, factored_out = y.chunk(2, dim=1)
        if swap:
            kept, factored_out = factored_out, kept
        levels.append(factored_out)
        x = kept
    return levels + [x]


def _same_levels(got: list[Tensor], want: list[Tensor]) -> bool:
    return len(got) == len(want) and all(
        g.shape == w.shape and torch.equal(g, w) for g, w in zip(got, want, strict=True)
    )


def _as_levels(value: Any, n_scales: int, want: list[Tensor], z_shape: tuple) -> list[Tensor]:
    """The student's list of levels, each checked to be a real tensor of the right shape."""
    if isinstance(value, Tensor):
        raise Hint("return a list of tensors, one per level (finest first), not a single tensor")
    if not isinstance(value, (list, tuple)):
        raise Hint(f"return a list of tensors, one per level, got {type(value).__name__}")
    if len(value) == n_scales - 1:
        raise Hint(
            f"{len(value)} levels for n_scales = {n_scales}: the part kept after the last "
            f"split is a level too (the coarsest), so there are n_scales = {n_scales} levels"
        )
    if len(value) != n_scales:
        raise Hint(f"expected n_scales = {n_scales} levels, got {len(value)}")
    for i, v in enumerate(value, start=1):
        if not isinstance(v, Tensor):
            raise Hint(f"level {i} is a {type(v).__name__}; every level should be a tensor")
    shapes = [tuple(w.shape) for w in want]
    got_shapes = [tuple(v.shape) for v in value]
    if got_shapes == shapes[::-1] != shapes:
        raise Hint(
            f"the levels are in reverse order (shapes {got_shapes}, expected {shapes}): the "
            "finest level, factored out at the first split, comes first; the coarsest, kept to "
            "the end, comes last"
        )
    if got_shapes != shapes:
        raise Hint(
            f"level shapes {got_shapes}, expected {shapes} for z of shape {z_shape} and "
            f"n_scales = {n_scales}: squeeze first (each 2×2 block becomes 4 channels), then "
            "split the channels in two halves"
        )
    return [
        as_tensor(v, tuple(w.shape), f"level {i}")
        for i, (v, w) in enumerate(zip(value, want, strict=True), start=1)
    ]


@checker("8.1", "the levels of a multi-scale latent")
def check_split_levels(fn: Callable) -> str:
    """``fn(z, n_scales)`` = ``[z_1, …, z_L]``: repeated squeeze, chunk in two along the
    channels, the second half factored out; compared exactly with
    :func:`split_levels_reference` for 2 and 3 scales, non-square images and C > 1."""
    g = torch.Generator().manual_seed(8)
    cases = (((2, 1, 8, 8), 3), ((2, 3, 8, 12), 3), ((3, 1, 8, 8), 2), ((2, 2, 4, 6), 2))
    for shape, n_scales in cases:
        z = torch.randn(shape, generator=g, dtype=torch.float64)
        z_in = z.clone()
        out = call(fn, z_in, n_scales)
        check_unchanged(z, z_in, "z")
        want = split_levels_reference(z, n_scales)
        got = _as_levels(out, n_scales, want, shape)
        if _same_levels(got, want):
            continue
        where = f"for z of shape {shape} and n_scales = {n_scales}"
        if _same_levels(got, list(reversed(want))):
            raise Hint(
                f"the levels are in reverse order {where}: the finest level (factored out at "
                "the first split) comes first, the coarsest (kept to the end) last"
            )
        if _same_levels(got, _split_variant(z, n_scales, swap=True)):
            raise Hint(
                f"the halves are swapped {where}: after each squeeze the FIRST half of the "
                "channels is kept and goes on to the next scale, the SECOND half is factored out"
            )
        if _same_levels(got, _split_variant(z, n_scales, reshape=True)):
            raise Hint(
                f"a plain reshape is not a squeeze {where}: it mixes pixels from distant places; "
                "use squeeze, which turns each 2×2 block into 4 channels"
            )
        for i, (level, w) in enumerate(zip(got, want, strict=True), start=1):
            if not torch.equal(level, w):
                raise Hint(
                    f"level {i} holds the wrong values {where}: squeeze, then chunk the channels "
                    "in two (kept, factored out), and repeat on the kept half"
                )
    sizes = [28 * 28 // 2, 28 * 28 // 4, 28 * 28 // 4]
    return (
        "squeeze, keep the first half, factor out the second: for a 28×28 digit and 3 scales "
        f"the levels hold {sizes[0]}, {sizes[1]} and {sizes[2]} of the 784 variables."
    )


# --------------------------------------------------------------------------------------------
# 8.2: the density of u = σ(h)
# --------------------------------------------------------------------------------------------


def log_q_of_sigmoid_reference(h: Tensor, log_q_h: Tensor) -> Tensor:
    """``log q(u) = log q(h) − Σ_j log σ'(h_j)``, ``log σ'(h) = log σ(h) + log σ(−h)``."""
    return log_q_h - (F.logsigmoid(h) + F.logsigmoid(-h)).flatten(1).sum(1)


@checker("8.2", "the log-density of u = σ(h), stably")
@torch.no_grad()
def check_log_q_of_sigmoid(fn: Callable) -> str:
    """``fn(h, log_q_h)`` = ``log q(u)`` for ``u = σ(h)``; h (n, C, H, W), log_q_h (n,);
    finite and right for |h| up to 800, and equal to the log q of a freshly built
    :class:`~coursekit.flows.VariationalDequantizer` (whose couplings start as the identity)."""
    g = torch.Generator().manual_seed(82)
    moderate = 2.0 * torch.randn(5, 1, 4, 4, generator=g, dtype=torch.float64)
    large = moderate.clone()
    large[:, :, :2] = 40.0 * torch.sign(large[:, :, :2])  # σ(h) rounds to 1 or to 1e-18
    huge = moderate.clone()
    huge[:, :, 1::2] = 800.0 * torch.sign(huge[:, :, 1::2])  # σ(−800) underflows to 0
    for h, kind in ((moderate, "moderate"), (large, "large"), (huge, "huge")):
        log_q_h = -20.0 + 3.0 * torch.randn(len(h), generator=g, dtype=torch.float64)
        h_in, lq_in = h.clone(), log_q_h.clone()
        out = call(fn, h_in, lq_in)
        check_unchanged(h, h_in, "h")
        check_unchanged(log_q_h, lq_in, "log_q_h")
        if isinstance(out, Tensor) and out.shape == h.shape:
            raise Hint("sum log σ'(h_j) over the pixels of each image: return shape (n,)")
        got = as_tensor(out, (len(h),), "your log q(u)")
        want = log_q_of_sigmoid_reference(h, log_q_h)
        if close(got, want, rtol=1e-9, atol=1e-9):
            continue
        if not bool(torch.isfinite(got).all()):
            biggest = fmt(float(h.abs().max()))
            raise Hint(
                f"not finite for |h| up to {biggest}: in float64 σ(h) rounds to exactly 1 when "
                "h > 37 (and σ(−h) to 0 when h > 745), and log 0 = −∞; compute log σ'(h) "
                "as F.logsigmoid(h) + F.logsigmoid(−h), never the log of σ itself"
            )
        term = (F.logsigmoid(h) + F.logsigmoid(-h)).flatten(1).sum(1)
        if close(got, log_q_h + term, rtol=1e-9, atol=1e-9):
            raise Hint(
                "sign: u = σ(h) squeezes the line into (0, 1) (σ' ≤ 1/4), so the density "
                "grows: log q(u) = log q(h) − Σ log σ'(h)"
            )
        if close(got, -term, rtol=1e-9, atol=1e-9) or close(got, term, rtol=1e-9, atol=1e-9):
            raise Hint("start from log q(h): log q(u) = log q(h) − Σ_j log σ'(h_j)")
        if close(got, log_q_h - F.logsigmoid(h).flatten(1).sum(1), rtol=1e-9, atol=1e-9):
            raise Hint("σ'(h) = σ(h)(1 − σ(h)) = σ(h)σ(−h): both factors count")
        if kind != "moderate":
            raise Hint(
                f"right for moderate h, wrong for |h| up to {fmt(float(h.abs().max()))}: "
                "use F.logsigmoid(h) + F.logsigmoid(−h) for log σ'(h)"
            )
        raise Hint("log q(u) = log q(h) − Σ_j log σ'(h_j), with σ'(h) = σ(h)(1 − σ(h))")
    # a fresh dequantizer: identity couplings, so h = ε and u = σ(ε)
    dq = VariationalDequantizer(SHAPE, hidden=4, n_couplings=2, context_channels=2).double()
    eps = torch.randn(4, *SHAPE, generator=g, dtype=torch.float64)
    with torch.no_grad():
        _, log_q = dq.transform(eps, synthetic_images(4, SHAPE[1], seed=8))
        log_n = standard_normal_log_prob(eps)
        got = as_tensor(call(fn, eps.clone(), log_n.clone()), (4,), "your log q(u)")
    if not close(got, log_q, rtol=1e-9, atol=1e-9):
        raise Hint("h = ε ~ N(0, I) should give VariationalDequantizer's log q(u | k) at start")
    return "log q(u) = log q(h) − Σ [log σ(h) + log σ(−h)]: finite even where σ(h) rounds to 1."


# --------------------------------------------------------------------------------------------
# 8.3: the ELBO of an image; 8.4 and 8.5: the importance-weighted bound
# --------------------------------------------------------------------------------------------


def _images(n: int, seed: int) -> Tensor:
    return synthetic_images(n, SHAPE[1], seed=seed).long()


def _noise(shape: tuple[int, ...], seed: int) -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _log_prob_or_nan(flow: Any, x: Tensor) -> Tensor:
    """``flow.log_prob(x)``, or NaNs where it cannot be computed (x outside [0, 1])."""
    try:
        return flow.log_prob(x)
    except ValueError:
        return torch.full(x.shape[:1], math.nan, dtype=torch.float64)


def elbo_reference(flow: Any, dequantizer: Any, images: Tensor, eps: Tensor) -> Tensor:
    """``log p_X((k + u)/256) − log q(u | k)`` with ``(u, log q) = dequantizer.transform``."""
    u, log_q = dequantizer.transform(eps, images)
    return flow.log_prob((images + u) / 256) - log_q


@checker("8.3", "the variational-dequantization bound of an image")
@torch.no_grad()
def check_dequantized_elbo(fn: Callable) -> str:
    """``fn(flow, dequantizer, images, eps)`` = the ELBO per image, (n,), compared with
    :meth:`~coursekit.flows.DequantizedImageFlow.elbo_given_noise` on a tiny float64 model."""
    for seed in (0, 1):
        flow, dq = random_dequantized_flow(SHAPE, seed)
        images, eps = _images(6, seed + 30), _noise((6, *SHAPE), seed + 40)
        with torch.no_grad():
            u, log_q = dq.transform(eps, images)
            log_p = flow.log_prob((images + u) / 256)
            want = log_p - log_q
            k_in, e_in = images.clone(), eps.clone()
            out = call(fn, copy.deepcopy(flow), copy.deepcopy(dq), k_in, e_in)
        check_unchanged(images, k_in, "images")
        check_unchanged(eps, e_in, "eps")
        if isinstance(out, Tensor) and out.numel() == 1:
            raise Hint("return one bound per image, shape (n,), not their mean")
        got = as_tensor(out, (len(images),), "your ELBO")
        if close(got, want, rtol=1e-9, atol=1e-8):
            continue
        if close(got, log_p, rtol=1e-9, atol=1e-8):
            raise Hint(
                "subtract log q(u | k): the noise is now drawn from q, not from the uniform "
                "(whose log-density is 0)"
            )
        if close(got, log_p + log_q, rtol=1e-9, atol=1e-8):
            raise Hint("sign of log q: the bound is log p(x) − log q(u | k)")
        if close(got, -want, rtol=1e-9, atol=1e-8):
            raise Hint("sign: return the bound itself, log p(x) − log q(u | k), not the loss")
        d_log = images[0].numel() * math.log(256)
        if close(got, want - d_log, rtol=1e-9, atol=1e-8):
            raise Hint(
                "keep the bound in the scale of x = (k + u)/256, as flow.log_prob returns it "
                "(DequantizedImageFlow.elbo's convention); bits_per_dim adds D·log 256 later"
            )
        variants = (
            ((images + u) / 255, "divide by 256, the number of levels: x = (k + u)/256 < 1"),
            (images / 256, "add the noise to the pixels: x = (k + u)/256 with u from q"),
            (
                (images + torch.sigmoid(eps)) / 256,
                "u is q's transform of ε, dequantizer.transform(eps, images)[0], not σ(ε)",
            ),
        )
        for x, hint in variants:
            if close(got, _log_prob_or_nan(flow, x) - log_q, rtol=1e-9, atol=1e-8):
                raise Hint(hint)
        raise Hint(
            "the bound is log p_X(x) − log q(u | k) with (u, log q) = "
            "dequantizer.transform(eps, images) and x = (images + u)/256"
        )
    return "ELBO = log p_X((k + u)/256) − log q(u | k), the bound the lecture's live run trains."


def iw_bound_reference(log_w: Tensor) -> Tensor:
    """``L_K = logsumexp_k log w_k − log K`` per row of ``log_w`` (n, K)."""
    return torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1])


@checker("8.4", "the importance-weighted bound L_K from log-weights")
def check_iw_bound(fn: Callable) -> str:
    """``fn(log_w)`` = ``log (1/K) Σ_k exp(log_w[:, k])`` per row, (n,), stable for
    log-weights around +3700 and −3000 (where ``exp`` overflows or underflows)."""
    g = torch.Generator().manual_seed(84)
    cases = (("moderate", -30.0, 6, 8), ("large", 3700.0, 5, 32), ("very negative", -3000.0, 4, 7))
    for kind, centre, n, k in cases:
        log_w = centre + 4.0 * torch.randn(n, k, generator=g, dtype=torch.float64)
        lw_in = log_w.clone()
        out = call(fn, lw_in)
        check_unchanged(log_w, lw_in, "log_w")
        if isinstance(out, Tensor) and tuple(out.shape) == (k,):
            raise Hint(
                f"shape ({k},): you combined the n = {n} rows; combine the K = {k} draws of "
                "each row (dim=1) into one value per image"
            )
        if isinstance(out, Tensor) and out.shape == log_w.shape:
            raise Hint(f"combine the K = {k} log-weights of each row into one value: shape (n,)")
        got = as_tensor(out, (n,), "your L_K")
        want = iw_bound_reference(log_w)
        if close(got, want, rtol=1e-12, atol=1e-9):
            continue
        if not bool(torch.isfinite(got).all()):
            raise Hint(
                f"not finite for log-weights around {fmt(centre)}: exp overflows above about "
                "709 and underflows to 0 below about −745; use torch.logsumexp, which shifts by "
                "the largest log-weight before exponentiating"
            )
        if close(got, log_w.mean(1), rtol=1e-12, atol=1e-9):
            raise Hint(
                "that is the mean of the log-weights: the average of K single-draw bounds, in "
                "expectation no better than K = 1 — average the weights, then take the log"
            )
        lse = torch.logsumexp(log_w, dim=1)
        if close(got, lse, rtol=1e-12, atol=1e-9):
            raise Hint(f"the 1/K is missing: subtract log K = {fmt(math.log(k))}")
        if close(got, lse + math.log(k), rtol=1e-12, atol=1e-9):
            raise Hint("sign: L_K = logsumexp − log K (the mean divides by K)")
        if close(got, log_w.max(1).values, rtol=1e-12, atol=1e-9):
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
            k_in, e_in = images.clone(), eps.clone()
            out = call(fn, copy.deepcopy(flow), copy.deepcopy(dq), k_in, e_in)
        check_unchanged(images, k_in, "images")
        check_unchanged(eps, e_in, "eps")
        if isinstance(out, Tensor) and tuple(out.shape) in ((k, n), (n, k)):
            raise Hint(f"combine the K = {k} draws of each image into one value: shape (n,)")
        if isinstance(out, Tensor) and tuple(out.shape) == (k,) and k != n:
            raise Hint(f"shape ({k},): you combined the images; combine the K draws of each one")
        got = as_tensor(out, (n,), "your L_K")
        want = iw_bound_reference(log_w)
        if close(got, want, rtol=1e-9, atol=1e-8):
            continue
        if close(got, log_w.mean(1), rtol=1e-9, atol=1e-8):
            raise Hint(
                "that is the mean of the K ELBOs, no tighter than K = 1 in expectation: "
                "average the weights p/q, then take the log (your iw_bound)"
            )
        if close(got, log_w[:, 0], rtol=1e-9, atol=1e-8):
            raise Hint(f"you used only the first draw: there are K = {k} in eps (K, n, C, H, W)")
        if close(got, torch.logsumexp(log_w, 1), rtol=1e-9, atol=1e-8):
            raise Hint(f"the 1/K is missing: subtract log K = {fmt(math.log(k))}")
        with torch.no_grad():
            log_p = torch.stack(
                [flow.log_prob((images + dq.transform(e, images)[0]) / 256) for e in eps], 1
            )
        if close(got, iw_bound_reference(log_p), rtol=1e-9, atol=1e-8):
            raise Hint("each weight is p/q: its log is the ELBO of that draw, log p − log q")
        raise Hint(
            f"wrong L_K for K = {k}: one ELBO per draw eps[k] (shape (n,)), stacked to (n, K), "
            "then logsumexp − log K per image"
        )
    return "L_K with q: the ELBOs of K draws, combined by logsumexp − log K; K = 1 is the ELBO."
