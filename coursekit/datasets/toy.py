"""Two-dimensional toy distributions with ``sample(n, generator)`` and exact ``log_prob``.

Every distribution here returns float64 samples of shape (n, 2) by default (``dtype``: any
floating dtype) and, where it exists, the exact log density of shape (batch,), so that
KL(p ‖ p_θ) can be estimated against the truth. The flows cast their input to their own
dtype, so ``RealNVP(2).log_prob(four_modes().sample(100))`` works as it is (in float32).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

from coursekit._validation import (
    check_float_dtype,
    check_generator,
    check_positive_float,
    check_positive_int,
    check_tensor,
)
from coursekit.flows.base import LOG_2PI


class ToyDistribution:
    """Base class: a distribution on R² with ``sample`` and (optionally) ``log_prob``."""

    #: False for distributions without a closed-form density (e.g. two moons).
    has_log_prob: bool = True
    dim: int = 2
    name: str = "toy"

    def sample(
        self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64
    ) -> Tensor:
        """Draw ``n`` i.i.d. points; returns (n, 2) of floating ``dtype``."""
        n = check_positive_int(n, "n")
        check_generator(generator, "generator")
        dtype = check_float_dtype(dtype, "dtype")
        return self._sample(n, generator).to(dtype)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact ``log p(x)`` for ``x`` (batch, 2); returns (batch,)."""
        if not self.has_log_prob:
            raise NotImplementedError(f"{self.name} has no closed-form density")
        check_tensor(x, "x", event_shape=(2,))
        return self._log_prob(x)

    def prob(self, x: Tensor) -> Tensor:
        """``exp(log_prob(x))``."""
        return self.log_prob(x).exp()

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    def _log_prob(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


def _as_float64(value: object, name: str) -> Tensor:
    """``value`` (numbers, nested sequences, a tensor or array) as a float64 tensor."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name}: expected numbers, got {value!r}")
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name}: expected numbers, got {value!r}") from None


class GaussianMixture(ToyDistribution):
    """Mixture of isotropic Gaussians ``Σ_k w_k N(μ_k, σ_k² I)`` on R².

    Args:
        means: (K, 2) centres.
        stds: one σ for all components or K of them.
        weights: K mixture weights (normalised here); equal by default.
    """

    def __init__(
        self,
        means: Sequence[Sequence[float]] | Tensor,
        stds: float | Sequence[float] = 0.5,
        weights: Sequence[float] | None = None,
        name: str = "gaussian mixture",
    ):
        self.means = _as_float64(means, "means")
        if self.means.dim() != 2 or self.means.shape[1] != 2 or self.means.shape[0] == 0:
            raise ValueError(f"means: expected shape (K, 2), got {tuple(self.means.shape)}")
        if not bool(torch.isfinite(self.means).all()):
            raise ValueError(f"means: expected finite values, got {means}")
        k = self.means.shape[0]
        stds_t = _as_float64(stds, "stds").flatten()
        if stds_t.numel() == 1:
            stds_t = stds_t.expand(k).clone()
        if stds_t.numel() != k or not bool(((stds_t > 0) & torch.isfinite(stds_t)).all()):
            raise ValueError(f"stds: expected one positive finite σ or {k} of them, got {stds}")
        self.stds = stds_t
        w = (
            torch.full((k,), 1.0 / k, dtype=torch.float64)
            if weights is None
            else _as_float64(weights, "weights").flatten()
        )
        if w.numel() != k or not bool(((w > 0) & torch.isfinite(w)).all()):
            raise ValueError(f"weights: expected {k} positive finite weights, got {weights}")
        self.weights = w / w.sum()
        self.name = name

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return self.means[idx] + self.stds[idx, None] * eps

    def _log_prob(self, x: Tensor) -> Tensor:
        means = self.means.to(x)
        stds = self.stds.to(x)
        squared_distances = ((x[:, None, :] - means[None]) ** 2).sum(-1)  # (batch, K)
        log_comp = -0.5 * squared_distances / stds**2 - 2 * torch.log(stds) - LOG_2PI
        return torch.logsumexp(log_comp + torch.log(self.weights.to(x)), dim=1)


#: The centres used by :func:`modes`: the slides' 4 modes at (±2, ±2).
MODE_CENTRES: dict[int, list[tuple[float, float]]] = {
    1: [(0.0, 0.0)],
    2: [(-2.0, -2.0), (2.0, 2.0)],
    3: [(-2.0, -2.0), (2.0, 2.0), (2.0, -2.0)],
    4: [(-2.0, -2.0), (2.0, 2.0), (2.0, -2.0), (-2.0, 2.0)],
}


def modes(k: int, std: float = 0.5) -> GaussianMixture:
    """The slides' multimodal example with ``k ∈ {1, 2, 3, 4}`` equal-weight modes, σ = 0.5.

    ``k = 4`` is four Gaussians at (±2, ±2); fewer modes drop corners (1 mode sits at 0).
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k not in MODE_CENTRES:
        raise ValueError(f"k: expected the integer 1, 2, 3 or 4 (number of modes), got {k!r}")
    k = int(k)
    return GaussianMixture(MODE_CENTRES[k], stds=std, name=f"{k} mode{'s' if k > 1 else ''}")


def four_modes() -> GaussianMixture:
    """The slides' 4-mode example: equal-weight N((±2, ±2), 0.5² I)."""
    return modes(4)


class Checkerboard(ToyDistribution):
    """Uniform density on the black squares of a 4×4 checkerboard covering [−4, 4]².

    Each square has side 2; 8 of the 16 are filled, so the density is 1/32 there and 0
    elsewhere (``log_prob = −inf`` off the board).
    """

    name = "checkerboard"

    def __init__(self, size: float = 4.0):
        self.size = check_positive_float(size, "size")
        self.side = self.size / 2  # 4 squares across [−size, size]

    def _filled(self, x: Tensor) -> Tensor:
        inside = (x.abs() < self.size).all(dim=1)
        cells = torch.floor((x + self.size) / self.side).long()
        return inside & ((cells[:, 0] + cells[:, 1]) % 2 == 0)

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        # 8 filled squares: cell (i, j) with i + j even.
        filled = torch.tensor(
            [(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0], dtype=torch.float64
        )
        idx = torch.randint(0, len(filled), (n,), generator=generator)
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
        return -self.size + (filled[idx] + u) * self.side

    def _log_prob(self, x: Tensor) -> Tensor:
        area = 8 * self.side**2
        out = x.new_full((x.shape[0],), -math.log(area))
        return torch.where(self._filled(x), out, torch.full_like(out, -math.inf))


class Rings(ToyDistribution):
    """Concentric rings: angle uniform, radius ``|R_k + σ ε|`` with ``k`` uniform.

    The radius has the folded-normal density
    ``p_r(r) = (1/K) Σ_k [φ_σ(r − R_k) + φ_σ(r + R_k)]`` for r > 0, so in the plane
    ``p(x) = p_r(|x|) / (2π|x|)`` exactly.
    """

    name = "rings"

    def __init__(self, radii: Sequence[float] = (1.0, 2.0, 3.0), std: float = 0.15):
        self.radii = _as_float64(radii, "radii").flatten()
        if self.radii.numel() == 0 or not bool(((self.radii > 0) & self.radii.isfinite()).all()):
            raise ValueError(f"radii: expected positive radii, got {radii}")
        self.std = check_positive_float(std, "std")

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        k = torch.randint(0, self.radii.numel(), (n,), generator=generator)
        r = (
            self.radii[k] + self.std * torch.randn(n, generator=generator, dtype=torch.float64)
        ).abs()
        angle = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
        return torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1)

    def _log_prob(self, x: Tensor) -> Tensor:
        r = x.norm(dim=1)
        radii = self.radii.to(x)
        log_phi = lambda u: -0.5 * (u / self.std) ** 2 - math.log(self.std) - 0.5 * LOG_2PI  # noqa: E731
        terms = torch.cat([log_phi(r[:, None] - radii), log_phi(r[:, None] + radii)], dim=1)
        log_pr = torch.logsumexp(terms, dim=1) - math.log(radii.numel())
        return log_pr - torch.log(2 * math.pi * r)


class TwoMoons(ToyDistribution):
    """Two interleaving half circles with Gaussian noise (no closed-form density)."""

    name = "two moons"
    has_log_prob = False

    def __init__(self, noise: float = 0.1):
        self.noise = check_positive_float(noise, "noise")

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        upper = torch.rand(n, generator=generator) < 0.5
        angle = math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
        x = torch.where(upper, torch.cos(angle), 1 - torch.cos(angle))
        y = torch.where(upper, torch.sin(angle), 0.5 - torch.sin(angle))
        pts = torch.stack([x - 0.5, y - 0.25], dim=1) * 2.0
        return pts + self.noise * torch.randn(n, 2, generator=generator, dtype=torch.float64)


def gallery() -> dict[str, ToyDistribution]:
    """Every toy distribution of the course, by name."""
    return {
        "1 mode": modes(1),
        "2 modes": modes(2),
        "3 modes": modes(3),
        "4 modes": modes(4),
        "checkerboard": Checkerboard(),
        "rings": Rings(),
        "two moons": TwoMoons(),
    }
