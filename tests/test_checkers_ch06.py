"""Chapter 6 checkers: for each exercise a table of correct-but-different answers that must pass
(float32 constants and dtypes, numpy where allowed, another valid order) and of typical wrong
answers, each rejected with a hint naming that mistake (one printed line, no traceback)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _checker_runs import accepts, rejects

import coursekit.checkers as ck
from coursekit.checkers import _common
from coursekit.checkers.ch06_layers import RandomConditioner, mask_coupling_reference

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_chapter_6_exercises():
    assert _common.chapter_exercises(6) == ["6.1", "6.2", "6.3", "6.4", "6.5", "6.6"]


def _table(checker, right, wrong, exercise):
    """Two parametrised tests: every answer of ``right`` passes, every one of ``wrong``
    (answer, hint) is rejected with its hint."""

    @pytest.mark.parametrize("name", list(right))
    def test_right(capsys, name):
        answer = right[name]
        accepts(
            capsys,
            checker,
            *(answer if isinstance(answer, tuple) else (answer,)),
            exercise=exercise,
        )

    @pytest.mark.parametrize("name", list(wrong))
    def test_wrong(capsys, name):
        *answer, hint = wrong[name]
        rejects(capsys, checker, *answer, hint=hint, exercise=exercise)

    return test_right, test_wrong


# ---------------------------------------------------------------- 6.1 dequantization

DEQUANTIZE_RIGHT = {
    "float32": lambda k, g: (k.float() + torch.rand(k.shape, generator=g)) / 256,
    "float64": lambda k, g: (
        (k.double() + torch.rand(k.shape, generator=g, dtype=torch.float64)) / 256
    ),
    "rand_like then divide": lambda k, g: k / 256 + torch.rand(k.shape, generator=g) / 256,
}
DEQUANTIZE_WRONG = {
    "no noise": (lambda k, g: k.float() / 256, "no noise"),
    "divide by 255": (
        lambda k, g: (k.float() + torch.rand(k.shape, generator=g)) / 255,
        "not 255",
    ),
    "Gaussian noise": (
        lambda k, g: (k.float() + torch.randn(k.shape, generator=g)) / 256,
        "not Gaussian",
    ),
    "generator ignored": (lambda k, g: (k.float() + torch.rand(k.shape)) / 256, "reproducible"),
    "noise not divided": (
        lambda k, g: k.float() / 256 + torch.rand(k.shape, generator=g),
        "divide the noise by 256 too",
    ),
    "noise on [0, 0.5)": (
        lambda k, g: (k.float() + 0.5 * torch.rand(k.shape, generator=g)) / 256,
        "uniform on [0, 1)",
    ),
    "integer result": (lambda k, g: k.long(), "floating-point"),
}
test_6_1_right, test_6_1_wrong = _table(
    ck.check_dequantize, DEQUANTIZE_RIGHT, DEQUANTIZE_WRONG, "6.1"
)


# ---------------------------------------------------------------- 6.2 logit


def _logit(x, alpha, mode="ok"):
    p = alpha + (1 - 2 * alpha) * x
    y = torch.log(p) - torch.log1p(-p)
    per_pixel = -torch.log(p) - torch.log1p(-p)
    if mode != "noscale":
        per_pixel = per_pixel + torch.log(torch.tensor(1 - 2 * alpha))  # a float32 constant
    if mode == "nosum":
        return y, per_pixel
    if mode == "mean":
        return y, per_pixel.flatten(1).mean(1)
    ld = per_pixel.flatten(1).sum(1)
    return y, (-ld if mode == "sign" else ld)


LOGIT_RIGHT = {
    "float32 constant log(1 − 2α)": _logit,
    "torch.logit and the derivative": lambda x, a: (
        torch.logit(a + (1 - 2 * a) * x),
        torch.log((1 - 2 * a) / ((a + (1 - 2 * a) * x) * (1 - a - (1 - 2 * a) * x)))
        .flatten(1)
        .sum(1),
    ),
    "numpy": lambda x, a: tuple(v.numpy() for v in _logit(x, a)),
    "float32 throughout": lambda x, a: tuple(v.float() for v in _logit(x.float(), a)),
}
LOGIT_WRONG = {
    "no (1 − 2α) factor": (lambda x, a: _logit(x, a, "noscale"), "(1 − 2α) per pixel"),
    "sign": (lambda x, a: _logit(x, a, "sign"), "wrong sign"),
    "per pixel": (lambda x, a: _logit(x, a, "nosum"), "one value per pixel"),
    "mean over pixels": (lambda x, a: _logit(x, a, "mean"), "not mean"),
    "no α squeeze": (lambda x, a: (torch.logit(x), _logit(x, a)[1]), "squeeze x into"),
}
test_6_2_right, test_6_2_wrong = _table(ck.check_logit_transform, LOGIT_RIGHT, LOGIT_WRONG, "6.2")


# ---------------------------------------------------------------- 6.3 bits/dim

BPD_RIGHT = {
    "float32 constant D·log 256": lambda lp, d: float(
        -(lp - d * torch.log(torch.tensor(256.0))).mean() / (d * math.log(2))
    ),
    "log2 then + 8": lambda lp, d: -lp.mean().item() / (d * math.log(2)) + 8,
    "numpy": lambda lp, d: np.mean(-(lp.numpy() / np.log(2)) / d + np.log2(256)),
    "0-d tensor": lambda lp, d: -(lp / math.log(2) - d * 8).mean() / d,
}
BPD_WRONG = {
    "no 8-bit scale": (lambda lp, d: float(-lp.mean() / (d * math.log(2))), "off by exactly 8"),
    "scale added": (
        lambda lp, d: float(-(lp + d * math.log(256)).mean() / (d * math.log(2))),
        "off by −8 bits",
    ),
    "nats": (lambda lp, d: float(-lp.mean() / d), "nats"),
    "not per dimension": (
        lambda lp, d: float(-(lp - d * math.log(256)).mean() / math.log(2)),
        "divide by the number of dimensions",
    ),
    "sign": (lambda lp, d: float((lp - d * math.log(256)).mean() / (d * math.log(2))), "sign"),
}
test_6_3_right, test_6_3_wrong = _table(ck.check_bits_per_dim, BPD_RIGHT, BPD_WRONG, "6.3")


# ---------------------------------------------------------------- 6.4 squeeze, any fixed order


def _squeeze(x, order=(0, 1, 3, 5, 2, 4)):
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 2, 2, w // 2, 2).permute(*order).reshape(b, 4 * c, h // 2, w // 2)


def _unsqueeze(y, order=(0, 1, 3, 5, 2, 4)):
    b, c4, h2, w2 = y.shape
    inverse = [order.index(i) for i in range(6)]
    shape = [b, c4 // 4, h2, 2, w2, 2]
    return (
        y.reshape(*[shape[i] for i in order]).permute(*inverse).reshape(b, c4 // 4, 2 * h2, 2 * w2)
    )


def _squeeze_slices(x):  # the lecture's squeeze_by_hand: channel 4c + 2a + b
    return torch.stack([x[:, :, a::2, b::2] for a in (0, 1) for b in (0, 1)], dim=2).flatten(1, 2)


_BLOCK_MAJOR = (0, 3, 5, 1, 2, 4)  # channel (2a + b)·C + c (pixel-unshuffle style)
_COLUMN_FIRST = (0, 1, 5, 3, 2, 4)  # channel 4c + 2b + a
SQUEEZE_RIGHT = {
    "the lecture's order": (_squeeze, _unsqueeze),
    "the lecture's slices": (_squeeze_slices, _unsqueeze),
    "F.pixel_unshuffle": (lambda x: F.pixel_unshuffle(x, 2), lambda y: F.pixel_shuffle(y, 2)),
    "block-major order": (
        lambda x: _squeeze(x, _BLOCK_MAJOR),
        lambda y: _unsqueeze(y, _BLOCK_MAJOR),
    ),
    "column first": (lambda x: _squeeze(x, _COLUMN_FIRST), lambda y: _unsqueeze(y, _COLUMN_FIRST)),
}
SQUEEZE_WRONG = {
    "plain reshape": (
        lambda x: x.reshape(x.shape[0], -1, x.shape[2] // 2, x.shape[3] // 2),
        _unsqueeze,
        "plain reshape",
    ),
    "unsqueeze of another order": (
        _squeeze,
        lambda y: _unsqueeze(y, _COLUMN_FIRST),
        "does not give back x",
    ),
    "unsqueeze by reshape": (
        _squeeze,
        lambda y: y.reshape(y.shape[0], -1, 2 * y.shape[2], 2 * y.shape[3]),
        "does not give back x",
    ),
    "identity": (lambda x: x, _unsqueeze, "returned shape"),
}
test_6_4_right, test_6_4_wrong = _table(ck.check_squeeze, SQUEEZE_RIGHT, SQUEEZE_WRONG, "6.4")


# ---------------------------------------------------------------- 6.5 1×1 convolution


def _conv(x, w, mode="ok"):
    z = (
        torch.einsum("ji,bjhw->bihw", w, x)
        if mode == "transpose"
        else F.conv2d(x, w[:, :, None, None])
    )
    hw = x.shape[2] * x.shape[3]
    if mode == "no_abs":
        ld = hw * torch.log(torch.linalg.det(w))
    elif mode == "no_hw":
        ld = torch.linalg.slogdet(w).logabsdet
    elif mode == "diag":
        ld = hw * torch.log(torch.diagonal(w).abs()).sum()
    elif mode == "chw":
        ld = x[0].numel() * torch.linalg.slogdet(w).logabsdet
    else:
        ld = hw * torch.linalg.slogdet(w).logabsdet
    if mode == "scalar":
        return z, ld
    return z, ld * x.new_ones(x.shape[0])


CONV_RIGHT = {
    "conv2d and slogdet": _conv,
    "einsum and |det|": lambda x, w: (
        torch.einsum("ij,bjhw->bihw", w, x),
        torch.full((x.shape[0],), x.shape[2] * x.shape[3] * float(torch.linalg.det(w).abs().log())),
    ),
    "matmul, float32": lambda x, w: (
        (w.float() @ x.float().flatten(2)).view(x.shape),
        x.shape[2] * x.shape[3] * torch.linalg.slogdet(w.float())[1].expand(x.shape[0]),
    ),
    "numpy": lambda x, w: (
        np.einsum("ij,bjhw->bihw", w.numpy(), x.numpy()),
        np.full(x.shape[0], x.shape[2] * x.shape[3] * np.linalg.slogdet(w.numpy())[1]),
    ),
}
CONV_WRONG = {
    "no H·W": (lambda x, w: _conv(x, w, "no_hw"), "H·W = 24 is missing"),
    "log det without abs": (lambda x, w: _conv(x, w, "no_abs"), "negative determinant"),
    "transpose": (lambda x, w: _conv(x, w, "transpose"), "transpose of W"),
    "diagonal only": (lambda x, w: _conv(x, w, "diag"), "triangular"),
    "C·H·W copies": (lambda x, w: _conv(x, w, "chw"), "not C·H·W"),
    "one number": (lambda x, w: _conv(x, w, "scalar"), "one value per sample"),
}
test_6_5_right, test_6_5_wrong = _table(ck.check_conv1x1, CONV_RIGHT, CONV_WRONG, "6.5")


# ---------------------------------------------------------------- 6.6 mask-form coupling


def _fwd(x, b, cond, mode="ok"):
    s, t = cond(x if mode == "cond_x" else b * x)
    if mode == "unmasked":
        z = x * torch.exp(s) + t
    elif mode == "swapped":
        s, t = cond((1 - b) * x)
        z = (1 - b) * x + b * (x * torch.exp(s) + t)
    else:
        z = b * x + (1 - b) * (x * torch.exp(s) + t)
    ld = s.flatten(1).sum(1) if mode == "all_s" else ((1 - b) * s).flatten(1).sum(1)
    return z, ld


def _inv(z, b, cond, mode="ok"):
    s, t = cond(z if mode == "cond_z" else b * z)
    if mode == "exp_plus":
        x = b * z + (1 - b) * (z - t) * torch.exp(s)
    elif mode == "order":
        x = b * z + (1 - b) * (z * torch.exp(-s) - t)
    else:
        x = b * z + (1 - b) * (z - t) * torch.exp(-s)
    ld = ((1 - b) * s).flatten(1).sum(1)
    return x, (ld if mode == "ld_sign" else -ld)


def _fwd_where(x, b, cond):
    kept = b.bool().expand_as(x)
    s, t = cond(torch.where(kept, x, torch.zeros_like(x)))
    z = torch.where(kept, x, x * s.exp() + t)
    return z, torch.where(kept, torch.zeros_like(s), s).sum(dim=(1, 2, 3))


def _inv_where(z, b, cond):
    kept = b.bool().expand_as(z)
    s, t = cond(torch.where(kept, z, torch.zeros_like(z)))
    x = torch.where(kept, z, (z - t) / s.exp())
    return x, -torch.where(kept, torch.zeros_like(s), s).sum(dim=(1, 2, 3))


MASK_RIGHT = {
    "the paper's form": (_fwd, _inv),
    "torch.where": (_fwd_where, _inv_where),
    "float32 conditioner output": (
        lambda x, b, c: tuple(v.float() for v in _fwd(x, b, c)),
        lambda z, b, c: _inv(z, b, c),
    ),
}
MASK_WRONG = {
    "log-det over all pixels": (lambda *a: _fwd(*a, mode="all_s"), _inv, "CHANGED pixels only"),
    "conditioner sees x": (lambda *a: _fwd(*a, mode="cond_x"), _inv, "only the kept pixels"),
    "kept pixels changed": (lambda *a: _fwd(*a, mode="unmasked"), _inv, "copied unchanged"),
    "b = 1 changed": (lambda *a: _fwd(*a, mode="swapped"), _inv, "b = 1 marks the KEPT"),
    "inverse multiplies by exp(s)": (_fwd, lambda *a: _inv(*a, mode="exp_plus"), "exp(−s)"),
    "inverse in the wrong order": (_fwd, lambda *a: _inv(*a, mode="order"), "reverse order"),
    "inverse's conditioner sees z": (_fwd, lambda *a: _inv(*a, mode="cond_z"), "b⊙z"),
    "inverse log-det sign": (_fwd, lambda *a: _inv(*a, mode="ld_sign"), "minus the forward"),
}
test_6_6_right, test_6_6_wrong = _table(ck.check_mask_coupling, MASK_RIGHT, MASK_WRONG, "6.6")


def test_6_6_random_conditioner_changes_kept_pixels_too():
    x = torch.randn(2, 1, 6, 6, dtype=torch.float64)
    b = torch.ones(1, 1, 6, 6, dtype=torch.float64)
    b[..., ::2] = 0
    s, _ = RandomConditioner(1, 0)(b * x)
    assert float(s[b.expand_as(s).bool()].abs().min()) > 0  # an unmasked log-det is caught
    z, _ = mask_coupling_reference(x, b, RandomConditioner(1, 0))
    assert torch.equal(z * b, x * b)
