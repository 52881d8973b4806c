"""Checkers for chapter 6, RealNVP on images (slide EXEMPLE (MNIST)): from integer pixels to a
density. The names follow lecture 06: ``k`` integer pixels, ``v = k + u`` dequantized,
``x = v/256`` in [0, 1), ``y = logit(α + (1 − 2α)x)``.

6.1 dequantization, 6.2 the logit transform and its log-det, 6.3 bits per dimension. The
layers of the image RealNVP (6.4 squeeze, 6.5 the 1×1 convolution, 6.6 the mask-form coupling)
are in :mod:`coursekit.checkers.ch06_layers`.

Self-contained: they use small synthetic 8-bit images from :func:`synthetic_images`, never
the MNIST files.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from coursekit.checkers._answers import as_float, as_pair, as_tensor, fmt, matches
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint
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


def _dequantize_hint(x: Tensor, k: Tensor) -> None:
    """Raise the hint naming the mistake of a dequantization ``x`` of pixels ``k`` that does
    not satisfy ``k ≤ 256·x < k + 1``."""
    if matches(x, k / 256) or matches(x, k / 255):
        raise Hint(
            "no noise added: add u ~ Uniform[0, 1) to each pixel before dividing, or "
            "the model can put infinite density on the 256 levels"
        )
    frac255 = 255 * x - k
    if bool((frac255 >= -1e-6).all() & (frac255 < 1 + 1e-6).all()):
        raise Hint("divide by 256, the number of levels, not 255: (255 + u)/256 stays below 1")
    frac = 256 * x - k
    if float(frac.min()) < -1e-6 and float(frac.max()) > 1 + 1e-6:
        raise Hint(
            "u must be uniform on [0, 1) (torch.rand), not Gaussian (torch.randn): Gaussian "
            "noise leaves the pixel's cell [k, k + 1), so floor(256·x) no longer gives k back "
            "and the bound E_u[log p(k + u)] ≤ log P(k) no longer holds"
        )
    shift = x - k / 256
    if bool((shift >= -1e-6).all() & (shift < 1 + 1e-6).all()):
        raise Hint("divide the noise by 256 too: x = (k + u)/256, not k/256 + u")
    raise Hint(
        f"values of 256·x − k should lie in [0, 1), got [{fmt(float(frac.min()))}, "
        f"{fmt(float(frac.max()))}]: x = (k + u)/256 with u ~ Uniform[0, 1)"
    )


@checker("6.1", "uniform dequantization")
def check_dequantize(fn: Callable) -> str:
    """``fn(k, generator)``: uint8 images -> ``x = (k + u)/256``, ``u ~ U[0, 1)`` drawn with
    ``generator``; any floating dtype (the text fixes none)."""
    k = synthetic_images(32)
    out = call(fn, k.clone(), torch.Generator().manual_seed(0))
    if isinstance(out, Tensor) and not out.is_floating_point():
        raise Hint(f"return a floating-point tensor, got dtype {out.dtype} (use k.float())")
    x = as_tensor(out, tuple(k.shape), "your dequantize")
    kf = k.double()
    frac = 256 * x - kf
    # float32 rounding of (k + u)/256 may land a hair outside the cell: allow 1e-4 of it
    if not bool((frac >= -1e-4).all() & (frac < 1 + 1e-4).all()):
        _dequantize_hint(x, kf)
    if matches(x, kf / 256):
        _dequantize_hint(x, kf)
    again = as_tensor(
        call(fn, k.clone(), torch.Generator().manual_seed(0)), tuple(k.shape), "your dequantize"
    )
    if not torch.equal(x, again):
        raise Hint("not reproducible: draw u with torch.rand(..., generator=generator)")
    mean, std = float(frac.mean()), float(frac.std())
    if abs(mean - 0.5) > 0.05 or abs(std - math.sqrt(1 / 12)) > 0.03:
        raise Hint(
            f"the noise u = 256·x − k should be uniform on [0, 1) (mean 0.5, std 0.289): its "
            f"mean is {fmt(mean)} and its std {fmt(std)}"
        )
    return "x = (k + u)/256 in [0, 1), reproducible, and floor(256·x) = k."


def _logit_ref(x: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """The reference answer: the library's :class:`~coursekit.flows.preprocessing.Logit`."""
    return Logit(alpha)._forward(x)


@checker("6.2", "logit transform and its log-det")
def check_logit_transform(fn: Callable) -> str:
    """``fn(x, alpha) -> (y, log_det)``, ``y = logit(α + (1 − 2α) x)``, log_det (batch,)."""
    g = torch.Generator().manual_seed(1)
    x = (
        synthetic_images(8).double() + torch.rand(8, 1, 8, 8, generator=g, dtype=torch.float64)
    ) / 256
    for alpha in (0.05, 1e-3):
        y, ld = as_pair(call(fn, x.clone(), alpha), "your logit_transform")
        y = as_tensor(y, tuple(x.shape), "y")
        if isinstance(ld, Tensor) and ld.shape == x.shape:
            raise Hint("log_det has one value per pixel: sum it over each image, shape (batch,)")
        ld = as_tensor(ld, (x.shape[0],), "log_det")
        y_ref, ld_ref = _logit_ref(x, alpha)
        p = alpha + (1 - 2 * alpha) * x
        n_dims = x[0].numel()
        if not matches(y, y_ref):
            if matches(y, torch.logit(x)):
                raise Hint(
                    "squeeze x into [α, 1 − α] first, p = α + (1 − 2α)·x, so that pixels "
                    "near 0 or 1 do not map to ±∞"
                )
            if matches(y, torch.log(p)) or matches(y, torch.log(p) + torch.log1p(-p)):
                raise Hint("y = logit(p) = log p − log(1 − p): a difference of logs")
            raise Hint("y is wrong: y = log p − log(1 − p) with p = α + (1 − 2α)·x")
        if matches(ld, ld_ref):
            continue
        off = n_dims * math.log(1 - 2 * alpha)
        per_pixel = (math.log(1 - 2 * alpha) - torch.log(p) - torch.log1p(-p)).flatten(1)
        variants = (
            (
                ld_ref - off,
                f"off by D·log(1 − 2α) = {off:.3f}: the affine step p = α + (1 − 2α)·x "
                "has its own Jacobian factor (1 − 2α) per pixel",
            ),
            (
                -ld_ref,
                "wrong sign of the log-det: dy/dx = (1 − 2α)/(p(1 − p)) > 1, so the "
                "log-det is positive",
            ),
            (per_pixel.mean(1), "sum the per-pixel log-derivatives over the pixels, not mean"),
            (
                ld_ref + off,
                "the factor (1 − 2α) multiplies dy/dx, so its log is added once per pixel "
                "(you counted it twice)",
            ),
        )
        for value, hint in variants:
            if matches(ld, value):
                raise Hint(hint)
        raise Hint(
            "log_det is wrong: the derivative of y with respect to x is "
            "(1 − 2α)/(p(1 − p)) per pixel; sum its log over the pixels"
        )
    return "y and log|det| = Σ [log(1 − 2α) − log p − log(1 − p)] are right."


@checker("6.3", "bits per dimension")
def check_bits_per_dim(fn: Callable) -> str:
    """``fn(log_px, num_dims)``: mean bits/dim of the dequantized images v = 256·x from
    log-densities log p(x) (nats) on [0, 1)^D."""
    cases = ((torch.tensor([280.0, 305.0, 262.0], dtype=torch.float64), 64), (None, 784))
    for lp, d in cases:
        if lp is None:  # MNIST-sized: log p(x) around +2,900 nats
            lp = torch.tensor([2890.0, 3105.5, 2760.25, 3001.0], dtype=torch.float64)
        got = as_float(call(fn, lp.clone(), d), "your bits/dim")
        want = float(bits_per_dim(lp, d, levels=256))  # the library's formula, every term
        if matches(got, want):
            continue
        nats = want * math.log(2)
        variants = (
            (
                want - 8.0,
                "off by exactly 8: the density on [0, 1)^D must be converted to the 8-bit "
                "scale v = 256·x in [0, 256)^D, which subtracts D·log 256 from log p",
            ),
            (
                want - 16.0,
                "off by −8 bits: the rescaling v = 256·x spreads the density over a 256^D times "
                "larger volume, so log p(v) = log p(x) − D·log 256 (you added D·log 256)",
            ),
            ((want - 8.0) * math.log(2), "these are nats: divide by ln 2 to get bits"),
            (nats, "these are nats: divide by ln 2 to get bits"),
            (-want, "sign: bits/dim = −log2 p(v) / D is positive for a good model"),
            ((want - 8.0) * d + 8, f"divide by the number of dimensions D = {d}"),
            (want * d, f"divide by the number of dimensions D = {d}"),
        )
        for value, hint in variants:
            if matches(got, value):
                raise Hint(hint)
        raise Hint(f"got {fmt(got)} for D = {d}; bits/dim = −(mean log p(x) − D·log 256)/(D·ln 2)")
    return "−mean(log p(x) − D·log 256)/(D·ln 2): the scaling alone is worth 8 bits/dim."
