"""The affine coupling layer of RealNVP (slides: INN – REALNVP: LAYER, INVERSE LAYER, eq. 12).

This module is the one home of eq. (12). With ``x1`` the kept part (k features) and ``x2``
the changed part (d − k features)::

    forward:  z1 = x1,   z2 = x2 ⊙ exp(s(x1)) + t(x1)
    inverse:  x1 = z1,   x2 = (z2 − t(z1)) ⊙ exp(−s(z1))
    log|det ∂z/∂x| = Σ_j s_j(x1)                                   (12)

In the (kept, changed) ordering the Jacobian is block lower-triangular
``[[I_k, 0], [∂z2/∂x1, diag(exp(s))]]``.

* :func:`affine_forward` / :func:`affine_inverse`: the two lines of eq. (12) and their
  log-determinants, on any shapes.
* :class:`AffineCouplingBase`: the layer written once from them; a subclass says only how
  to split the input into ``(x1, x2)``, how to join them back and how the conditioner
  computes ``(s, t)`` from ``x1``. :class:`AffineCoupling` (vectors, a 0/1 mask) is one;
  the image couplings (:mod:`coursekit.flows.image_coupling`, checkerboard and channel
  masks) are the others.

The log-scale is bounded, ``s = B·tanh(ŝ/B)`` (:func:`bounded_log_scale`), so one layer can
never scale by more than ``exp(±B)``; the conditioner's last layer is zero-initialised so
that every layer starts as the identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from coursekit._validation import check_positive_float
from coursekit.flows.base import Bijection
from coursekit.flows.nets import mlp


def bounded_log_scale(raw_s: Tensor, bound: float) -> Tensor:
    """``s = B·tanh(ŝ/B)``: ``≈ ŝ`` for small ``ŝ`` and always in ``(−B, B)``."""
    return bound * torch.tanh(raw_s / bound)


def _sum_per_example(s: Tensor) -> Tensor:
    """``Σ_j s_j`` over every non-batch dimension; (batch,)."""
    return s.sum(1) if s.dim() == 2 else s.flatten(1).sum(1)


def affine_forward(x2: Tensor, s: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Eq. (12), forward: ``z2 = x2 ⊙ exp(s) + t`` and ``log|det ∂z/∂x| = Σ s``.

    ``x2``, ``s``, ``t``: (batch, …) of one shape; returns ``z2`` (same shape) and the
    log-determinant (batch,), summed over every non-batch dimension.
    """
    return x2 * torch.exp(s) + t, _sum_per_example(s)


def affine_inverse(z2: Tensor, s: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Eq. (12), inverse: ``x2 = (z2 − t) ⊙ exp(−s)`` and ``log|det ∂x/∂z| = −Σ s``."""
    return (z2 - t) * torch.exp(-s), -_sum_per_example(s)


class AffineCouplingBase(Bijection):
    """An affine coupling layer (eq. 12) written once; subclasses choose the split.

    A subclass implements

    * ``_split(x) -> (x1, x2)``: the kept part (the conditioner's input) and the changed part;
    * ``_join(x1, y2) -> x``: the inverse of the split, with ``y2`` in place of ``x2``;
    * ``scale_and_shift(x1) -> (s, t)``: the bounded log-scale and the shift, shaped as ``x2``.

    ``forward``: ``z = join(x1, x2 ⊙ exp(s(x1)) + t(x1))``, ``log|det| = Σ s``;
    ``inverse``: ``x = join(z1, (z2 − t(z1)) ⊙ exp(−s(z1)))``, ``log|det| = −Σ s``.
    """

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _join(self, x1: Tensor, x2: Tensor) -> Tensor:
        raise NotImplementedError

    def scale_and_shift(self, x1: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x1, x2 = self._split(x)
        s, t = self.scale_and_shift(x1)
        z2, log_det = affine_forward(x2, s, t)
        return self._join(x1, z2), log_det

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        z1, z2 = self._split(z)
        s, t = self.scale_and_shift(z1)
        x2, log_det = affine_inverse(z2, s, t)
        return self._join(z1, x2), log_det


def _mask_to_bool(mask: Sequence[int] | Sequence[bool] | Tensor) -> Tensor:
    m = torch.as_tensor(mask)
    if m.dim() != 1 or m.numel() == 0:
        raise ValueError(
            f"mask: expected a non-empty 1-D sequence of 0/1, got shape {tuple(m.shape)}"
        )
    if m.dtype != torch.bool:
        if not bool(((m == 0) | (m == 1)).all()):
            raise ValueError(f"mask: expected only 0/1 (or booleans), got {m.tolist()}")
        m = m.bool()
    n_kept = int(m.sum())
    if n_kept == 0 or n_kept == m.numel():
        raise ValueError(
            "mask: expected at least one kept (1) and one changed (0) coordinate, got "
            f"{m.int().tolist()}, which {'keeps everything' if n_kept else 'keeps nothing'}"
        )
    return m


def _contiguous_blocks(kept: Tensor, changed: Tensor) -> str | None:
    """``"kept_first"`` / ``"changed_first"`` when the kept and changed indices are two
    contiguous blocks ``[0, k)`` and ``[k, d)`` (or the other way round), else ``None``."""
    d = kept.numel() + changed.numel()
    order = torch.cat([kept, changed])
    if torch.equal(order, torch.arange(d)):
        return "kept_first"
    if torch.equal(torch.cat([changed, kept]), torch.arange(d)):
        return "changed_first"
    return None


class AffineCoupling(AffineCouplingBase):
    """Affine coupling layer ``l(x) = [x1, x2 ⊙ exp(s(x1)) + t(x1)]`` on vectors of size ``d``.

    Args:
        mask: length-``d`` 0/1 (or bool) sequence, 1 = kept coordinate ``x1``, 0 = changed
            ``x2``. Must keep at least one and change at least one coordinate.
        hidden: hidden widths of the default MLP conditioner ``x1 -> (ŝ, t)``.
        conditioner: optional module mapping ``(batch, k) -> (batch, 2(d − k))``; replaces
            the default MLP.
        scale_bound: ``B`` in ``s = B·tanh(ŝ/B)``.

    Shapes: ``x``, ``z``: (batch, d); ``log_det``: (batch,).
    """

    def __init__(
        self,
        mask: Sequence[int] | Sequence[bool] | Tensor,
        hidden: Sequence[int] = (64, 64),
        conditioner: nn.Module | None = None,
        scale_bound: float = 3.0,
    ):
        super().__init__()
        m = _mask_to_bool(mask)
        self.dim = m.numel()
        self.event_shape = (self.dim,)
        self.scale_bound = check_positive_float(scale_bound, "scale_bound")
        kept = torch.nonzero(m).flatten()
        changed = torch.nonzero(~m).flatten()
        self.register_buffer("mask", m)
        self.register_buffer("kept", kept)
        self.register_buffer("changed", changed)
        # Gather [x1, x2] back into the original order.
        self.register_buffer("unsort", torch.argsort(torch.cat([kept, changed])))
        # Fast path: when the kept and the changed coordinates are two contiguous blocks (as
        # with RealNVP's alternating half masks), split by slicing (views, no gather) and
        # rejoin by concatenation in block order; otherwise gather with index tensors.
        self._blocks = _contiguous_blocks(kept, changed)
        self.conditioner = (
            conditioner if conditioner is not None else mlp(len(kept), 2 * len(changed), hidden)
        )

    def scale_and_shift(self, x1: Tensor) -> tuple[Tensor, Tensor]:
        """Bounded log-scale ``s`` and shift ``t`` from the kept part; each (batch, d − k)."""
        out = self.conditioner(x1)
        expected = 2 * self.changed.numel()
        if out.shape != (x1.shape[0], expected):
            raise ValueError(
                f"conditioner: expected output shape ({x1.shape[0]}, {expected}), "
                f"got {tuple(out.shape)}"
            )
        raw_s, t = out.chunk(2, dim=1)
        return bounded_log_scale(raw_s, self.scale_bound), t

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(x[:, kept], x[:, changed])``."""
        if self._blocks is None:
            return x[:, self.kept], x[:, self.changed]
        k = self.kept.numel()
        if self._blocks == "kept_first":
            return x[:, :k], x[:, k:]
        return x[:, -k:], x[:, :-k]

    def _join(self, x1: Tensor, x2: Tensor) -> Tensor:
        """Inverse of :meth:`_split`."""
        if self._blocks is None:
            return torch.cat([x1, x2], dim=1)[:, self.unsort]
        if self._blocks == "kept_first":
            return torch.cat([x1, x2], dim=1)
        return torch.cat([x2, x1], dim=1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, mask={self.mask.int().tolist()}, scale_bound={self.scale_bound:g}"
