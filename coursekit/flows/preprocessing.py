"""Image preprocessing as bijections, and bits per dimension that counts every Jacobian.

MNIST pixels are integers ``k ∈ {0, …, 255}``: a continuous density on them would be
degenerate, so they are **dequantized**, ``v = k + u`` with ``u ~ U[0, 1)^D``: ``v`` lives in
``[0, 256)^D``, and maximising ``log p(v)`` maximises a lower bound on the log-probability of
the discrete image (Theis et al., 2016). Then, as bijections (direction data → noise, each
returning its ``log|det ∂out/∂in|`` of shape ``(batch,)``):

* :class:`UnitScale`: ``x = v / 256`` in ``[0, 1)^D``; ``log|det| = −D log 256``.
* :class:`Logit`: ``y = logit(α + (1 − 2α) x)``; with ``p = α + (1 − 2α) x``,
  ``log|det| = Σ_j [log(1 − 2α) − log p_j − log(1 − p_j)]``. The ``α`` keeps ``y`` finite
  at ``x = 0`` (black background) and ``x → 1``.

The density of the dequantized data in ``[0, 256)^D`` is therefore
``log p(v) = log p_Z(z) + log|det J_core(y)| + log|det J_logit(x)| − D log 256`` and
``bits/dim = −log p(v) / (D ln 2)`` — the number every paper reports for MNIST.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from coursekit._validation import (
    check_float_dtype,
    check_generator,
    check_positive_float,
    check_positive_int,
    check_unit_interval,
)
from coursekit.flows.base import Bijection, check_input
from coursekit.metrics import bits_per_dim

LEVELS = 256


def dequantize(
    images: Tensor,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Uniform dequantization ``v = k + u``, ``u ~ U[0, 1)`` i.i.d.; same shape as ``images``.

    Args:
        images: integer pixel values ``k ∈ {0, …, 255}`` (uint8 or any dtype holding integers).
        generator: random generator for ``u`` (must live on ``images``' device).
        dtype: floating dtype of the result.
    """
    if not isinstance(images, Tensor):
        raise ValueError(f"images: expected a torch.Tensor, got {type(images).__name__}")
    dtype = check_float_dtype(dtype, "dtype")
    check_generator(generator, "generator")
    if images.is_complex():
        raise ValueError(f"images: expected integer pixel values, got dtype {images.dtype}")
    k = images.to(dtype)
    if k.numel() and (bool((k < 0).any()) or bool((k > LEVELS - 1).any())):
        raise ValueError(
            f"images: expected pixel values in 0..{LEVELS - 1}, got values in "
            f"[{float(k.min()):g}, {float(k.max()):g}]"
        )
    if not bool((k == k.round()).all()):
        raise ValueError("images: expected integer pixel values (dequantize adds the noise)")
    u = torch.rand(k.shape, generator=generator, dtype=dtype, device=k.device)
    v = k + u
    # k + u can round up to k + 1 (always possible in float16, rarely in float32): keep every
    # value in [k, k + 1), the largest representable value below k + 1 replacing k + 1
    return torch.where(v < k + 1, v, torch.nextafter(k + 1, k))


class UnitScale(Bijection):
    """``x = v / levels`` (e.g. ``[0, 256) → [0, 1)``); ``log|det ∂x/∂v| = −D log(levels)``."""

    def __init__(self, levels: float = LEVELS):
        super().__init__()
        self.levels = check_positive_float(levels, "levels")

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        d = math.prod(x.shape[1:])
        return x / self.levels, x.new_full((x.shape[0],), -d * math.log(self.levels))

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        d = math.prod(z.shape[1:])
        return z * self.levels, z.new_full((z.shape[0],), d * math.log(self.levels))

    def extra_repr(self) -> str:
        return f"levels={self.levels:g}"


class Logit(Bijection):
    """``y = logit(α + (1 − 2α) x)`` for ``x`` in ``[0, 1]``, any shape ``(batch, …)``.

    ``log|det ∂y/∂x| = Σ_j [log(1 − 2α) − log p_j − log(1 − p_j)]`` with
    ``p = α + (1 − 2α) x``. The inverse is ``x = (σ(y) − α) / (1 − 2α)``.

    Args:
        alpha: ``α`` in ``(0, 0.5)``; RealNVP uses 0.05 on images.
    """

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        alpha = check_positive_float(alpha, "alpha")
        if not alpha < 0.5:
            raise ValueError(f"alpha: expected a number in (0, 0.5), got {alpha!r}")
        self.alpha = alpha

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        a = self.alpha
        p = a + (1 - 2 * a) * x
        y = torch.log(p) - torch.log1p(-p)
        log_det = (math.log(1 - 2 * a) - torch.log(p) - torch.log1p(-p)).flatten(1).sum(1)
        return y, log_det

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        a = self.alpha
        x = (torch.sigmoid(z) - a) / (1 - 2 * a)
        # log σ(z) + log(1 − σ(z)) = −softplus(−z) − softplus(z)
        log_det = (
            -torch.nn.functional.softplus(-z)
            - torch.nn.functional.softplus(z)
            - math.log(1 - 2 * a)
        )
        return x, log_det.flatten(1).sum(1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` in ``[0, 1]`` -> ``(logit(α + (1 − 2α) x), log|det|)``."""
        x = check_input(self, x, "x", self.event_shape)
        check_unit_interval(x, "x", "scale the pixels first")
        return self._forward(x)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}"


def bits_per_dim_from_unit_log_prob(
    log_prob_unit: Tensor, num_dims: int, levels: float = LEVELS
) -> Tensor:
    """:func:`coursekit.metrics.bits_per_dim` with ``levels = 256``: bits/dim of dequantized
    8-bit data from log-densities of ``x = v / 256`` in ``[0, 1)^D``; a scalar tensor."""
    return bits_per_dim(log_prob_unit, num_dims, levels=levels)


class DequantizedImages:
    """A sampler of dequantized, scaled training images for :func:`coursekit.training.fit`.

    ``sample(n, generator)`` draws ``n`` images ``k`` with replacement, dequantizes them
    (``v = k + u``) and returns ``x = v / levels`` in ``[0, 1)``, shape ``(n, C, H, W)``;
    both the indices and the noise come from ``generator``.

    Args:
        images: (N, C, H, W) integer pixel values 0..levels−1 (uint8).
        levels: number of pixel levels.
    """

    def __init__(self, images: Tensor, levels: float = LEVELS):
        if not isinstance(images, Tensor) or images.dim() < 2 or images.shape[0] == 0:
            raise ValueError(
                "images: expected a non-empty tensor (N, C, H, W) of integer pixel values"
            )
        self.images = images
        self.levels = check_positive_float(levels, "levels")

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` dequantized images scaled to ``[0, 1)``, shape (n, C, H, W)."""
        n = check_positive_int(n, "n")
        idx = torch.randint(0, self.images.shape[0], (n,), generator=generator)
        return dequantize(self.images[idx], generator=generator) / self.levels


@torch.no_grad()
def image_bits_per_dim(
    model: nn.Module,
    images: Tensor,
    batch_size: int = 500,
    generator: torch.Generator | None = None,
    levels: float = LEVELS,
) -> float:
    """Test bits/dim of a flow on integer images, counting every term.

    Each image ``k`` is dequantized (``v = k + u``), scaled to ``x = v / levels`` and scored
    with ``model.log_prob(x)`` (the density on ``[0, 1)^D``, which for
    :class:`~coursekit.flows.image.ImageRealNVP` already includes the logit Jacobian);
    :func:`coursekit.metrics.bits_per_dim` adds the scaling's ``−D log(levels)``.

    Args:
        model: a flow with ``log_prob`` on images scaled to ``[0, 1)``.
        images: (n, C, H, W) integer pixel values 0..levels−1 (uint8 or float).
        batch_size: images per forward pass.
        generator: random generator for the dequantization noise (fixed seed = repeatable).
        levels: number of pixel levels (256 for 8-bit images).
    """
    if not isinstance(images, Tensor) or images.dim() < 2 or images.shape[0] == 0:
        raise ValueError(
            "images: expected a non-empty tensor (n, C, H, W) of integer pixel values, got "
            f"{type(images).__name__}{tuple(images.shape) if isinstance(images, Tensor) else ''}"
        )
    batch_size = check_positive_int(batch_size, "batch_size")
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, images.shape[0], batch_size):
        k = images[start : start + batch_size]
        v = dequantize(k, generator=generator, dtype=torch.float64).to(dtype)
        x = (v / levels).to(device)
        total += float(model.log_prob(x).double().sum())
    model.train(was_training)
    mean_log_prob = torch.tensor(total / images.shape[0], dtype=torch.float64)
    return float(bits_per_dim(mean_log_prob, images[0].numel(), levels=levels))
