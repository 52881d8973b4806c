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

from coursekit.checkers._answers import as_tensor, fmt, matches
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint
from coursekit.checkers.ch06 import synthetic_images
from coursekit.flows import ImageRealNVP, VariationalDequantizer
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
# 8.1: the log-density of a multi-scale latent with learned split priors
# --------------------------------------------------------------------------------------------


def multiscale_log_prob_reference(
    levels: Sequence[Tensor], priors: Sequence[tuple[Tensor, Tensor]], log_det: Tensor
) -> Tensor:
    """``log p(x)`` (n,) from the levels ``[z_1, …, z_L]`` (finest first), the learned priors
    ``[(μ_l, ℓ_l)]`` of the factored-out levels ``z_1 … z_{L−1}`` and the couplings' log-det:

    ``Σ_{l<L} log N(z_l; μ_l, e^{2ℓ_l}) + log N(z_L; 0, I) + log_det``, where
    ``log N(z; μ, e^{2ℓ}) = log N((z − μ)e^{−ℓ}; 0, I) − Σ ℓ`` (the standardisation's log-det);
    the split itself is a reshuffle, ``log|det| = 0``."""
    total = log_det + standard_normal_log_prob(levels[-1])
    for z, (mean, log_scale) in zip(levels[:-1], priors, strict=True):
        eps = (z - mean) * torch.exp(-log_scale)
        total = total + standard_normal_log_prob(eps) - log_scale.flatten(1).sum(1)
    return total


def _multiscale_case(seed: int, shape: tuple[int, int, int], n_scales: int) -> tuple:
    """Levels of a (n = 4) multi-scale latent for images of ``shape`` and their priors."""
    g = torch.Generator().manual_seed(seed)
    c, h, w = shape
    levels, priors = [], []
    for _ in range(n_scales - 1):
        c, h, w = 2 * c, h // 2, w // 2  # squeeze (4c), keep half, factor out half
        levels.append(torch.randn(4, c, h, w, generator=g, dtype=torch.float64))
        priors.append(
            (
                0.5 * torch.randn(4, c, h, w, generator=g, dtype=torch.float64),
                0.4 * torch.randn(4, c, h, w, generator=g, dtype=torch.float64),
            )
        )
    levels.append(torch.randn(4, c, h, w, generator=g, dtype=torch.float64))
    log_det = 20.0 * torch.randn(4, generator=g, dtype=torch.float64)
    return levels, priors, log_det


@checker("8.1", "the log-density of a multi-scale latent with learned split priors")
def check_multiscale_log_prob(fn: Callable) -> str:
    """``fn(levels, priors, log_det)`` = :func:`multiscale_log_prob_reference`, (n,); for 2 and
    3 scales, 1 and 3 image channels."""
    for seed, shape, n_scales in ((1, (1, 8, 8), 3), (2, (3, 4, 8), 2)):
        levels, priors, log_det = _multiscale_case(seed, shape, n_scales)
        out = call(
            fn,
            [z.clone() for z in levels],
            [(m.clone(), s.clone()) for m, s in priors],
            log_det.clone(),
        )
        got = as_tensor(out, (4,), "your log p(x)")
        want = multiscale_log_prob_reference(levels, priors, log_det)
        if matches(got, want):
            continue
        base = log_det + sum(standard_normal_log_prob(z) for z in levels)
        scale_terms = sum(s.flatten(1).sum(1) for _, s in priors)
        eps_terms = log_det + standard_normal_log_prob(levels[-1])
        for z, (m, s) in zip(levels[:-1], priors, strict=True):
            eps_terms = eps_terms + standard_normal_log_prob((z - m) * torch.exp(-s))
        variants = (
            (
                eps_terms,
                "each factored-out level is N(μ, e^(2ℓ)): standardising it, (z − μ)·e^(−ℓ), is "
                "an affine map with its own log-det −Σ ℓ, which you left out (change of "
                "variable (11))",
            ),
            (
                eps_terms + scale_terms,
                "sign: log N(z; μ, e^(2ℓ)) = log N((z − μ)e^(−ℓ); 0, I) − Σ ℓ",
            ),
            (
                base,
                "the factored-out levels are not N(0, I) here: each has its learned prior "
                "N(μ_l, e^(2ℓ_l)), computed from the coarser levels",
            ),
            (want - log_det, "the couplings' log-det (13) is missing: add log_det"),
            (
                want - standard_normal_log_prob(levels[-1]),
                "the coarsest level z_L, kept to the end, counts too: add log N(z_L; 0, I)",
            ),
            (
                want + sum(float(z[0].numel()) for z in levels[:-1]) * math.log(2),
                "the split adds no log-det: factoring out is a reshuffle of coordinates",
            ),
            (
                want - scale_terms,
                "ℓ is the log of the standard deviation σ: the normalising factor of "
                "N(μ, σ²) is 1/σ per variable, so subtract Σ ℓ once, not 2·Σ ℓ",
            ),
        )
        for value, hint in variants:
            if matches(got, value):
                raise Hint(hint)
        raise Hint(
            f"wrong log p(x) for {n_scales} scales: Σ over the factored-out levels of "
            "log N(z_l; μ_l, e^(2ℓ_l)) + log N(z_L; 0, I) + log_det"
        )
    return (
        "log p(x) = Σ_l log N(z_l; μ_l, e^(2ℓ_l)) + log N(z_L; 0, I) + log_det: the split adds "
        "nothing, each learned prior is one more affine change of variable."
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
        out = call(fn, h.clone(), log_q_h.clone())
        if isinstance(out, Tensor) and out.shape == h.shape:
            raise Hint("sum log σ'(h_j) over the pixels of each image: return shape (n,)")
        got = as_tensor(out, (len(h),), "your log q(u)")
        want = log_q_of_sigmoid_reference(h, log_q_h)
        if matches(got, want):
            continue
        if not bool(torch.isfinite(got).all()):
            biggest = fmt(float(h.abs().max()))
            raise Hint(
                f"not finite for |h| up to {biggest}: in float64 σ(h) rounds to exactly 1 when "
                "h > 37 (and σ(−h) to 0 when h > 745), and log 0 = −∞; compute log σ'(h) "
                "as F.logsigmoid(h) + F.logsigmoid(−h), never the log of σ itself"
            )
        term = (F.logsigmoid(h) + F.logsigmoid(-h)).flatten(1).sum(1)
        if matches(got, log_q_h + term):
            raise Hint(
                "sign: u = σ(h) squeezes the line into (0, 1) (σ' ≤ 1/4), so the density "
                "grows: log q(u) = log q(h) − Σ log σ'(h)"
            )
        if matches(got, -term) or matches(got, term):
            raise Hint("start from log q(h): log q(u) = log q(h) − Σ_j log σ'(h_j)")
        if matches(got, log_q_h - F.logsigmoid(h).flatten(1).sum(1)):
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
    if not matches(got, log_q):
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
            out = call(fn, copy.deepcopy(flow), copy.deepcopy(dq), images.clone(), eps.clone())
        if isinstance(out, Tensor) and out.numel() == 1:
            raise Hint("return one bound per image, shape (n,), not their mean")
        got = as_tensor(out, (len(images),), "your ELBO")
        if matches(got, want):
            continue
        if matches(got, log_p):
            raise Hint(
                "subtract log q(u | k): the noise is now drawn from q, not from the uniform "
                "(whose log-density is 0)"
            )
        if matches(got, log_p + log_q):
            raise Hint("sign of log q: the bound is log p(x) − log q(u | k)")
        if matches(got, -want):
            raise Hint("sign: return the bound itself, log p(x) − log q(u | k), not the loss")
        d_log = images[0].numel() * math.log(256)
        if matches(got, want - d_log):
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
            if matches(got, _log_prob_or_nan(flow, x) - log_q):
                raise Hint(hint)
        raise Hint(
            "the bound is log p_X(x) − log q(u | k) with (u, log q) = "
            "dequantizer.transform(eps, images) and x = (images + u)/256"
        )
    return "ELBO = log p_X((k + u)/256) − log q(u | k), the bound the lecture's live run trains."
