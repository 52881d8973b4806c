"""Importance-weighted bits/dim: a tighter bound on the discrete likelihood of images.

An integer image ``k`` has probability ``P(k) = ∫_{[0,1)^D} p_V(k + u) du`` under a density
``p_V`` of the dequantized data ``v = k + u``. Uniform dequantization scores one draw,
``log p_V(k + u)``, whose expectation is a lower bound on ``log P(k)`` (Jensen). With ``K``
independent draws ``u_1, …, u_K ~ U[0, 1)^D`` (uniform, so the proposal density is 1),

    L_K(k) = log (1/K) Σ_k p_V(k + u_k) ≤ log P(k)   in expectation, and
    E[L_1] ≤ E[L_K] ≤ E[L_2K] → log P(k)  as K → ∞ (Burda et al., 2016),

so the bits/dim ``−L_K / (D ln 2)`` are non-increasing in expectation with ``K`` and ``K = 1``
is the single-sample bound of :func:`~coursekit.flows.preprocessing.image_bits_per_dim`.
With a learned proposal ``q(u | k)`` (a
:class:`~coursekit.flows.dequantization.DequantizedImageFlow`), each term is divided by it,
``L_K = log (1/K) Σ_k p_V(k + u_k) / q(u_k | k)``, ``u_k ~ q``: the same bound, tighter
for a given ``K`` when ``q`` resembles ``p_V(k + u) / P(k)``. With
``x = v / levels`` (what an image model sees), ``log p_V(v) = log p_X(x) − D log(levels)``:
:func:`coursekit.metrics.bits_per_dim` adds that term.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from coursekit._validation import check_generator, check_positive_int
from coursekit.flows.dequantization import DequantizedImageFlow
from coursekit.flows.preprocessing import (
    LEVELS,
    check_image_model,
    check_levels,
    check_pixel_images,
    dequantize,
)
from coursekit.metrics import bits_per_dim


def resolve_levels(model: nn.Module, levels: int | None) -> int:
    """The pixel levels of the bound: a :class:`DequantizedImageFlow`'s dequantizer's
    (``levels``, if given, must agree with it), else ``levels`` (default 256)."""
    if isinstance(model, DequantizedImageFlow):
        own = model.dequantizer.levels
        if levels is not None and check_levels(levels) != own:
            raise ValueError(
                f"levels: the model's dequantizer was built for {own} pixel levels, got "
                f"levels={levels!r}; leave levels out to use the dequantizer's"
            )
        return own
    return LEVELS if levels is None else check_levels(levels)


def _log_weight(
    model: nn.Module,
    images: Tensor,
    generator: torch.Generator | None,
    levels: int,
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    """``log p_X((k + u) / levels) − log q(u | k)`` for one draw ``u ~ q`` per image; (n,).

    ``q`` is the model's :class:`~coursekit.flows.dequantization.VariationalDequantizer` for
    a :class:`~coursekit.flows.dequantization.DequantizedImageFlow`, else uniform (``q = 1``).
    """
    if isinstance(model, DequantizedImageFlow):
        u, log_q = model.dequantizer.sample(images.to(device), generator=generator)
        x = (images.to(u) + u) / levels
        return (model.flow.log_prob(x) - log_q).double().cpu()
    v = dequantize(images, generator=generator, dtype=torch.float64, levels=levels)
    x = (v / levels).to(dtype=dtype, device=device)
    return model.log_prob(x).double().cpu()


@torch.no_grad()
def importance_weighted_log_prob(
    model: nn.Module,
    images: Tensor,
    num_samples: int = 8,
    batch_size: int = 500,
    generator: torch.Generator | None = None,
    levels: int | None = None,
) -> Tensor:
    """``L_K = log (1/K) Σ_k p_X((k + u_k) / levels)`` per image, in nats; (n,) float64.

    The log-density is that of the scaled data ``x = v / levels`` (as ``model.log_prob``
    returns it); subtract ``D log(levels)`` for the density of ``v``. For each batch of images
    the ``K`` noise draws are made in turn, each as
    :func:`~coursekit.flows.preprocessing.dequantize` would (float64, from ``generator``), so
    ``K = 1`` uses exactly the noise of
    :func:`~coursekit.flows.preprocessing.image_bits_per_dim` with the same generator.

    For a :class:`~coursekit.flows.dequantization.DequantizedImageFlow` the draws come from
    its dequantizer ``q(u | k)`` and each term is ``log p_X − log q``.

    Args:
        model: a flow with ``log_prob`` on images scaled to ``[0, 1)``.
        images: (n, C, H, W) integer pixel values 0..levels−1.
        num_samples: ``K``, dequantization draws per image.
        batch_size: images per forward pass.
        generator: random generator for the noise (fixed seed = repeatable).
        levels: number of pixel levels (default: the dequantizer's for a
            ``DequantizedImageFlow``, which a given value must equal; else 256).
    """
    check_image_model(model)
    levels = resolve_levels(model, levels)
    images = check_pixel_images(images, levels)
    num_samples = check_positive_int(num_samples, "num_samples")
    batch_size = check_positive_int(batch_size, "batch_size")
    check_generator(generator, "generator")
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, images.shape[0], batch_size):
            k = images[start : start + batch_size]
            draws = []
            for _ in range(num_samples):
                draws.append(_log_weight(model, k, generator, levels, dtype, device))
            log_p = torch.stack(draws, dim=1)  # (batch, K)
            out.append(torch.logsumexp(log_p, dim=1) - math.log(num_samples))
    finally:
        model.train(was_training)
    return torch.cat(out)


def importance_weighted_bits_per_dim(
    model: nn.Module,
    images: Tensor,
    num_samples: int = 8,
    batch_size: int = 500,
    generator: torch.Generator | None = None,
    levels: int | None = None,
) -> float:
    """Test bits/dim from ``K`` importance samples, ``−mean(L_K − D log levels) / (D ln 2)``.

    ``L_K`` is :func:`importance_weighted_log_prob` (arguments as there); ``K = 1`` is the
    single-sample bound of :func:`~coursekit.flows.preprocessing.image_bits_per_dim`, and the
    figure is non-increasing in expectation with ``K``.
    """
    levels = resolve_levels(check_image_model(model), levels)
    log_prob = importance_weighted_log_prob(
        model, images, num_samples, batch_size=batch_size, generator=generator, levels=levels
    )
    return float(bits_per_dim(log_prob.mean(), images[0].numel(), levels=levels))
