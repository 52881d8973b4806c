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
import numbers

import torch
from torch import Tensor, nn

from coursekit._validation import (
    check_float_dtype,
    check_generator,
    check_positive_float,
    check_positive_int,
    check_unit_interval,
    validation_enabled,
)
from coursekit.flows.base import Bijection, check_input
from coursekit.metrics import bits_per_dim

LEVELS = 256


def check_levels(value: object, name: str = "levels") -> int:
    """The number of pixel levels as an ``int`` ≥ 2 (256 for 8-bit images).

    An integral float (``256.0``, as older configs store it) is accepted; ``1.5`` or ``1``
    raise ``ValueError`` and a non-number ``TypeError``, both naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name}: expected an integer number of pixel levels (256 for 8-bit images), "
            f"got {type(value).__name__} {value!r}"
        )
    if not isinstance(value, numbers.Integral) and not float(value).is_integer():
        raise ValueError(
            f"{name}: expected an integer number of pixel levels (256 for 8-bit images), "
            f"got {value!r}"
        )
    if value < 2:
        raise ValueError(
            f"{name}: expected at least 2 pixel levels (pixels k in 0..levels−1 are scaled by "
            f"levels − 1 and dequantized into levels cells), got {value!r}"
        )
    return int(value)


def check_pixel_images(
    images: object,
    levels: int = LEVELS,
    name: str = "images",
    event_shape: tuple[int, ...] | None = None,
    batch: bool = True,
) -> Tensor:
    """The one check of integer images ``k``, not yet dequantized; returns ``images``.

    Structure (always): a real, non-boolean tensor; with ``batch``, a non-empty batch
    ``(n, …)`` of at least 2 dimensions; with ``event_shape``, of shape ``(n, *event_shape)``.
    Values (while the value checks are on, :func:`coursekit.set_validation`): integers in
    ``0..levels−1``, so images scaled to ``[0, 1]`` or already dequantized are refused instead
    of giving a finite, wrong log-density. Raises ``ValueError`` naming ``name``.
    """
    levels = check_levels(levels)
    wanted = "(n, C, H, W)" if event_shape is None else f"(n, {', '.join(map(str, event_shape))})"
    if not isinstance(images, Tensor):
        raise ValueError(
            f"{name}: expected a torch.Tensor {wanted} of integer pixel values, got "
            f"{type(images).__name__}"
        )
    if images.is_complex() or images.dtype == torch.bool:
        raise ValueError(f"{name}: expected integer pixel values, got dtype {images.dtype}")
    shape = tuple(images.shape)
    if batch and (images.dim() < 2 or shape[0] == 0):
        raise ValueError(f"{name}: expected a non-empty tensor {wanted}, got shape {shape}")
    if event_shape is not None and shape[1:] != tuple(event_shape):
        raise ValueError(f"{name}: expected a tensor {wanted}, got shape {shape}")
    if validation_enabled() and images.numel():
        lo, hi = float(images.min()), float(images.max())
        integral = not images.is_floating_point() or bool((images == images.round()).all())
        if lo < 0 or hi > levels - 1 or not integral:
            raise ValueError(
                f"{name}: expected integer pixel values in 0..{levels - 1} (not yet scaled or "
                f"dequantized), got values in [{lo:g}, {hi:g}]"
                + ("" if lo < 0 or hi > levels - 1 else ", not all integers")
            )
    return images


def dequantize(
    images: Tensor,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    levels: int = LEVELS,
) -> Tensor:
    """Uniform dequantization ``v = k + u``, ``u ~ U[0, 1)`` i.i.d.; same shape as ``images``.

    Args:
        images: integer pixel values ``k ∈ {0, …, levels − 1}`` (uint8 or any dtype holding
            integers; :func:`check_pixel_images`).
        generator: random generator for ``u`` (must live on ``images``' device).
        dtype: floating dtype of the result.
        levels: number of pixel levels (256 for 8-bit images).
    """
    images = check_pixel_images(images, levels, batch=False)
    dtype = check_float_dtype(dtype, "dtype")
    check_generator(generator, "generator")
    k = images.to(dtype)
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


def check_alpha(value: object) -> float:
    """``α`` of the logit: a number in ``(0, 0.5)``, returned as a float."""
    alpha = check_positive_float(value, "alpha")
    if not alpha < 0.5:
        raise ValueError(f"alpha: expected a number in (0, 0.5), got {alpha!r}")
    return alpha


class Logit(Bijection):
    """``y = logit(α + (1 − 2α) x)`` for ``x`` in ``[0, 1]``, any shape ``(batch, …)``.

    ``log|det ∂y/∂x| = Σ_j [log(1 − 2α) − log p_j − log(1 − p_j)]`` with
    ``p = α + (1 − 2α) x``. The inverse is ``x = (σ(y) − α) / (1 − 2α)``.

    Args:
        alpha: ``α`` in ``(0, 0.5)``; RealNVP uses 0.05 on images.
    """

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        self.alpha = check_alpha(alpha)

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


def check_image_model(model: object, name: str = "model") -> nn.Module:
    """``model`` as an ``nn.Module`` with a ``log_prob`` (``TypeError`` naming ``name``)."""
    if not isinstance(model, nn.Module) or not callable(getattr(model, "log_prob", None)):
        raise TypeError(
            f"{name}: expected a flow (an nn.Module with log_prob on images scaled to [0, 1)), "
            f"got {type(model).__name__}"
        )
    return model


class DequantizedImages:
    """A sampler of dequantized, scaled training images for :func:`coursekit.training.fit`.

    ``sample(n, generator)`` draws ``n`` images ``k`` with replacement, dequantizes them
    (``v = k + u``) and returns ``x = v / levels`` in ``[0, 1)``, shape ``(n, C, H, W)``;
    both the indices and the noise come from ``generator``.

    Args:
        images: (N, C, H, W) integer pixel values 0..levels−1 (uint8).
        levels: number of pixel levels (an integer ≥ 2, :func:`check_levels`).
    """

    def __init__(self, images: Tensor, levels: int = LEVELS):
        self.levels = check_levels(levels)
        self.images = check_pixel_images(images, self.levels, name="images")

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` dequantized images scaled to ``[0, 1)``, shape (n, C, H, W)."""
        n = check_positive_int(n, "n")
        idx = torch.randint(0, self.images.shape[0], (n,), generator=generator)
        return dequantize(self.images[idx], generator=generator, levels=self.levels) / self.levels


@torch.no_grad()
def image_bits_per_dim(
    model: nn.Module,
    images: Tensor,
    batch_size: int = 500,
    generator: torch.Generator | None = None,
    levels: int = LEVELS,
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
    check_image_model(model)
    levels = check_levels(levels)
    images = check_pixel_images(images, levels)
    batch_size = check_positive_int(batch_size, "batch_size")
    check_generator(generator, "generator")
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    total = 0.0
    try:  # the model's train/eval mode comes back even when a batch fails
        for start in range(0, images.shape[0], batch_size):
            k = images[start : start + batch_size]
            v = dequantize(k, generator=generator, dtype=torch.float64, levels=levels).to(dtype)
            x = (v / levels).to(device)
            total += float(model.log_prob(x).double().sum())
    finally:
        model.train(was_training)
    mean_log_prob = torch.tensor(total / images.shape[0], dtype=torch.float64)
    return float(bits_per_dim(mean_log_prob, images[0].numel(), levels=levels))
