"""Flows in practice: zuko's flows next to the course's, a KL estimate with its standard
error, and the probability mass a model puts in the gaps between modes (notebook 07).

Directions. The course's bijections map data to noise, ``f: x → z`` (the slides' f), and
``log p_θ(x) = log p_Z(f(x)) + log|det ∂f/∂x|`` (eq. 14). zuko uses the same direction: a
zuko flow ``flow()`` is a ``NormalizingFlow(transform, base)`` whose ``transform`` maps x to
z and whose ``log_prob(x)`` is ``base.log_prob(z) + transform.log_abs_det_jacobian(x, z)``;
sampling applies ``transform.inv`` to base draws. (``torch.distributions.
TransformedDistribution`` is the other way round: its transforms map noise to data.)

:class:`ZukoDensity` wraps an unconditional zuko flow so that it has the course's interface
(``forward(x) -> (z, log_det)``, ``inverse(z) -> (x, log_det)``, ``log_prob``, ``sample``)
and trains with :func:`coursekit.training.fit` unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from coursekit._validation import check_positive_float, check_positive_int, check_tensor
from coursekit.flows import RealNVP
from coursekit.metrics import Estimate, kl_with_se, mean_and_se  # noqa: F401 (kl_with_se: the KL of notebook 07)

#: The four flows that notebook 07 compares, by display name.
FLOW_NAMES: tuple[str, ...] = ("course RealNVP", "zuko RealNVP", "zuko MAF", "zuko NSF")


class ZukoDensity(nn.Module):
    """An unconditional zuko flow with the course's interface.

    Args:
        flow: a zuko ``LazyDistribution`` (e.g. ``zuko.flows.NSF(2)``) whose base is the
            standard normal ``N(0, I)`` (zuko's flows build it so).

    ``forward(x)`` returns ``(z, log|det ∂z/∂x|)`` with ``z = f(x)`` (x → z, the course's
    direction and zuko's own), ``inverse(z)`` returns ``(x, log|det ∂x/∂z|)``, ``log_prob(x)``
    is zuko's ``flow().log_prob(x)`` = ``log N(f(x); 0, I) + log|det ∂f/∂x|`` (eq. 14), and
    ``sample(n, generator=...)`` maps ``ε ~ N(0, I)`` drawn from ``generator`` through
    ``f⁻¹``. Shapes: ``x`` and ``z`` are (batch, d), log-dets and log-densities (batch,).
    """

    def __init__(self, flow: nn.Module):
        super().__init__()
        from zuko.lazy import LazyDistribution

        if not isinstance(flow, LazyDistribution):
            raise ValueError(
                f"flow: expected a zuko flow (an nn.Module such as zuko.flows.NSF(2)), "
                f"got {type(flow).__name__}"
            )
        self.flow = flow
        dist = flow()
        self.event_shape = tuple(dist.event_shape)
        base = dist.base
        loc, scale = getattr(base, "mean", None), getattr(base, "stddev", None)
        if (
            loc is None
            or scale is None
            or not torch.allclose(loc, torch.zeros_like(loc))
            or not torch.allclose(scale, torch.ones_like(scale))
        ):
            raise ValueError("flow: expected a zuko flow with a standard normal base N(0, I)")

    def _check(self, x: Tensor, name: str) -> Tensor:
        return check_tensor(x, name, event_shape=self.event_shape)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x → (z, log|det ∂z/∂x|)``: zuko's ``transform.call_and_ladj``."""
        self._check(x, "x")
        return self.flow().transform.call_and_ladj(x)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z → (x, log|det ∂x/∂z|)``: zuko's ``transform.inv.call_and_ladj``."""
        self._check(z, "z")
        return self.flow().transform.inv.call_and_ladj(z)

    def log_prob(self, x: Tensor) -> Tensor:
        """zuko's ``flow().log_prob(x)``, shape (batch,)."""
        self._check(x, "x")
        return self.flow().log_prob(x)

    def sample(
        self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """``n`` draws ``x = f⁻¹(T·ε)``, ``ε ~ N(0, I)``; returns (n, d)."""
        n = check_positive_int(n, "n")
        temperature = check_positive_float(temperature, "temperature")
        param = next(iter(self.parameters()))
        eps = torch.randn((n, *self.event_shape), generator=generator, dtype=param.dtype)
        with torch.no_grad():
            return self.flow().transform.inv(temperature * eps.to(param.device))


def zuko_flow(name: str, dim: int = 2) -> nn.Module:
    """zuko's ``RealNVP``, ``MAF`` or ``NSF`` on ``R^dim`` at zuko's defaults (3 transforms,
    hidden layers (64, 64); NSF: 8 spline bins on [−5, 5])."""
    import zuko

    builders: dict[str, Callable[[int], nn.Module]] = {
        "RealNVP": zuko.flows.RealNVP,
        "MAF": zuko.flows.MAF,
        "NSF": zuko.flows.NSF,
    }
    if name not in builders:
        raise ValueError(f"name: expected one of {sorted(builders)}, got {name!r}")
    return builders[name](check_positive_int(dim, "dim"))


def build_flow(name: str, dim: int = 2, seed: int = 0) -> nn.Module:
    """One of :data:`FLOW_NAMES`, its weights drawn after ``torch.manual_seed(seed)``.

    ``"course RealNVP"`` is ``coursekit.flows.RealNVP(dim)`` at its defaults; the zuko flows
    are :func:`zuko_flow` wrapped in :class:`ZukoDensity`.
    """
    if name not in FLOW_NAMES:
        raise ValueError(f"name: expected one of {list(FLOW_NAMES)}, got {name!r}")
    torch.manual_seed(seed)
    if name == "course RealNVP":
        return RealNVP(dim)
    return ZukoDensity(zuko_flow(name.removeprefix("zuko "), dim))


def parameter_count(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def gap_region(x: Tensor, target: object, threshold: float, half_width: float) -> Tensor:
    """Boolean mask (batch,) of the points of ``x`` (batch, 2) in the gaps of ``target``:

    ``G = {x : p(x) < threshold and max_i |x_i| ≤ half_width}``, the places inside the box
    ``[−w, w]²`` where the true density is below ``threshold``. For the slides' 4 modes at
    (±2, ±2) with ``w = 2`` this is the space between the modes, where an affine flow draws
    its filaments.
    """
    check_tensor(x, "x", event_shape=(2,))
    threshold = check_positive_float(threshold, "threshold")
    half_width = check_positive_float(half_width, "half_width")
    inside = (x.abs() <= half_width).all(dim=1)
    low = target.log_prob(x.double()) < math.log(threshold)
    return inside & low


def gap_mass(x: Tensor, target: object, threshold: float, half_width: float) -> Estimate:
    """Probability mass in the gaps, ``P(X ∈ G)`` (see :func:`gap_region`), estimated from
    draws ``x`` (batch, 2) of the distribution being measured (a model's samples, or the
    target's for the true mass); the standard error is that of a
    Bernoulli mean, ``≈ √(m(1 − m)/n)``."""
    return mean_and_se(gap_region(x, target, threshold, half_width).double())


def summarise(values: list[float]) -> Estimate:
    """Mean and standard error ``s/√k`` of ``k`` per-seed figures (e.g. KLs over seeds)."""
    if not values:
        raise ValueError("values: expected at least one figure, got none")
    if len(values) == 1:
        return Estimate(float(values[0]), math.inf, 1)
    return mean_and_se(values)


def summarise_runs(
    runs: list[dict[str, object]], by: tuple[str, ...], value: str
) -> dict[tuple[object, ...], Estimate]:
    """Group benchmark rows (dicts) by the fields ``by`` and summarise ``row[value]`` over
    each group's seeds with :func:`summarise` (mean ± standard error); groups keep the order
    in which they first appear."""
    if not by:
        raise ValueError("by: expected at least one field to group by")
    groups: dict[tuple[object, ...], list[float]] = {}
    for i, row in enumerate(runs):
        missing = [k for k in (*by, value) if k not in row]
        if missing:
            raise ValueError(f"runs: row {i} lacks the field(s) {missing}")
        groups.setdefault(tuple(row[k] for k in by), []).append(float(row[value]))
    return {k: summarise(v) for k, v in groups.items()}
