"""Checkers for chapter 6, the layers of the image RealNVP and Glow (slide EXEMPLE (MNIST);
Dinh et al., 2017; Kingma & Dhariwal, 2018): 6.4 squeeze, 6.5 the invertible 1×1 convolution
and its log-det, 6.6 a coupling in the RealNVP paper's mask form
``z = b⊙x + (1 − b)⊙(x⊙exp(s(b⊙x)) + t(b⊙x))`` for any binary mask ``b``.

The squeeze may order the 4 values of each 2×2 block in any fixed way (the text says so): every
such order is a valid squeeze as long as ``unsqueeze`` inverts it. Nothing in chapters 6–8
depends on the student's order.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from coursekit.checkers._answers import as_pair, as_tensor, matches
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint


@checker("6.4", "squeeze and unsqueeze")
def check_squeeze(squeeze: Callable, unsqueeze: Callable) -> str:
    """``squeeze``: (B, C, H, W) -> (B, 4C, H/2, W/2), each output position (i, j) holding the
    4C values of the input block rows 2i:2i+2, columns 2j:2j+2 (in any order);
    ``unsqueeze`` inverts it exactly."""
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float64).reshape(2, 3, 4, 6)
    y = as_tensor(call(squeeze, x.clone()), (2, 12, 2, 3), "your squeeze")
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
    back = as_tensor(call(unsqueeze, y.clone()), tuple(x.shape), "your unsqueeze")
    if not torch.equal(back, x):
        raise Hint(
            "unsqueeze(squeeze(x)) does not give back x: undo the same permutes in reverse order"
        )
    return "2×2 blocks become channels (no pixel moves far) and unsqueeze inverts it exactly."


# --------------------------------------------------------------------------------------------
# 6.5: the invertible 1×1 convolution
# --------------------------------------------------------------------------------------------


def conv1x1_reference(x: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """``z[:, i] = Σ_j W[i, j] x[:, j]`` at every pixel; the Jacobian is block-diagonal with
    ``H·W`` copies of ``W``: ``log|det| = H·W·log|det W|`` per sample, shape (B,)."""
    z = torch.einsum("ij,bjhw->bihw", weight, x)
    h, w = x.shape[2], x.shape[3]
    log_det = h * w * torch.linalg.slogdet(weight).logabsdet
    return z, log_det.expand(x.shape[0]).clone()


def _weights(seed: int) -> list[Tensor]:
    """Three C×C weights: a rotation-like one (det > 0), one with det < 0, one far from
    triangular with |det| ≠ 1."""
    g = torch.Generator().manual_seed(seed)
    q = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64)).Q
    if float(torch.linalg.det(q)) < 0:
        q = -q  # det +1 for C = 3
    w_neg = torch.randn(4, 4, generator=g, dtype=torch.float64)
    if float(torch.linalg.det(w_neg)) > 0:
        w_neg[0] = -w_neg[0]
    w_big = 1.3 * torch.randn(3, 3, generator=g, dtype=torch.float64) + torch.eye(
        3, dtype=torch.float64
    )
    if float(torch.linalg.det(w_big)) < 0:
        w_big[0] = -w_big[0]
    return [q @ torch.diag(torch.tensor([1.5, 0.8, 1.2], dtype=torch.float64)), w_neg, w_big]


@checker("6.5", "the invertible 1×1 convolution and its log-det")
def check_conv1x1(fn: Callable) -> str:
    """``fn(x, weight) -> (z, log_det)`` with :func:`conv1x1_reference`; x (B, C, H, W),
    weight (C, C), log_det (B,)."""
    g = torch.Generator().manual_seed(65)
    for weight in _weights(6):
        c = weight.shape[0]
        x = torch.randn(5, c, 4, 6, generator=g, dtype=torch.float64)
        z, log_det = as_pair(call(fn, x.clone(), weight.clone()), "your 1×1 convolution")
        z = as_tensor(z, tuple(x.shape), "z")
        want_z, want_ld = conv1x1_reference(x, weight)
        if not matches(z, want_z):
            if matches(z, torch.einsum("ji,bjhw->bihw", weight, x)):
                raise Hint(
                    "you applied the transpose of W: output channel i is Σ_j W[i, j]·x[:, j] "
                    "(F.conv2d(x, W[:, :, None, None]) or torch.einsum('ij,bjhw->bihw', W, x))"
                )
            raise Hint(
                "z is wrong: at every pixel the C channels are mixed by W, "
                "z[:, i, h, w] = Σ_j W[i, j]·x[:, j, h, w]"
            )
        if isinstance(log_det, Tensor) and log_det.numel() == 1:
            raise Hint(f"log_det needs one value per sample, shape ({x.shape[0]},)")
        log_det = as_tensor(log_det, (x.shape[0],), "log_det")
        if matches(log_det, want_ld):
            continue
        if not bool(torch.isfinite(log_det).all()):
            raise Hint(
                "log_det is NaN: this W has a negative determinant, and log of a negative "
                "number is NaN — the change of variable needs log|det W| "
                "(torch.linalg.slogdet(W).logabsdet)"
            )
        hw = x.shape[2] * x.shape[3]
        per_pixel = want_ld / hw
        diag = hw * torch.log(torch.diagonal(weight).abs()).sum()
        variants = (
            (
                per_pixel,
                f"the factor H·W = {hw} is missing: the same W mixes the channels at each of "
                "the H·W pixels, so the Jacobian is block-diagonal with H·W copies of W",
            ),
            (
                per_pixel * x[0].numel(),
                "the Jacobian has H·W blocks W (one per pixel), not C·H·W: "
                "log|det| = H·W·log|det W|",
            ),
            (-want_ld, "sign: z = W x multiplies volumes by |det W| at each pixel"),
            (
                diag.expand(x.shape[0]),
                "the sum of log|W_ii| is the log-det of a triangular matrix only; this W is "
                "full: use log|det W| (torch.linalg.slogdet)",
            ),
        )
        for value, hint in variants:
            if matches(log_det, value):
                raise Hint(hint)
        raise Hint("log_det is wrong for this W: each of the H·W pixels contributes log|det W|")
    return "z = W x at every pixel, log|det| = H·W·log|det W| — also when det W < 0."


# --------------------------------------------------------------------------------------------
# 6.6: a coupling in the mask form, for any binary mask
# --------------------------------------------------------------------------------------------


class RandomConditioner:
    """A fixed random convolutional conditioner ``h -> (s, t)``, each of the shape of ``h``
    (B, C, H, W); s = 0.8·tanh(·) is non-zero on every pixel, kept ones included."""

    def __init__(self, channels: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.w1 = 0.5 * torch.randn(8, channels, 3, 3, generator=g, dtype=torch.float64)
        self.w2 = 0.4 * torch.randn(2 * channels, 8, 3, 3, generator=g, dtype=torch.float64)
        self.bias = 0.3 * torch.randn(2 * channels, 1, 1, generator=g, dtype=torch.float64)

    def __call__(self, h: Tensor) -> tuple[Tensor, Tensor]:
        hidden = torch.tanh(F.conv2d(h, self.w1, padding=1))
        s_hat, t = (F.conv2d(hidden, self.w2, padding=1) + self.bias).chunk(2, dim=1)
        return 0.8 * torch.tanh(s_hat), t


def mask_coupling_reference(x: Tensor, b: Tensor, conditioner: Callable) -> tuple[Tensor, Tensor]:
    """``z = b⊙x + (1 − b)⊙(x⊙exp(s) + t)`` with ``(s, t) = conditioner(b⊙x)``;
    ``log|det| = Σ (1 − b)⊙s`` per sample."""
    s, t = conditioner(b * x)
    z = b * x + (1 - b) * (x * torch.exp(s) + t)
    return z, ((1 - b) * s).flatten(1).sum(1)


def mask_coupling_inverse_reference(
    z: Tensor, b: Tensor, conditioner: Callable
) -> tuple[Tensor, Tensor]:
    """``x = b⊙z + (1 − b)⊙((z − t)⊙exp(−s))`` with ``(s, t) = conditioner(b⊙z)`` (= the
    forward's, since ``b⊙z = b⊙x``); ``log|det| = −Σ (1 − b)⊙s``."""
    s, t = conditioner(b * z)
    x = b * z + (1 - b) * (z - t) * torch.exp(-s)
    return x, -((1 - b) * s).flatten(1).sum(1)


def _masks() -> list[Tensor]:
    """A checkerboard (1 channel) and a random, non-contiguous mask over 2 channels."""
    i, j = torch.arange(6).view(-1, 1), torch.arange(6).view(1, -1)
    board = ((i + j) % 2).double().view(1, 1, 6, 6)
    g = torch.Generator().manual_seed(66)
    scattered = (torch.rand(1, 2, 6, 6, generator=g) < 0.5).double()
    return [board, scattered]


@checker("6.6", "a coupling in the mask form, for any mask")
def check_mask_coupling(forward: Callable, inverse: Callable) -> str:
    """``forward(x, b, conditioner)`` and ``inverse(z, b, conditioner)`` against
    :func:`mask_coupling_reference` and :func:`mask_coupling_inverse_reference`, for a
    checkerboard and a random mask (1 = kept)."""
    g = torch.Generator().manual_seed(6)
    for b, seed in zip(_masks(), (1, 2), strict=True):
        cond = RandomConditioner(b.shape[1], seed)
        x = torch.randn(4, b.shape[1], 6, 6, generator=g, dtype=torch.float64)
        z, ld = as_pair(call(forward, x.clone(), b.clone(), cond), "your forward")
        z = as_tensor(z, tuple(x.shape), "z")
        want_z, want_ld = mask_coupling_reference(x, b, cond)
        kept = b.expand_as(x).bool()
        if not matches(z, want_z):
            if not matches(z[kept], x[kept]):
                if matches(z, mask_coupling_reference(x, 1 - b, cond)[0]):
                    raise Hint("b = 1 marks the KEPT pixels: those are copied, 1 − b changes")
                raise Hint(
                    "the kept pixels (b = 1) must be copied unchanged: multiply s and t by "
                    "(1 − b), z = b⊙x + (1 − b)⊙(x⊙exp(s) + t)"
                )
            s_all, t_all = cond(x)
            if matches(z, b * x + (1 - b) * (x * torch.exp(s_all) + t_all)):
                raise Hint(
                    "the conditioner must see only the kept pixels, conditioner(b⊙x): fed all "
                    "of x, s and t depend on the pixels they change, and the inverse could not "
                    "recompute them"
                )
            raise Hint("z is wrong: z = b⊙x + (1 − b)⊙(x⊙exp(s) + t), (s, t) = conditioner(b⊙x)")
        ld = as_tensor(ld, (x.shape[0],), "log_det")
        if not matches(ld, want_ld):
            s, _ = cond(b * x)
            if matches(ld, s.flatten(1).sum(1)):
                raise Hint(
                    "sum s over the CHANGED pixels only, Σ (1 − b)⊙s: the kept pixels are "
                    "copied, their derivative is 1"
                )
            if matches(ld, -want_ld):
                raise Hint("sign: the forward multiplies by exp(s), so log|det| = +Σ (1 − b)⊙s")
            raise Hint("log_det should be Σ (1 − b)⊙s per sample, shape (batch,)")
        x_back, ld_back = as_pair(call(inverse, want_z.clone(), b.clone(), cond), "your inverse")
        x_back = as_tensor(x_back, tuple(x.shape), "the inverse's x")
        if not matches(x_back, x, rtol=1e-9):
            s, t = cond(b * x)
            wrong = {
                "exp": b * want_z + (1 - b) * (want_z - t) * torch.exp(s),
                "order": b * want_z + (1 - b) * (want_z * torch.exp(-s) - t),
            }
            if matches(x_back, wrong["exp"]):
                raise Hint("the inverse divides by exp(s): (z − t)⊙exp(−s), not ⊙exp(s)")
            if matches(x_back, wrong["order"]):
                raise Hint("undo in reverse order: first subtract t, then divide by exp(s)")
            s_z, t_z = cond(want_z)
            if matches(x_back, b * want_z + (1 - b) * (want_z - t_z) * torch.exp(-s_z)):
                raise Hint(
                    "feed the conditioner b⊙z (= b⊙x, known in both directions), not all of z"
                )
            raise Hint(
                "inverse(forward(x)) is not x: x = b⊙z + (1 − b)⊙((z − t)⊙exp(−s)), "
                "(s, t) = conditioner(b⊙z)"
            )
        ld_back = as_tensor(ld_back, (x.shape[0],), "the inverse's log_det")
        if not matches(ld_back, -want_ld):
            if matches(ld_back, want_ld):
                raise Hint("the inverse's log-det is minus the forward one: −Σ (1 − b)⊙s")
            raise Hint("the inverse's log_det should be −Σ (1 − b)⊙s per sample")
    return (
        "b⊙x + (1 − b)⊙(x⊙exp(s) + t) with s, t from b⊙x: invertible for any mask, even a "
        "scattered one, because b⊙z = b⊙x."
    )
