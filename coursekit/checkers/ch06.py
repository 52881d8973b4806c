"""Checkers for chapter 6, RealNVP on images (slide EXEMPLE (MNIST)).

Self-contained: they use small synthetic 8-bit images from :func:`synthetic_images`, never
the MNIST files.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from coursekit.checkers._common import (
    Hint,
    as_float,
    as_pair,
    as_tensor,
    call,
    checker,
    close,
    fmt,
)
from coursekit.checkers._inputs import check_unchanged
from coursekit.flows.preprocessing import Logit
from coursekit.metrics import bits_per_dim


def synthetic_images(n: int = 16, size: int = 8, seed: int = 0) -> Tensor:
    """``n`` synthetic 8-bit grey images (n, 1, size, size), dtype uint8.

    Each is a dark background with a bright random bar and a little noise — enough to
    exercise dequantization, the logit transform and squeezing without MNIST.
    """
    g = torch.Generator().manual_seed(seed)
    img = torch.randint(0, 30, (n, 1, size, size), generator=g)
    for i in range(n):
        r0, c0 = (int(v) for v in torch.randint(0, size // 2, (2,), generator=g))
        h, w = (int(v) for v in torch.randint(2, size // 2 + 1, (2,), generator=g))
        img[i, 0, r0 : r0 + h, c0 : c0 + w] = torch.randint(180, 256, (h, w), generator=g)
    return img.to(torch.uint8)


@checker("6.1", "uniform dequantization")
def check_dequantize(fn: Callable) -> str:
    """``fn(x, generator)``: uint8 images -> ``(x + u)/256``, ``u ~ U[0, 1)``, in [0, 1)."""
    x = synthetic_images(32)
    y = call(fn, x.clone(), torch.Generator().manual_seed(0))
    if isinstance(y, Tensor) and not y.is_floating_point():
        raise Hint(f"return a floating-point tensor, got dtype {y.dtype} (use x.float())")
    y = as_tensor(y, tuple(x.shape), "your dequantize", exact=False)
    xf = x.double()
    if bool((y < 0).any()) or bool((y >= 1).any()):
        if close(y, xf / 255, atol=1e-6) or bool((y > 1).any()) and float(y.max()) < 1.01:
            raise Hint("divide by 256, not 255: (255 + u)/256 stays below 1")
        raise Hint(
            f"values should lie in [0, 1), got range [{fmt(float(y.min()))}, "
            f"{fmt(float(y.max()))}]: divide by 256"
        )
    if close(y, xf / 256, atol=1e-7) or close(y, xf / 255, atol=1e-7):
        raise Hint(
            "no noise added: add u ~ Uniform[0, 1) to each pixel before dividing, or "
            "the model can put infinite density on the 256 levels"
        )
    if not torch.equal(torch.floor(y * 256).clamp(max=255), xf):
        raise Hint(
            "floor(256·y) should give back the original pixel: use (x + u)/256 with u in [0, 1)"
        )
    y2 = as_tensor(
        call(fn, x.clone(), torch.Generator().manual_seed(0)), tuple(x.shape), exact=False
    )
    if not torch.equal(y, y2):
        raise Hint("not reproducible: draw u with torch.rand(..., generator=generator)")
    frac = y * 256 - xf
    if abs(float(frac.mean()) - 0.5) > 0.05:
        raise Hint(
            f"the noise should be uniform on [0, 1): its mean is {fmt(float(frac.mean()))}"
            ", expected 0.5"
        )
    return "y = (x + u)/256 in [0, 1), reproducible, and floor(256·y) = x."


def _logit_ref(y: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """The reference answer: the library's :class:`~coursekit.flows.preprocessing.Logit`."""
    return Logit(alpha)._forward(y)


@checker("6.2", "logit transform and its log-det")
def check_logit_transform(fn: Callable) -> str:
    """``fn(y, alpha) -> (z, log_det)``, ``z = logit(α + (1 − 2α) y)``, log_det (batch,)."""
    g = torch.Generator().manual_seed(1)
    y = (
        synthetic_images(8).double() + torch.rand(8, 1, 8, 8, generator=g, dtype=torch.float64)
    ) / 256
    alpha = 0.05
    z, ld = as_pair(call(fn, y.clone(), alpha), "your logit_transform")
    z = as_tensor(z, tuple(y.shape), "z")
    if isinstance(ld, Tensor) and ld.shape == y.shape:
        raise Hint("log_det has one value per pixel: sum it over each image, shape (batch,)")
    ld = as_tensor(ld, (y.shape[0],), "log_det")
    z_ref, ld_ref = _logit_ref(y, alpha)
    n_dims = y[0].numel()
    if not close(z, z_ref, rtol=1e-9, atol=1e-10):
        if close(z, torch.logit(y), rtol=1e-9):
            raise Hint(
                "squeeze y into [α, 1 − α] first, p = α + (1 − 2α)·y, so that pixels "
                "near 0 or 1 do not map to ±∞"
            )
        raise Hint("z is wrong: z = log p − log(1 − p) with p = α + (1 − 2α)·y")
    if close(ld, ld_ref, rtol=1e-9, atol=1e-9):
        return "z and log|det| = Σ [log(1 − 2α) − log p − log(1 − p)] are right."
    off = n_dims * math.log(1 - 2 * alpha)
    if close(ld - ld_ref, torch.full_like(ld, -off), rtol=1e-7):
        raise Hint(
            f"off by D·log(1 − 2α) = {off:.3f}: the affine step p = α + (1 − 2α)·y "
            "has its own Jacobian factor (1 − 2α) per pixel"
        )
    if close(ld, -ld_ref, rtol=1e-9):
        raise Hint(
            "wrong sign of the log-det: d logit(p)/dp = 1/(p(1 − p)) > 1, so the "
            "log-det is positive"
        )
    raise Hint(
        "log_det is wrong: the derivative of z with respect to y is "
        "(1 − 2α)/(p(1 − p)) per pixel; sum its log over the pixels"
    )


@checker("6.3", "bits per dimension")
def check_bits_per_dim(fn: Callable) -> str:
    """``fn(log_prob, num_dims)``: bits/dim in the 8-bit scale from log-densities on [0, 1)^D."""
    lp = torch.tensor([280.0, 305.0, 262.0], dtype=torch.float64)
    d = 64
    got = as_float(call(fn, lp.clone(), d), "your bits/dim")
    want = float(bits_per_dim(lp, d, levels=256))  # the library's formula, every term
    if close(got, want, rtol=1e-9):
        return f"{fmt(got)} bits/dim: −mean(log p)/(D·ln 2) + log2(256)."
    if close(got, want - 8.0, rtol=1e-9):
        raise Hint(
            "off by exactly 8: the density on [0, 1)^D must be converted to the 8-bit "
            "scale [0, 256)^D, which subtracts D·log(256) from log p"
        )
    if close(got, (want - 8.0) * math.log(2), rtol=1e-9) or close(
        got, (want - 8.0) * math.log(2) + 8, rtol=1e-9
    ):
        raise Hint("these are nats: divide by ln 2 to get bits")
    if close(got, -want, rtol=1e-9):
        raise Hint("sign: bits/dim = −log2 p / D is positive for a good model")
    if close(got, (want - 8.0) * d + 8, rtol=1e-9) or close(got, (want - 8.0) * d, rtol=1e-9):
        raise Hint(f"divide by the number of dimensions D = {d}")
    raise Hint(f"got {fmt(got)}; bits/dim = −(mean log p − D·log 256)/(D·ln 2)")


@checker("6.4", "squeeze and unsqueeze")
def check_squeeze(squeeze: Callable, unsqueeze: Callable) -> str:
    """``squeeze``: (B, C, H, W) -> (B, 4C, H/2, W/2) by 2×2 blocks; ``unsqueeze`` inverts it."""
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float64).reshape(2, 3, 4, 6)
    y = call(squeeze, x.clone())
    y = as_tensor(y, (2, 12, 2, 3), "your squeeze", exact=False)
    for i in range(2):
        for j in range(3):
            block = x[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].reshape(2, -1)
            got = y[:, :, i, j]
            if not torch.equal(got.sort(1).values, block.sort(1).values):
                raise Hint(
                    "each output position (i, j) must hold the 4C values of the input "
                    "block rows 2i:2i+2, columns 2j:2j+2 (a plain reshape mixes "
                    "pixels from different places)"
                )
    back = as_tensor(call(unsqueeze, y.clone()), tuple(x.shape), "your unsqueeze", exact=False)
    if not torch.equal(back, x):
        raise Hint(
            "unsqueeze(squeeze(x)) does not give back x: undo the same permutes in reverse order"
        )
    return "2×2 blocks become channels (no pixel moves far) and unsqueeze inverts it exactly."


# --------------------------------------------------------------------------------------------
# 6.5: ActNorm with its H·W factor; 6.6: the nearest-training-image distance
# --------------------------------------------------------------------------------------------


@checker("6.5", "ActNorm forward and its log-det")
def check_actnorm(fn: Callable) -> str:
    """``fn(x, loc, log_scale) -> (z, log_det)`` for a per-channel ActNorm: ``x`` (B, C, H, W),
    ``loc`` and ``log_scale`` (1, C, 1, 1); ``z = (x − loc)·exp(−log_scale)`` and
    ``log_det = −H·W·Σ_c log_scale_c`` for every sample, shape (B,)."""
    see = "see notebook 08, section 2, 'Glow's additions' (ActNorm)"
    g = torch.Generator().manual_seed(6)
    x = torch.randn(5, 3, 4, 6, generator=g, dtype=torch.float64)
    loc = torch.randn(1, 3, 1, 1, generator=g, dtype=torch.float64)
    log_scale = 0.5 * torch.randn(1, 3, 1, 1, generator=g, dtype=torch.float64)
    x_in, loc_in, scale_in = x.clone(), loc.clone(), log_scale.clone()
    out = call(fn, x_in, loc_in, scale_in)
    check_unchanged(x, x_in, "x")
    check_unchanged(loc, loc_in, "loc")
    check_unchanged(log_scale, scale_in, "log_scale")
    z, log_det = as_pair(out, "your ActNorm")
    z = as_tensor(z, tuple(x.shape), "z")
    want_z = (x - loc) * torch.exp(-log_scale)
    if not close(z, want_z, rtol=1e-10, atol=1e-10):
        if close(z, (x - loc) * torch.exp(log_scale), rtol=1e-10, atol=1e-10):
            raise Hint(f"z divides by the scale: z = (x − loc)·exp(−log_scale) ({see})")
        raise Hint(f"z should be (x − loc)·exp(−log_scale), channel by channel ({see})")
    if isinstance(log_det, Tensor) and log_det.numel() == 1 and x.shape[0] > 1:
        raise Hint(f"log_det needs one value per sample, shape ({x.shape[0]},)")
    log_det = as_tensor(log_det, (x.shape[0],), "log_det")
    h, w = x.shape[2], x.shape[3]
    want = -h * w * log_scale.sum()
    if close(log_det, want.expand(x.shape[0]), rtol=1e-10, atol=1e-10):
        return f"log|det| = −H·W·Σ ℓ_c = {fmt(float(want))}: each ℓ_c scales H·W = {h * w} entries."
    if close(log_det, (want / (h * w)).expand(x.shape[0]), rtol=1e-10, atol=1e-10):
        raise Hint(
            f"the factor H·W = {h * w} is missing: each channel's ℓ_c scales all H·W pixels "
            f"of that channel ({see})"
        )
    if close(log_det, (-want).expand(x.shape[0]), rtol=1e-10, atol=1e-10):
        raise Hint(f"sign: z = (x − loc)·exp(−ℓ) shrinks volumes when ℓ > 0 ({see})")
    raise Hint(f"log_det should be −H·W·Σ_c log_scale_c for each sample ({see})")


@checker("6.6", "distance to the nearest training image")
def check_nearest_distances(fn: Callable) -> str:
    """``fn(queries, images) -> (q,)``: for each row of ``queries`` (q, D), the Euclidean
    distance to the closest row of ``images`` (N, D)."""
    see = "see notebook 06, section 7, 'Are the samples copies of training images?'"
    imgs = synthetic_images(n=40, size=6, seed=3).flatten(1).to(torch.float64) / 255
    queries = torch.cat([imgs[[3, 17]], imgs[:4] * 0.7 + 0.1])
    q_in, i_in = queries.clone(), imgs.clone()
    out = call(fn, q_in, i_in)
    check_unchanged(queries, q_in, "queries")
    check_unchanged(imgs, i_in, "images")
    if isinstance(out, Tensor) and not out.is_floating_point():
        raise Hint("return the distances, not the indices of the nearest images")
    got = as_tensor(out, (len(queries),), "your distances")
    # exact differences (torch.cdist may use a faster, less accurate formula: allow 1e-6)
    dist = ((queries[:, None, :] - imgs[None]) ** 2).sum(-1).sqrt()
    want = dist.min(1).values
    if close(got, want, rtol=1e-6, atol=1e-6):
        return "copies are at distance 0; the other queries are measurably far from every image."
    if close(got, want**2, rtol=1e-6, atol=1e-6):
        raise Hint(f"those are squared distances; take the square root ({see})")
    if close(got, dist.mean(1), rtol=1e-6, atol=1e-6):
        raise Hint(f"that is the mean distance to all images; take the minimum ({see})")
    raise Hint(f"expected min over images of ‖query − image‖₂, one per query ({see})")
