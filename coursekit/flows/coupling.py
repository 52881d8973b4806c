"""The affine coupling layer of RealNVP (slides: INN – REALNVP: LAYER, INVERSE LAYER, eq. 12).

With ``x1 = x[kept]`` (k features) and ``x2 = x[changed]`` (d − k features)::

    forward:  z1 = x1,   z2 = x2 ⊙ exp(s(x1)) + t(x1)
    inverse:  x1 = z1,   x2 = (z2 − t(z1)) ⊙ exp(−s(z1))
    log|det ∂z/∂x| = Σ_j s_j(x1)                                   (12)

In the (kept, changed) ordering the Jacobian is block lower-triangular
``[[I_k, 0], [∂z2/∂x1, diag(exp(s))]]``.

The log-scale is bounded, ``s = B·tanh(ŝ/B)``, so one layer can never scale by more than
``exp(±B)``; the conditioner's last layer is zero-initialised so that every layer starts as
the identity.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from coursekit._validation import check_positive_float
from coursekit.flows.base import Bijection


def mlp(in_features: int, out_features: int, hidden: Sequence[int]) -> nn.Sequential:
    """A multilayer perceptron ``in -> hidden[0] -> … -> out`` with SiLU activations.

    The last linear layer is zero-initialised (weights and bias), so the network outputs 0
    at initialisation.
    """
    widths = tuple(hidden) if isinstance(hidden, (Sequence, Tensor)) else None
    if widths is None or any(
        isinstance(h, bool) or not isinstance(h, numbers.Integral) or h <= 0 for h in widths
    ):
        raise ValueError(f"hidden: expected a sequence of positive integer widths, got {hidden!r}")
    layers: list[nn.Module] = []
    width = in_features
    for h in widths:
        layers += [nn.Linear(width, int(h)), nn.SiLU()]
        width = int(h)
    last = nn.Linear(width, out_features)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)


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


class AffineCoupling(Bijection):
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
        s = self.scale_bound * torch.tanh(raw_s / self.scale_bound)
        return s, t

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

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x1, x2 = self._split(x)
        s, t = self.scale_and_shift(x1)
        z2 = x2 * torch.exp(s) + t
        return self._join(x1, z2), s.sum(dim=1)

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        z1, z2 = self._split(z)
        s, t = self.scale_and_shift(z1)
        x2 = (z2 - t) * torch.exp(-s)
        return self._join(z1, x2), -s.sum(dim=1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, mask={self.mask.int().tolist()}, scale_bound={self.scale_bound:g}"
