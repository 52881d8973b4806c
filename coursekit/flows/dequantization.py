"""Variational dequantization: a learned noise distribution ``q(u | k)`` (Ho et al., 2019).

Uniform dequantization (:func:`~coursekit.flows.preprocessing.dequantize`) scores an integer
image ``k`` by one draw ``v = k + u``, ``u ~ U[0, 1)^D``, and ``E[log p_V(k + u)] ≤ log P(k)``.
The model must then spread its density evenly over every unit cube ``k + [0, 1)^D``, a flat
shape a smooth flow fits badly. With any density ``q(u | k)`` on ``(0, 1)^D``,

    log P(k) = log ∫ p_V(k + u) du = log E_q[p_V(k + u) / q(u | k)]
             ≥ E_q[log p_V(k + u) − log q(u | k)]                         (the ELBO)

(Jensen), with equality when ``q(u | k) = p_V(k + u) / P(k)``: training ``q`` with the flow
lets the bound follow the model instead of forcing the model onto a uniform cube. Uniform
dequantization is the special case ``q = 1``.

:class:`VariationalDequantizer` is itself a small conditional flow: ``ε ~ N(0, I)``, then
checkerboard affine couplings (eq. 12) whose conditioners also see features of ``k``, give
``h``, and ``u = σ(h)``. By the change of variable (eq. 11),

    log q(u | k) = log N(ε; 0, I) − Σ_layers log|det ∂h/∂ε| − Σ_j log σ'(h_j),
    σ'(h) = σ(h) σ(−h).

:class:`DequantizedImageFlow` pairs an image flow with it: :meth:`~DequantizedImageFlow.elbo`
is the training objective and :func:`~coursekit.flows.importance.importance_weighted_log_prob`
uses ``q`` as its proposal.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coursekit._validation import (
    check_generator,
    check_image_shape,
    check_positive_float,
    check_positive_int,
    check_tensor,
)
from coursekit.flows.base import standard_normal_log_prob
from coursekit.flows.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint
from coursekit.flows.coupling import affine_forward, bounded_log_scale
from coursekit.flows.image_coupling import checkerboard_mask
from coursekit.flows.nets import ConvConditioner
from coursekit.flows.preprocessing import LEVELS, check_levels, check_pixel_images


class ConditionalCheckerboardCoupling(nn.Module):
    """Eq. (12) with a checkerboard mask whose conditioner also sees a context image.

    ``h = b ⊙ ε + (1 − b) ⊙ (ε ⊙ exp(s) + t)``, ``(s, t) = NN(b ⊙ ε, b, context)``;
    ``log|det ∂h/∂ε| = Σ (1 − b) ⊙ s``. Shapes: ``ε`` (n, C, H, W), ``context``
    (n, C_ctx, H, W). Only the direction ``ε → h`` is needed (to sample ``u`` and score it).
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        context_channels: int,
        hidden: int,
        parity: int,
        scale_bound: float = 3.0,
    ):
        super().__init__()
        c, h, w = shape
        self.register_buffer("mask", checkerboard_mask(h, w, parity))
        self.scale_bound = scale_bound
        self.conditioner = ConvConditioner(c + 1 + context_channels, 2 * c, hidden, n_blocks=1)

    def forward(self, eps: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        mask = self.mask.to(eps.dtype)
        kept = eps * mask
        net_in = torch.cat([kept, mask.expand(len(eps), 1, *eps.shape[2:]), context], dim=1)
        raw_s, t = self.conditioner(net_in).chunk(2, dim=1)
        free = 1 - mask
        s = bounded_log_scale(raw_s, self.scale_bound) * free
        moved, log_det = affine_forward(eps, s, t * free)
        return kept + free * moved, log_det


class VariationalDequantizer(nn.Module):
    """``q(u | k)``: a conditional flow from ``N(0, I)`` to the dequantization noise ``u``.

    Args:
        image_shape: ``(C, H, W)`` of the images.
        hidden: width of the couplings' conditioners.
        n_couplings: checkerboard couplings (parities alternate).
        context_channels: channels of the features of ``k`` every coupling sees (a 3×3
            convolution, SiLU, a 3×3 convolution of ``k / (levels − 1) − 1/2``).
        scale_bound: ``B`` of the couplings' bounded log-scales.
        levels: number of pixel levels, an integer ≥ 2 (256 for 8-bit images).

    At initialisation the couplings are the identity, so ``u = σ(ε)`` (a logistic-normal, not
    the uniform): the bound starts slightly worse than uniform dequantization's and improves
    as ``q`` learns.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        hidden: int = 16,
        n_couplings: int = 4,
        context_channels: int = 8,
        scale_bound: float = 3.0,
        levels: int = LEVELS,
    ):
        super().__init__()
        self.image_shape = check_image_shape(image_shape, "image_shape")
        self.levels = check_levels(levels)
        hidden = check_positive_int(hidden, "hidden")
        n_couplings = check_positive_int(n_couplings, "n_couplings")
        context_channels = check_positive_int(context_channels, "context_channels")
        c = self.image_shape[0]
        self.features = nn.Sequential(
            nn.Conv2d(c, hidden, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(hidden, context_channels, 3, padding=1),
        )
        self.couplings = nn.ModuleList(
            ConditionalCheckerboardCoupling(
                self.image_shape,
                context_channels,
                hidden,
                parity=i % 2,
                scale_bound=check_positive_float(scale_bound, "scale_bound"),
            )
            for i in range(n_couplings)
        )
        self.config = dict(
            image_shape=list(self.image_shape),
            hidden=hidden,
            n_couplings=n_couplings,
            context_channels=context_channels,
            scale_bound=float(scale_bound),
            levels=self.levels,
        )

    def sample(
        self, images: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Draw ``u ~ q(u | k)`` for each image; returns ``(u, log q(u | k))``.

        Args:
            images: (n, C, H, W) integer pixel values ``k`` in ``0..levels−1``.
            generator: random generator for ``ε`` (drawn in float64, then cast to the
                module's dtype), so a fixed seed repeats the draws.

        Returns:
            ``u`` (n, C, H, W) in ``(0, 1)`` (the module's dtype) and ``log q(u | k)`` (n,) in
            nats, the density of ``u`` (of ``v = k + u`` too: the shift has Jacobian 1).
        """
        images = self.check_images(images)
        check_generator(generator, "generator")
        param = next(self.parameters())
        eps = torch.randn(images.shape, generator=generator, dtype=torch.float64)
        return self.transform(eps.to(dtype=param.dtype, device=param.device), images)

    def check_images(self, images: object) -> Tensor:
        """``images`` as (n, C, H, W) integer pixels in ``0..levels−1`` of this image shape
        (:func:`~coursekit.flows.preprocessing.check_pixel_images`)."""
        return check_pixel_images(images, self.levels, event_shape=self.image_shape)

    def transform(self, eps: Tensor, images: Tensor) -> tuple[Tensor, Tensor]:
        """``u = σ(h(ε; k))`` and ``log q(u | k)`` for given ``ε`` (n, C, H, W) and images ``k``.

        ``log q(u | k) = log N(ε) − Σ log|det ∂h/∂ε| − Σ_j log σ'(h_j)`` (eq. 11), with
        ``log σ'(h) = log σ(h) + log σ(−h)``.
        """
        context = self.features(images.to(eps) / (self.levels - 1) - 0.5)
        log_q = standard_normal_log_prob(eps)
        h = eps
        for coupling in self.couplings:
            h, log_det = coupling(h, context)
            log_q = log_q - log_det
        log_q = log_q - (F.logsigmoid(h) + F.logsigmoid(-h)).flatten(1).sum(1)
        u = torch.sigmoid(h)
        # σ(h) rounds to exactly 0 or 1 for large |h|: keep u in the open unit interval
        tiny = torch.finfo(u.dtype).eps
        return u.clamp(tiny, 1 - tiny), log_q


class DequantizedImageFlow(nn.Module):
    """An image flow on ``x = (k + u) / levels`` with a :class:`VariationalDequantizer` ``q``.

    Args:
        flow: a flow with ``log_prob(x)`` on images scaled to ``[0, 1]`` (e.g.
            :class:`~coursekit.flows.image.ImageRealNVP`) and ``sample``.
        dequantizer: ``q(u | k)`` for the same image shape.

    :meth:`elbo` is the per-image bound in nats of the scaled data (``x = v / levels``, as
    ``flow.log_prob`` returns it), so :func:`coursekit.metrics.bits_per_dim` with
    ``levels=256`` turns it into bits/dim; :meth:`sample` and :meth:`log_prob` are the flow's.
    """

    def __init__(self, flow: nn.Module, dequantizer: VariationalDequantizer):
        super().__init__()
        if not isinstance(dequantizer, VariationalDequantizer):
            raise ValueError(
                f"dequantizer: expected a VariationalDequantizer, got {type(dequantizer).__name__}"
            )
        if not callable(getattr(flow, "log_prob", None)):
            raise ValueError(f"flow: expected a flow with log_prob, got {type(flow).__name__}")
        self.flow = flow
        self.dequantizer = dequantizer

    def elbo(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``log p_X((k + u) / levels) − log q(u | k)``, ``u ~ q(u | k)``; (n,) nats.

        One draw per image; its mean over ``q`` is a lower bound on ``log P(k)`` (up to the
        constant ``D log levels`` of the scaling, which :func:`~coursekit.metrics.bits_per_dim`
        adds).
        """
        u, log_q = self.dequantizer.sample(images, generator=generator)
        return self._bound(images, u, log_q)

    def elbo_given_noise(self, images: Tensor, eps: Tensor) -> Tensor:
        """:meth:`elbo` with the standard normal draws ``ε`` (n, C, H, W) given: ``u`` is
        ``q``'s transform of ``ε`` (:meth:`VariationalDequantizer.transform`). ``images`` are
        checked as :meth:`elbo` checks them; ``ε`` must have their shape."""
        images = self.dequantizer.check_images(images)
        eps = check_tensor(eps, "eps", event_shape=self.dequantizer.image_shape)
        if eps.shape[0] != images.shape[0]:
            raise ValueError(
                f"eps: expected one draw per image, shape {tuple(images.shape)}, got "
                f"{tuple(eps.shape)}"
            )
        return self._bound(images, *self.dequantizer.transform(eps, images))

    def _bound(self, images: Tensor, u: Tensor, log_q: Tensor) -> Tensor:
        x = (images.to(u) + u) / self.dequantizer.levels
        return self.flow.log_prob(x) - log_q

    def log_prob(self, x: Tensor) -> Tensor:
        """The flow's density of the scaled, dequantized images ``x`` (n, C, H, W)."""
        return self.flow.log_prob(x)

    def sample(self, n: int, *args: object, **kwargs: object) -> Tensor:
        """The flow's samples (continuous images in ``[0, 1]``); arguments as ``flow.sample``."""
        return self.flow.sample(n, *args, **kwargs)

    def num_parameters(self) -> int:
        """Trainable parameters of the flow and the dequantizer together."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @property
    def config(self) -> dict:
        """``{"flow": flow.config, "dequantizer": dequantizer.config}`` (rebuilds the pair
        when the flow is an :class:`~coursekit.flows.image.ImageRealNVP`)."""
        return {"flow": self.flow.config, "dequantizer": self.dequantizer.config}

    def save(self, path: str | Path, **metadata: object) -> None:
        """Save ``{"config", "state_dict", **metadata}`` atomically (``weights_only`` loadable).

        Only a pair whose flow has a ``config`` (an
        :class:`~coursekit.flows.image.ImageRealNVP`) can be saved so that :meth:`load`
        rebuilds it; another flow raises ``TypeError`` naming ``flow``.
        """
        if not isinstance(getattr(self.flow, "config", None), dict):
            raise TypeError(
                f"flow: a {type(self.flow).__name__} has no config to rebuild it from, so "
                "DequantizedImageFlow.save cannot write a loadable file; pair the dequantizer "
                "with an ImageRealNVP, or save state_dict() with torch.save"
            )
        save_checkpoint(self, path, **metadata)

    @classmethod
    def load(
        cls, path: str | Path, map_location: str | torch.device = "cpu"
    ) -> DequantizedImageFlow:
        """Rebuild a pair saved by :meth:`save` (an ``ImageRealNVP`` and its dequantizer);
        a :class:`~coursekit.flows.checkpoint.CheckpointError` names ``path`` if it cannot;
        ``map_location`` must be a device this machine has (``ValueError`` naming it)."""
        return model_from_checkpoint(
            _pair_from_config, read_checkpoint(path, map_location), str(path)
        )


def _pair_from_config(flow: dict, dequantizer: dict) -> DequantizedImageFlow:
    """``DequantizedImageFlow(ImageRealNVP(**flow), VariationalDequantizer(**dequantizer))``."""
    from coursekit.flows.image import ImageRealNVP  # image.py does not import this module

    if not isinstance(flow, dict) or not isinstance(dequantizer, dict):
        raise ValueError("config: expected {'flow': {...}, 'dequantizer': {...}}")
    return DequantizedImageFlow(ImageRealNVP(**flow), VariationalDequantizer(**dequantizer))


def negative_elbo(model: DequantizedImageFlow, images: Tensor) -> Tensor:
    """Training loss ``−mean ELBO`` (nats) of a batch of integer images, for ``fit`` (the
    noise ``ε`` from torch's global generator)."""
    return -model.elbo(images).mean()


class ImagesAndNoise:
    """A sampler for ``fit``: ``n`` training images ``k`` and the ``ε ~ N(0, I)`` that ``q``
    turns into their noise, stacked along the channels as (n, 2C, H, W).

    Both come from ``fit``'s minibatch generator, so a resumed run (``fit(resume=…)``)
    draws the same noise as an uninterrupted one; train with :func:`negative_elbo_given_noise`.
    """

    def __init__(self, images: Tensor, levels: int = LEVELS):
        self.images = check_pixel_images(images, levels)
        if self.images.dim() != 4:
            raise ValueError(f"images: expected a tensor (N, C, H, W), got {tuple(images.shape)}")

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``torch.cat([k, ε], dim=1)``, float32, (n, 2C, H, W)."""
        n = check_positive_int(n, "n")
        idx = torch.randint(0, self.images.shape[0], (n,), generator=generator)
        k = self.images[idx].float()
        return torch.cat([k, torch.randn(k.shape, generator=generator)], dim=1)


def negative_elbo_given_noise(model: DequantizedImageFlow, batch: Tensor) -> Tensor:
    """Training loss ``−mean ELBO`` of a batch of :class:`ImagesAndNoise` (n, 2C, H, W)."""
    images, eps = batch.chunk(2, dim=1)
    return -model.elbo_given_noise(images, eps).mean()
